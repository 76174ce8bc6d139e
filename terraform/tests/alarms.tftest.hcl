# Plan-level checks of modules/alarms: every alarm watches a metric with the
# dimensions the service really emits, and notifies the topic.

mock_provider "aws" {
  override_during = plan
  source          = "./tests"
}

variables {
  name_prefix    = "broadcast-dev"
  function_names = { websocket_connect = "broadcast-dev-websocket_connect", sweep = "broadcast-dev-sweep" }
  api            = { id = "a1b2c3d4e5", stage_name = "dev" }
  tables = {
    sessions    = { name = "broadcast-dev-Sessions", global_secondary_indexes = ["sweep-index"] }
    rate_limits = { name = "broadcast-dev-RateLimits" }
  }
}

run "alarms_watch_emitted_metrics" {
  command = plan

  module {
    source = "./modules/alarms"
  }

  assert {
    condition = alltrue([
      for alarm in aws_cloudwatch_metric_alarm.lambda :
      alarm.namespace == "AWS/Lambda" && contains(["Errors", "Throttles"], alarm.metric_name) && toset(keys(alarm.dimensions)) == toset(["FunctionName"])
    ]) && length(aws_cloudwatch_metric_alarm.lambda) == 4
    error_message = "Lambda Errors and Throttles per function, by FunctionName."
  }

  assert {
    condition = alltrue([
      for alarm in aws_cloudwatch_metric_alarm.api :
      alarm.namespace == "AWS/ApiGateway" && alarm.dimensions == tomap({ ApiId = "a1b2c3d4e5", Stage = "dev" })
    ]) && toset([for alarm in aws_cloudwatch_metric_alarm.api : alarm.metric_name]) == toset(["IntegrationError", "ExecutionError"])
    error_message = "WebSocket IntegrationError and ExecutionError by ApiId and Stage."
  }

  assert {
    condition = toset(flatten([
      for alarm in aws_cloudwatch_metric_alarm.dynamodb_throttles : [
        for query in alarm.metric_query : [for metric in query.metric : "${metric.metric_name} ${jsonencode(metric.dimensions)}"]
      ] if alarm.alarm_name == "broadcast-dev-dynamodb-sessions-read-throttles"
      ])) == toset([
      "ReadThrottleEvents {\"TableName\":\"broadcast-dev-Sessions\"}",
      "ReadThrottleEvents {\"GlobalSecondaryIndexName\":\"sweep-index\",\"TableName\":\"broadcast-dev-Sessions\"}",
    ])
    error_message = "Read throttles are summed over the table (TableName) and each index (TableName + GlobalSecondaryIndexName)."
  }

  assert {
    condition = alltrue([
      for alarm in aws_cloudwatch_metric_alarm.dynamodb_system_errors : alltrue([
        for query in alarm.metric_query : alltrue([
          for metric in query.metric : metric.metric_name == "SystemErrors" && toset(keys(metric.dimensions)) == toset(["TableName", "Operation"])
        ])
      ])
    ])
    error_message = "SystemErrors is only emitted by TableName and Operation."
  }

  assert {
    condition = alltrue(flatten([
      for alarms in [aws_cloudwatch_metric_alarm.lambda, aws_cloudwatch_metric_alarm.api, aws_cloudwatch_metric_alarm.dynamodb_throttles, aws_cloudwatch_metric_alarm.dynamodb_system_errors] : [
        for alarm in alarms : toset(alarm.alarm_actions) == toset([aws_sns_topic.this.arn]) && toset(alarm.ok_actions) == toset([aws_sns_topic.this.arn])
      ]
    ]))
    error_message = "Every alarm notifies the SNS topic."
  }

  assert {
    condition     = length(aws_sns_topic_subscription.email) == 0
    error_message = "No e-mail subscription unless alarm_email is set."
  }
}

run "email_subscription" {
  command = plan

  module {
    source = "./modules/alarms"
  }

  variables {
    alarm_email = "oncall@example.com"
  }

  assert {
    condition     = aws_sns_topic_subscription.email[0].protocol == "email" && aws_sns_topic_subscription.email[0].endpoint == "oncall@example.com"
    error_message = "alarm_email subscribes that address to the topic."
  }
}
