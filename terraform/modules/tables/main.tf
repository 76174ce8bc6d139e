################################################################################
# Schema
#
# Mirrors chalicelib/state/schema.py (docs/design-contract.md, "DynamoDB"): keys,
# GSIs and TTL attributes are the app's, only the table names vary per stage.
################################################################################

locals {
  schema = {
    sessions = {
      hash_key      = "sessionId"
      ttl_attribute = "expiresAt"
      attributes    = { sessionId = "S", sweepShard = "N", expiresAt = "N" }
      global_secondary_indexes = {
        # Sparse (only sessions being swept carry sweepShard), sharded, and projecting
        # only what the sweep decides on: most writes to a session touch no index.
        "sweep-index" = {
          hash_key           = "sweepShard"
          range_key          = "expiresAt"
          projection_type    = "INCLUDE"
          non_key_attributes = ["status", "speakerConnectionId", "speakerDisconnectedAt", "endedReason"]
        }
      }
    }
    connections = {
      hash_key      = "connectionId"
      ttl_attribute = "ttl"
      attributes    = { connectionId = "S", sessionId = "S", member = "S" }
      global_secondary_indexes = {
        # Every connection of a session: listeners under their language, speakers
        # under "~speaker" (after every language code).
        "session-members-index" = {
          hash_key           = "sessionId"
          range_key          = "member"
          projection_type    = "ALL"
          non_key_attributes = null
        }
      }
    }
    rate_limits = {
      hash_key                 = "limitKey"
      ttl_attribute            = "expiresAt"
      attributes               = { limitKey = "S" }
      global_secondary_indexes = {}
    }
  }
}

################################################################################
# Tables
################################################################################

resource "aws_dynamodb_table" "this" {
  for_each = local.schema

  name         = var.table_names[each.key]
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = each.value.hash_key

  deletion_protection_enabled = var.deletion_protection_enabled

  dynamic "attribute" {
    for_each = each.value.attributes

    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.global_secondary_indexes

    content {
      name               = global_secondary_index.key
      hash_key           = global_secondary_index.value.hash_key
      range_key          = global_secondary_index.value.range_key
      projection_type    = global_secondary_index.value.projection_type
      non_key_attributes = global_secondary_index.value.non_key_attributes
    }
  }

  ttl {
    enabled        = true
    attribute_name = each.value.ttl_attribute
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery_enabled
  }

  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}
