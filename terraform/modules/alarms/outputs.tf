output "sns_topic_arn" {
  description = "ARN of the alarm topic: subscribe more endpoints to it."
  value       = aws_sns_topic.this.arn
}

output "alarm_names" {
  description = "Names of every alarm."
  value = concat(
    [for alarm in aws_cloudwatch_metric_alarm.lambda : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.api : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.dynamodb_throttles : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.dynamodb_system_errors : alarm.alarm_name],
  )
}

output "alarm_actions" {
  description = "Alarm actions of every alarm, by alarm name (each is the SNS topic)."
  value = merge(
    { for alarm in aws_cloudwatch_metric_alarm.lambda : alarm.alarm_name => alarm.alarm_actions },
    { for alarm in aws_cloudwatch_metric_alarm.api : alarm.alarm_name => alarm.alarm_actions },
    { for alarm in aws_cloudwatch_metric_alarm.dynamodb_throttles : alarm.alarm_name => alarm.alarm_actions },
    { for alarm in aws_cloudwatch_metric_alarm.dynamodb_system_errors : alarm.alarm_name => alarm.alarm_actions },
  )
}
