# Plan-level checks of modules/alarms: every alarm watches a metric with the
# dimensions the service really emits (tests/terraform/test_alarm_metrics.py checks
# they are emitted), nothing routine is watched, and every alarm notifies the topic.

mock_provider "aws" {
  override_during = plan
  source          = "./tests"
}

variables {
  name_prefix    = "broadcast-dev"
  stage          = "dev"
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
    condition = toset(flatten([
      for alarm in aws_cloudwatch_metric_alarm.faults : [
        for query in alarm.metric_query : [for metric in query.metric : "${metric.namespace} ${metric.metric_name} ${jsonencode(metric.dimensions)}"]
      ] if alarm.alarm_name == "broadcast-dev-websocket_connect-faults"
      ])) == toset([
      "AWS/Lambda Errors {\"FunctionName\":\"broadcast-dev-websocket_connect\"}",
      "Broadcast Faults {\"Function\":\"websocket_connect\",\"Stage\":\"dev\"}",
    ])
    error_message = "A function's faults are its Lambda Errors (FunctionName) plus the app's Faults (Stage, Function = Chalice name)."
  }

  assert {
    condition = alltrue([
      for alarm in aws_cloudwatch_metric_alarm.throttles :
      alarm.namespace == "AWS/Lambda" && alarm.metric_name == "Throttles" && toset(keys(alarm.dimensions)) == toset(["FunctionName"])
    ]) && length(aws_cloudwatch_metric_alarm.throttles) == 2
    error_message = "Lambda Throttles per function, by FunctionName."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.api_execution_errors.namespace == "AWS/ApiGateway" && aws_cloudwatch_metric_alarm.api_execution_errors.metric_name == "ExecutionError" && aws_cloudwatch_metric_alarm.api_execution_errors.dimensions == tomap({ ApiId = "a1b2c3d4e5", Stage = "dev" })
    error_message = "WebSocket ExecutionError by ApiId and Stage."
  }

  assert {
    condition     = length([for name in output.alarm_names : name if strcontains(name, "integration")]) == 0
    error_message = "IntegrationError counts every routine $connect refusal (4XX): no alarm watches it."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.sweep_not_running[0].treat_missing_data == "breaching" && aws_cloudwatch_metric_alarm.sweep_not_finishing[0].treat_missing_data == "breaching" && aws_cloudwatch_metric_alarm.sweep_not_running[0].metric_name == "SweepShardRuns"
    error_message = "A sweep that stops running or finishing is an alarm: missing data breaches."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.ratio["welcome-failures"].threshold == 5 && strcontains(one([for q in aws_cloudwatch_metric_alarm.ratio["welcome-failures"].metric_query : q.expression if q.id == "ratio"]), "IF(total >= 20")
    error_message = "The welcome ratio fires above 5% once a period has 20 first messages."
  }

  assert {
    condition = toset(flatten([
      for query in aws_cloudwatch_metric_alarm.ratio["fanout-failures"].metric_query : [for metric in query.metric : metric.metric_name]
    ])) == toset(["FanoutFailed", "FanoutDelivered", "FanoutGone"])
    error_message = "The fan-out ratio is failed over delivered + gone + failed."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.jwks.metric_name == "JwksFetchFailures" && aws_cloudwatch_metric_alarm.jwks.dimensions == tomap({ Stage = "dev" })
    error_message = "JWKS fetch failures by Stage."
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
    condition     = alltrue([for name, actions in output.alarm_actions : toset(actions) == toset([aws_sns_topic.this.arn])])
    error_message = "Every alarm notifies the SNS topic."
  }

  assert {
    condition     = alltrue([for name, description in output.alarm_descriptions : strcontains(description, "Look first at")])
    error_message = "Every alarm says what to look at first."
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
