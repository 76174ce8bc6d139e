output "function_names" {
  description = "Deployed function name, by Chalice function name."
  value       = { for name, fn in aws_lambda_function.this : name => fn.function_name }
}

output "function_arns" {
  description = "Function ARN, by Chalice function name."
  value       = { for name, fn in aws_lambda_function.this : name => fn.arn }
}

output "function_invoke_arns" {
  description = "ARN API Gateway uses to invoke each function, by Chalice function name."
  value       = { for name, fn in aws_lambda_function.this : name => fn.invoke_arn }
}

output "function_handlers" {
  description = "Handler string of each deployed function, by Chalice function name."
  value       = { for name, fn in aws_lambda_function.this : name => fn.handler }
}

output "role_arns" {
  description = "Execution role ARN, by Chalice function name."
  value       = { for name, role in aws_iam_role.this : name => role.arn }
}

output "policy_statements" {
  description = "Statements of each function role's inline policy, by Chalice function name."
  value       = local.policy_statements
}

output "log_formats" {
  description = "Lambda log format of each function, by Chalice name."
  value       = { for name, fn in aws_lambda_function.this : name => fn.logging_config[0].log_format }
}

output "application_log_levels" {
  description = "The lowest level of each function's own lines Lambda keeps (JSON format), by Chalice name."
  value       = { for name, fn in aws_lambda_function.this : name => fn.logging_config[0].application_log_level }
}

output "log_group_names" {
  description = "Log group name, by Chalice function name."
  value       = { for name, group in aws_cloudwatch_log_group.this : name => group.name }
}

output "schedule_rule_arns" {
  description = "EventBridge rule ARN of each scheduled function, by Chalice function name."
  value       = { for name, rule in aws_cloudwatch_event_rule.this : name => rule.arn }
}

output "event_invoke_configs" {
  description = "Retries and maximum event age of each asynchronously invoked function, by Chalice name."
  value = {
    for name, config in aws_lambda_function_event_invoke_config.this : name => {
      maximum_retry_attempts       = config.maximum_retry_attempts
      maximum_event_age_in_seconds = config.maximum_event_age_in_seconds
    }
  }
}

output "function_timeouts" {
  description = "Timeout (seconds) of each function, by Chalice name."
  value       = { for name, fn in aws_lambda_function.this : name => fn.timeout }
}

output "function_runtimes" {
  description = "\"<runtime> <architecture>\" of each function, by Chalice name."
  value       = { for name, fn in aws_lambda_function.this : name => "${fn.runtime} ${join(",", fn.architectures)}" }
}

output "role_permissions_boundaries" {
  description = "Permissions boundary of each function role, by Chalice name (null without one)."
  value       = { for name, role in aws_iam_role.this : name => role.permissions_boundary }
}
