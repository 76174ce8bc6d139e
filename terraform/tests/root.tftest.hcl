# Plan-level checks of the root module with a mocked AWS provider (no network,
# no credentials). The fixture manifest mirrors docs/design-contract.md; the
# pytest runner (tests/terraform) runs this file again with the app's real
# manifest and zip copied over the fixtures.

mock_provider "aws" {
  override_during = plan
  source          = "./tests"
}

variables {
  stage         = "dev"
  manifest_path = "tests/fixtures/manifest.json"
}

run "functions_follow_the_manifest" {
  command = plan

  assert {
    condition     = keys(module.functions.function_handlers) == keys(jsondecode(file(var.manifest_path)).functions)
    error_message = "Terraform must deploy exactly the functions of the manifest."
  }

  assert {
    condition = alltrue([
      for name, handler in module.functions.function_handlers :
      handler == jsondecode(file(var.manifest_path)).functions[name].handler
    ])
    error_message = "Every function's handler must be the one the manifest gives for it."
  }

  assert {
    condition = alltrue([
      for name, deployed in module.functions.function_names : deployed == "broadcast-dev-${name}"
    ])
    error_message = "Deployed names must be <app_name>-<stage>-<chalice name>."
  }

  assert {
    condition = toset(keys(module.functions.schedule_rule_arns)) == toset([
      for name, fn in jsondecode(file(var.manifest_path)).functions : name if try(fn.schedule, null) != null
    ])
    error_message = "Exactly the @app.schedule functions (the sweep) get an EventBridge rule."
  }
}

run "every_contract_variable_reaches_the_functions" {
  command = plan

  variables {
    supported_languages = ["en", "es", "fr"]
    token_issuer        = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
    token_audience      = "client123"
    jwks_url            = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc/.well-known/jwks.json"
  }

  assert {
    condition = toset(keys(local.environment)) == toset([
      "SESSIONS_TABLE", "CONNECTIONS_TABLE", "RATE_LIMITS_TABLE", "SESSION_MAX_DURATION_HOURS",
      "MAX_LISTENERS_PER_SESSION", "CONNECTION_REFRESH_MINUTES", "CONNECTION_WARNING_MINUTES",
      "CONNECTION_MAX_DURATION_MINUTES", "HEARTBEAT_INTERVAL_SECONDS", "HEARTBEAT_TIMEOUT_SECONDS",
      "SPEAKER_RECONNECT_GRACE_SECONDS", "SUPPORTED_LANGUAGES", "TOKEN_ISSUER", "TOKEN_AUDIENCE",
      "TOKEN_USE", "JWKS_URL", "JWKS_REFETCH_COOLDOWN_SECONDS", "MANAGEMENT_API_URL",
      "WELCOME_FUNCTION_NAME", "WELCOME_DELIVERY_TIMEOUT_SECONDS", "AUDIO_SINK", "AUDIO_STREAM_NAME",
      "PUBLISH_CONCURRENCY", "RATE_LIMIT_CONNECTS_PER_MINUTE", "RATE_LIMIT_SESSIONS_PER_HOUR", "LOG_LEVEL",
      "PRIVACY_KEY", "SWEEP_FUNCTION_NAME", "SWEEP_SHARDS", "SWEEP_CONCURRENCY", "STAGE",
    ])
    error_message = "The functions' environment must hold exactly the contract's variables."
  }

  assert {
    condition     = local.environment.SUPPORTED_LANGUAGES == "en,es,fr" && local.environment.WELCOME_FUNCTION_NAME == "broadcast-dev-deliver_welcome"
    error_message = "SUPPORTED_LANGUAGES is comma-separated; WELCOME_FUNCTION_NAME is the deployed name."
  }

  assert {
    condition     = output.management_api_url == "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev"
    error_message = "The management endpoint is https://{api_id}.execute-api.{region}.amazonaws.com/{stage}."
  }

  assert {
    condition     = output.websocket_url == "wss://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev"
    error_message = "The WebSocket URL is the stage's wss:// invoke URL."
  }
}

run "empty_settings_leave_the_app_defaults" {
  command = plan

  variables {
    create_user_pool = false
  }

  # Allowed outside prod, with a warning: no speaker can connect.
  expect_failures = [check.speakers_can_sign_in]

  assert {
    condition     = length(setintersection(keys(local.environment), ["SUPPORTED_LANGUAGES", "TOKEN_ISSUER", "TOKEN_AUDIENCE", "JWKS_URL"])) == 0
    error_message = "Unset optional settings must not be passed, so the app's own defaults apply."
  }

  assert {
    condition     = local.environment.AUDIO_SINK == "none" && local.environment.AUDIO_STREAM_NAME == ""
    error_message = "Without the audio stream, AUDIO_SINK is none."
  }
}

run "iam_is_least_privilege" {
  command = plan

  assert {
    condition = alltrue(flatten([
      for name, statements in module.functions.policy_statements : [
        for statement in statements : [
          for resource in statement.Resource : !strcontains(resource, "*")
        ] if anytrue([for action in statement.Action : startswith(action, "dynamodb:")])
      ]
    ]))
    error_message = "No DynamoDB statement may have a wildcard resource."
  }

  assert {
    condition = length(flatten([
      for name, statements in module.functions.policy_statements : [
        for statement in statements : statement if anytrue([for action in statement.Action : startswith(action, "dynamodb:")])
      ]
    ])) >= 6
    error_message = "The wildcard check above must have DynamoDB statements to look at."
  }

  assert {
    condition = alltrue(flatten([
      for name, statements in module.functions.policy_statements : [
        for statement in statements : [for action in statement.Action : !strcontains(action, "*")]
      ]
    ]))
    error_message = "No statement may have a wildcard action."
  }

  assert {
    condition = alltrue([
      for name, statements in module.functions.policy_statements :
      contains(["authorizer", "sweep", "api_handler"], name) == (length([for s in statements : s if s.Sid == "ManageConnections"]) == 0)
    ])
    error_message = "Every function but the authorizer, the sweep's coordinator and the health check may manage connections; those may not."
  }

  assert {
    condition = alltrue(flatten([
      for name, statements in module.functions.policy_statements : [
        for statement in statements : [
          for resource in statement.Resource : can(regex("^arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/(POST|GET|DELETE)/@connections/\\*$", resource))
        ] if statement.Sid == "ManageConnections"
      ]
    ]))
    error_message = "execute-api:ManageConnections is granted on this API's stage @connections only."
  }

  assert {
    condition = jsonencode({
      for name, statements in module.functions.policy_statements : name => sort(flatten([
        for statement in statements : [for resource in statement.Resource : regex("/(POST|GET|DELETE)/", resource)[0]] if statement.Sid == "ManageConnections"
      ])) if !contains(["authorizer", "sweep", "api_handler"], name)
      }) == jsonencode({
      deliver_welcome      = ["DELETE", "POST"]
      publish              = ["POST"]
      sweep_shard          = ["DELETE", "POST"]
      websocket_connect    = ["POST"]
      websocket_disconnect = ["DELETE", "POST"]
      websocket_message    = ["DELETE", "POST"]
    })
    error_message = "@connections DELETE only where the code closes sockets; GET nowhere (the sweep judges speakers by their silence)."
  }

  assert {
    condition = alltrue([
      for name, statements in module.functions.policy_statements : alltrue([
        for statement in statements : !contains(statement.Action, "dynamodb:ConditionCheckItem") && (name == "websocket_connect" || !contains(statement.Action, "dynamodb:PutItem"))
      ])
    ])
    error_message = "No ConditionCheckItem (no transaction uses one); PutItem only for $connect."
  }

  assert {
    condition = alltrue([
      for name, statements in module.functions.policy_statements :
      contains(["websocket_connect", "sweep"], name) == (length([for s in statements : s if contains(s.Action, "lambda:InvokeFunction")]) == 1)
    ])
    error_message = "Only websocket_connect (deliver_welcome) and the sweep (sweep_shard) may invoke a function."
  }

  assert {
    condition     = length(module.functions.policy_statements["authorizer"]) == 1 && module.functions.policy_statements["authorizer"][0].Sid == "WriteOwnLogs"
    error_message = "The authorizer may only write its logs."
  }

  assert {
    condition = alltrue([
      for name, statements in module.functions.policy_statements :
      length([for s in statements : s if anytrue([for a in s.Action : startswith(a, "kinesis:")])]) == 0
    ])
    error_message = "Without the audio stream no function gets Kinesis access."
  }
}

run "audio_stream_switch" {
  command = plan

  variables {
    audio_stream_enabled = true
  }

  assert {
    condition     = local.environment.AUDIO_SINK == "kinesis" && local.environment.AUDIO_STREAM_NAME == "broadcast-dev-audio"
    error_message = "audio_stream_enabled selects AUDIO_SINK=kinesis and names the stream."
  }

  assert {
    condition = alltrue([
      for name, statements in module.functions.policy_statements :
      (name == "websocket_message") == anytrue([for s in statements : contains(s.Action, "kinesis:PutRecord")])
    ])
    error_message = "Only websocket_message may kinesis:PutRecord."
  }

  assert {
    condition = anytrue([
      for s in module.functions.policy_statements["websocket_message"] :
      toset(s.Resource) == toset(["arn:aws:kinesis:us-east-1:123456789012:stream/mock"]) if s.Sid == "PutAudioRecords"
    ])
    error_message = "kinesis:PutRecord is granted on the audio stream only."
  }
}

run "alarms_notify_the_topic" {
  command = plan

  assert {
    condition     = length(module.alarms.alarm_actions) == length(jsondecode(file(var.manifest_path)).functions) * 2 + 1 + 1 + 2 + 2 + 3 * 3
    error_message = "Expected faults and throttles per function, the JWKS and API execution alarms, the welcome and fan-out ratios, the sweep's two, and read/write throttles plus system errors per table."
  }

  assert {
    condition     = alltrue([for name, actions in module.alarms.alarm_actions : toset(actions) == toset([module.alarms.sns_topic_arn])])
    error_message = "Every alarm must notify the SNS topic."
  }

  assert {
    condition     = output.sns_topic_arn == module.alarms.sns_topic_arn
    error_message = "The topic is an output."
  }
}

run "api_gateway_account_switch" {
  command = plan

  variables {
    manage_api_gateway_account = true
  }

  assert {
    condition     = length(aws_api_gateway_account.this) == 1 && aws_api_gateway_account.this[0].cloudwatch_role_arn == aws_iam_role.api_gateway_cloudwatch[0].arn
    error_message = "manage_api_gateway_account sets the region's API Gateway logging role."
  }
}

run "api_gateway_account_left_alone_by_default" {
  command = plan

  assert {
    condition     = length(aws_api_gateway_account.this) == 0 && length(aws_iam_role.api_gateway_cloudwatch) == 0
    error_message = "By default the region-wide API Gateway account settings are not managed."
  }
}

run "the_manifest_must_hold_the_websocket_functions" {
  command = plan

  variables {
    manifest_path = "tests/fixtures/manifest-without-authorizer.json"
  }

  expect_failures = [var.manifest_path]
}

run "connection_timings_must_be_ordered" {
  command = plan

  variables {
    connection_warning_minutes = 90
  }

  expect_failures = [output.websocket_url]
}

run "a_user_pool_is_created_and_wired_by_default" {
  command = plan

  assert {
    condition     = length(module.auth) == 1 && local.environment.TOKEN_ISSUER == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123" && local.environment.TOKEN_AUDIENCE == "1example23456789abcdefghij"
    error_message = "Without token_issuer, the stack's own user pool issues speaker tokens: TOKEN_ISSUER and TOKEN_AUDIENCE name it."
  }

  assert {
    condition     = !contains(keys(local.environment), "JWKS_URL")
    error_message = "In AWS the keys are at <issuer>/.well-known/jwks.json: JWKS_URL is left to the app's default."
  }

  assert {
    condition     = contains(module.auth[0].client_flows, "ALLOW_USER_SRP_AUTH") && contains(module.auth[0].client_flows, "ALLOW_USER_PASSWORD_AUTH") && contains(module.auth[0].client_flows, "ALLOW_REFRESH_TOKEN_AUTH") && !module.auth[0].client_has_secret
    error_message = "A public app client (no secret) with SRP, USER_PASSWORD and refresh flows."
  }
}

run "an_emulated_pool_serves_its_keys_from_the_emulator" {
  command = plan

  variables {
    emulator_endpoint_url = "http://127.0.0.1:4566"
  }

  assert {
    condition     = local.environment.JWKS_URL == "http://127.0.0.1:4566/us-east-1_AbCdEf123/.well-known/jwks.json"
    error_message = "moto serves a pool's keys at <endpoint>/<pool id>/.well-known/jwks.json."
  }
}

run "an_existing_pool_is_used_as_given" {
  command = plan

  variables {
    token_issuer   = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Existing"
    token_audience = "existingclient"
  }

  assert {
    condition     = length(module.auth) == 0 && local.environment.TOKEN_ISSUER == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Existing"
    error_message = "With token_issuer no pool is created."
  }
}

run "an_issuer_without_audience_is_refused" {
  command = plan

  variables {
    token_issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Existing"
  }

  expect_failures = [output.token_issuer]
}

run "a_plain_http_jwks_url_is_refused_outside_an_emulator" {
  command = plan

  variables {
    jwks_url = "http://keys.example.com/jwks.json"
  }

  expect_failures = [output.token_issuer]
}

run "prod_without_cognito_is_refused" {
  command = plan

  variables {
    stage            = "prod"
    create_user_pool = false
  }

  expect_failures = [output.token_issuer, check.speakers_can_sign_in]
}

run "a_package_for_another_runtime_is_refused" {
  command = plan

  variables {
    lambda_runtime = "python3.12"
  }

  expect_failures = [output.lambda_runtime]
}

run "runtime_and_architecture_reach_every_function" {
  command = plan

  assert {
    condition     = alltrue([for fn in module.functions.function_runtimes : fn == "python3.13 x86_64"])
    error_message = "Every function runs the chosen runtime and architecture (python3.13, x86_64 by default)."
  }

  assert {
    condition     = jsonencode(module.functions.event_invoke_configs) == jsonencode({ for name in ["deliver_welcome", "sweep", "sweep_shard"] : name => { maximum_event_age_in_seconds = 60, maximum_retry_attempts = 0 } })
    error_message = "The asynchronously invoked functions get no retries and a 60 s maximum event age."
  }
}

run "roles_get_the_permissions_boundary" {
  command = plan

  variables {
    role_permissions_boundary_arn = "arn:aws:iam::123456789012:policy/broadcast-permissions-boundary"
    manage_api_gateway_account    = true
  }

  assert {
    condition     = alltrue([for arn in values(module.functions.role_permissions_boundaries) : arn == "arn:aws:iam::123456789012:policy/broadcast-permissions-boundary"]) && aws_iam_role.api_gateway_cloudwatch[0].permissions_boundary == "arn:aws:iam::123456789012:policy/broadcast-permissions-boundary"
    error_message = "Every role the stack creates carries the permissions boundary."
  }
}

run "observability" {
  command = plan

  assert {
    condition     = alltrue([for name, format in module.functions.log_formats : format == "JSON"])
    error_message = "Every function logs in Lambda's JSON format."
  }

  assert {
    condition     = local.environment.STAGE == "dev" && module.alarms.alarm_metrics["broadcast-dev-sweep-not-running"][0].dimensions == tomap({ Stage = "dev" })
    error_message = "The functions' STAGE is the Stage dimension the alarms watch."
  }

  assert {
    condition     = output.health_url == "wss://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/health" && length(module.health_api) == 1
    error_message = "The manifest's api_handler is served by the health API (the mock's endpoint)."
  }

  assert {
    condition     = output.dashboard_url == "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/broadcast-dev"
    error_message = "dashboard_url opens the stack's dashboard in the console."
  }

  assert {
    condition     = length([for name in module.alarms.alarm_names : name if strcontains(name, "integration")]) == 0
    error_message = "No alarm watches IntegrationError, which counts every routine $connect refusal."
  }
}

run "lambda_keeps_what_log_level_lets_through" {
  command = plan

  variables {
    log_level = "WARNING"
  }

  assert {
    condition     = alltrue([for name, level in module.functions.application_log_levels : level == "WARN"]) && local.environment.LOG_LEVEL == "WARNING"
    error_message = "LOG_LEVEL WARNING is Lambda's WARN: its JSON format would otherwise filter the app's lines at INFO."
  }
}

run "no_sweep_alarms_without_the_schedule" {
  command = plan

  variables {
    schedules_enabled = false
  }

  assert {
    condition     = length([for name in module.alarms.alarm_names : name if strcontains(name, "sweep-not")]) == 0
    error_message = "A disabled schedule would leave the sweep alarms (missing data breaching) firing for ever."
  }
}
