# Plan-level checks of modules/tables: keys, GSIs and TTL attributes are the
# names the app uses (docs/design-contract.md, chalicelib/state/schema.py).

mock_provider "aws" {
  override_during = plan
  source          = "./tests"
}

variables {
  table_names = {
    sessions    = "broadcast-dev-Sessions"
    connections = "broadcast-dev-Connections"
    rate_limits = "broadcast-dev-RateLimits"
  }
}

run "schema_matches_the_app" {
  command = plan

  module {
    source = "./modules/tables"
  }

  assert {
    condition     = alltrue([for table in aws_dynamodb_table.this : table.billing_mode == "PAY_PER_REQUEST"])
    error_message = "Tables are on-demand."
  }

  assert {
    condition = (
      aws_dynamodb_table.this["sessions"].hash_key == "sessionId" &&
      aws_dynamodb_table.this["connections"].hash_key == "connectionId" &&
      aws_dynamodb_table.this["rate_limits"].hash_key == "limitKey"
    )
    error_message = "Partition keys are sessionId, connectionId and limitKey."
  }

  assert {
    condition = (
      one(aws_dynamodb_table.this["sessions"].global_secondary_index[*].name) == "sweep-index" &&
      one(aws_dynamodb_table.this["sessions"].global_secondary_index[*].hash_key) == "sweepShard" &&
      one(aws_dynamodb_table.this["sessions"].global_secondary_index[*].range_key) == "expiresAt" &&
      one(aws_dynamodb_table.this["sessions"].global_secondary_index[*].projection_type) == "INCLUDE" &&
      toset(one(aws_dynamodb_table.this["sessions"].global_secondary_index[*].non_key_attributes)) == toset(["status", "speakerConnectionId", "speakerDisconnectedAt", "endedReason"])
    )
    error_message = "Sessions has sweep-index: sweepShard / expiresAt, projecting only what the sweep decides on."
  }

  assert {
    condition = (
      one(aws_dynamodb_table.this["connections"].global_secondary_index[*].name) == "session-members-index" &&
      one(aws_dynamodb_table.this["connections"].global_secondary_index[*].hash_key) == "sessionId" &&
      one(aws_dynamodb_table.this["connections"].global_secondary_index[*].range_key) == "member" &&
      one(aws_dynamodb_table.this["connections"].global_secondary_index[*].projection_type) == "ALL"
    )
    error_message = "Connections has session-members-index: sessionId / member, projection ALL."
  }

  assert {
    condition     = length(aws_dynamodb_table.this["rate_limits"].global_secondary_index) == 0
    error_message = "RateLimits has no index."
  }

  assert {
    condition = (
      aws_dynamodb_table.this["sessions"].ttl[0].attribute_name == "expiresAt" &&
      aws_dynamodb_table.this["connections"].ttl[0].attribute_name == "ttl" &&
      aws_dynamodb_table.this["rate_limits"].ttl[0].attribute_name == "expiresAt" &&
      alltrue([for table in aws_dynamodb_table.this : table.ttl[0].enabled])
    )
    error_message = "TTL is on expiresAt (Sessions, RateLimits) and ttl (Connections)."
  }

  assert {
    condition     = output.index_arns.connections["session-members-index"] == "${aws_dynamodb_table.this["connections"].arn}/index/session-members-index"
    error_message = "Index ARNs (granted to the functions that query them) are <table arn>/index/<name>."
  }

  assert {
    condition     = alltrue([for table in aws_dynamodb_table.this : !table.deletion_protection_enabled && !table.point_in_time_recovery[0].enabled])
    error_message = "Deletion protection and PITR are off by default."
  }
}

run "production_switches" {
  command = plan

  module {
    source = "./modules/tables"
  }

  variables {
    deletion_protection_enabled    = true
    point_in_time_recovery_enabled = true
  }

  assert {
    condition     = alltrue([for table in aws_dynamodb_table.this : table.deletion_protection_enabled && table.point_in_time_recovery[0].enabled])
    error_message = "Deletion protection and PITR follow their switches."
  }
}

run "table_names_must_differ" {
  command = plan

  module {
    source = "./modules/tables"
  }

  variables {
    table_names = { sessions = "same", connections = "same", rate_limits = "other" }
  }

  expect_failures = [var.table_names]
}
