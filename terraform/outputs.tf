output "websocket_url" {
  description = "wss:// URL clients connect to."
  value       = module.websocket_api.stage_invoke_url

  precondition {
    condition     = var.connection_refresh_minutes < var.connection_warning_minutes && var.connection_warning_minutes < var.connection_max_duration_minutes
    error_message = "Expected connection_refresh_minutes < connection_warning_minutes < connection_max_duration_minutes."
  }

  precondition {
    condition     = var.heartbeat_interval_seconds < var.heartbeat_timeout_seconds
    error_message = "heartbeat_interval_seconds must be shorter than heartbeat_timeout_seconds."
  }
}

output "management_api_url" {
  description = "Base URL of the @connections management API (https://<api id>.execute-api.<region>.amazonaws.com/<stage>)."
  value       = local.management_api_url
}

output "api_id" {
  description = "ID of the WebSocket API."
  value       = module.websocket_api.api_id
}

output "api_stage_name" {
  description = "Name of the API stage."
  value       = module.websocket_api.stage_name
}

output "table_names" {
  description = "DynamoDB table names, by role (sessions, connections, rate_limits)."
  value       = module.tables.table_names
}

output "function_names" {
  description = "Deployed Lambda function names, by Chalice function name."
  value       = module.functions.function_names
}

output "publish_function_arn" {
  description = "ARN other services are granted lambda:InvokeFunction on to publish (null until the app has publish)."
  value       = lookup(module.functions.function_arns, "publish", null)
}

output "health_url" {
  description = "GET /health for uptime monitors (200 ok, 503 when a table does not answer); null without the route."
  value       = one(module.health_api[*].health_url)
}

output "dashboard_url" {
  description = "The stack's CloudWatch dashboard."
  value       = module.dashboard.dashboard_url
}

output "alarm_names" {
  description = "Every alarm's name; each one's description says what to look at first."
  value       = module.alarms.alarm_names
}

output "sns_topic_arn" {
  description = "ARN of the alarm topic."
  value       = module.alarms.sns_topic_arn
}

output "audio_stream_name" {
  description = "Kinesis audio stream name (null unless audio_stream_enabled)."
  value       = one(aws_kinesis_stream.audio[*].name)
}

################################################################################
# Speaker sign-in
################################################################################

output "token_issuer" {
  description = "TOKEN_ISSUER the functions check speaker tokens against (empty: no speaker can connect)."
  value       = local.token_issuer

  # A stack whose speakers can never connect is refused at plan time.
  precondition {
    condition     = var.token_issuer == "" || var.token_audience != ""
    error_message = "token_issuer is set but token_audience is empty: every speaker token would be refused. Set token_audience to the pool's app client id."
  }

  precondition {
    condition     = var.token_audience == "" || var.token_issuer != ""
    error_message = "token_audience is set without token_issuer: set both (an existing pool) or neither (create_user_pool makes one)."
  }

  precondition {
    condition     = var.jwks_url == "" || startswith(var.jwks_url, "https://") || var.emulator_endpoint_url != null
    error_message = "jwks_url must be https:// (signing keys fetched over plain http can be swapped in transit); http is only accepted against an emulator (emulator_endpoint_url)."
  }

  precondition {
    condition     = var.stage != "prod" || local.token_issuer_configured
    error_message = "prod without Cognito settings: no speaker could ever connect. Set token_issuer and token_audience, or leave create_user_pool = true."
  }
}

output "token_audience" {
  description = "TOKEN_AUDIENCE: the app client id speakers' ID tokens are issued for."
  value       = local.token_audience
}

output "jwks_url" {
  description = "JWKS_URL the functions fetch signing keys from (empty: <token_issuer>/.well-known/jwks.json)."
  value       = local.jwks_url
}

output "user_pool_id" {
  description = "ID of the user pool this stack created for speakers (null with an existing pool): make speaker-user adds speakers to it."
  value       = one(module.auth[*].user_pool_id)
}

output "user_pool_client_id" {
  description = "ID of the public app client of that pool (null with an existing pool): make speaker-token signs in with it."
  value       = one(module.auth[*].client_id)
}

output "aws_region" {
  description = "Region the stack is deployed in."
  value       = var.aws_region
}

output "lambda_runtime" {
  description = "Runtime and architecture of the functions."
  value       = "${var.lambda_runtime} (${var.lambda_architecture})"

  precondition {
    condition     = local.manifest.target.runtime == var.lambda_runtime && local.manifest.target.architecture == var.lambda_architecture
    error_message = "The package was built for ${local.manifest.target.runtime} on ${local.manifest.target.architecture}, but lambda_runtime/lambda_architecture are ${var.lambda_runtime} on ${var.lambda_architecture}: its compiled modules would not load there. Rebuild it with `make package RUNTIME=${var.lambda_runtime} ARCH=${var.lambda_architecture}`, or change the variables."
  }
}

output "emulator_endpoint_url" {
  description = "The emulator this stack was applied to (null in AWS)."
  value       = var.emulator_endpoint_url
}
