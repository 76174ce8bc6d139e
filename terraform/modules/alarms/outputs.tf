locals {
  alarms = concat(
    values(aws_cloudwatch_metric_alarm.faults),
    values(aws_cloudwatch_metric_alarm.throttles),
    [aws_cloudwatch_metric_alarm.jwks, aws_cloudwatch_metric_alarm.api_execution_errors],
    values(aws_cloudwatch_metric_alarm.ratio),
    aws_cloudwatch_metric_alarm.sweep_not_running,
    aws_cloudwatch_metric_alarm.sweep_not_finishing,
    values(aws_cloudwatch_metric_alarm.dynamodb_throttles),
    values(aws_cloudwatch_metric_alarm.dynamodb_system_errors),
  )
}

output "sns_topic_arn" {
  description = "ARN of the alarm topic: subscribe more endpoints to it."
  value       = aws_sns_topic.this.arn
}

output "alarm_names" {
  description = "Names of every alarm."
  value       = [for alarm in local.alarms : alarm.alarm_name]
}

output "alarm_actions" {
  description = "Alarm actions of every alarm, by alarm name (each is the SNS topic)."
  value       = { for alarm in local.alarms : alarm.alarm_name => alarm.alarm_actions }
}

output "alarm_descriptions" {
  description = "What each alarm means and what to look at first, by alarm name."
  value       = { for alarm in local.alarms : alarm.alarm_name => alarm.alarm_description }
}

output "alarm_metrics" {
  description = "Every metric each alarm watches, by alarm name: namespace, metric name and dimensions (tests/terraform/test_alarm_metrics.py checks each one is emitted)."
  value = {
    for alarm in local.alarms : alarm.alarm_name => concat(
      alarm.metric_name == null || alarm.metric_name == "" ? [] : [{ namespace = alarm.namespace, metric_name = alarm.metric_name, dimensions = alarm.dimensions }],
      flatten([for query in alarm.metric_query : [for metric in query.metric : { namespace = metric.namespace, metric_name = metric.metric_name, dimensions = metric.dimensions }]]),
    )
  }
}
