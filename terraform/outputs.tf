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

output "sns_topic_arn" {
  description = "ARN of the alarm topic."
  value       = module.alarms.sns_topic_arn
}

output "audio_stream_name" {
  description = "Kinesis audio stream name (null unless audio_stream_enabled)."
  value       = one(aws_kinesis_stream.audio[*].name)
}
