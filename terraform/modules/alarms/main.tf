locals {
  alarm_actions = [aws_sns_topic.this.arn]
  stage         = { Stage = var.stage }

  # Nothing routine pages (docs/observability.md): an authorizer's verdict on a
  # token is no Lambda error, $connect refusals are answers (API Gateway counts
  # them in IntegrationError, which is therefore not watched), a gone connection
  # is an outcome. Every alarm watches a metric the service really emits with
  # exactly these dimensions (tests/terraform/test_alarm_metrics.py):
  # - AWS/Lambda Errors, Throttles: FunctionName;
  # - AWS/ApiGateway (WebSocket) ExecutionError: ApiId + Stage;
  # - AWS/DynamoDB ReadThrottleEvents, WriteThrottleEvents: TableName, and
  #   TableName + GlobalSecondaryIndexName per index; SystemErrors: TableName +
  #   Operation only;
  # - Broadcast (the app's EMF lines, chalicelib/observability/metrics.py): Stage,
  #   plus Function for Faults.
  function_alarms = { for name, fn in var.function_names : name => { function = fn } }

  throttle_alarms = merge([
    for role, table in var.tables : {
      for kind in ["Read", "Write"] : "${role}-${lower(kind)}-throttles" => {
        table  = table.name
        metric = "${kind}ThrottleEvents"
        series = concat(
          [{ TableName = table.name }],
          [for index in table.global_secondary_indexes : { TableName = table.name, GlobalSecondaryIndexName = index }],
        )
      }
    }
  ]...)

  # Ratios of the app's own counts: failed / attempts, alarming above a percentage
  # once a period has enough attempts to mean something.
  ratio_alarms = {
    welcome-failures = {
      failed      = "WelcomeFailed"
      others      = ["WelcomeDelivered"]
      percent     = var.welcome_failure_percent
      minimum     = var.welcome_minimum_attempts
      description = "First messages not delivered by their deadline to connections still there, above ${var.welcome_failure_percent}% of first messages (at least ${var.welcome_minimum_attempts} in ${var.period_seconds} s); clients that left first are not counted. Look first at: deliver_welcome's log lines with level WARNING or ERROR (\"first message\"), its Throttles and Duration, and the @connections endpoint (MANAGEMENT_API_URL)."
    }
    fanout-failures = {
      failed      = "FanoutFailed"
      others      = ["FanoutDelivered", "FanoutGone"]
      percent     = var.fanout_failure_percent
      minimum     = var.fanout_minimum_posts
      description = "Fan-out posts that failed (throttled or 5xx from @connections, not gone) above ${var.fanout_failure_percent}% of posts (at least ${var.fanout_minimum_posts} in ${var.period_seconds} s): listeners are missing messages. Look first at: \"send failed\" log lines of publish and websocket_message (their error says which code), then the account's API Gateway @connections throttling limits."
    }
  }
}

################################################################################
# SNS topic
################################################################################

resource "aws_sns_topic" "this" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.sns_kms_key_id

  tags = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

################################################################################
# Lambda: faults per function (uncaught errors plus errors the handler caught
# and answered), throttles
################################################################################

resource "aws_cloudwatch_metric_alarm" "faults" {
  for_each = local.function_alarms

  alarm_name          = "${var.name_prefix}-${each.key}-faults"
  alarm_description   = "${each.value.function} failed ${var.lambda_errors_threshold} time(s) or more in ${var.period_seconds} s: the larger of ${var.metrics_namespace} Faults (every error the code saw, caught and answered as INTERNAL_ERROR or SERVICE_UNAVAILABLE, or uncaught) and AWS/Lambda Errors (uncaught, and what the code never saw: timeouts, out of memory, a failed cold start). Refusals of clients are not counted. Look first at: Logs Insights on /aws/lambda/${each.value.function} with `filter level = \"ERROR\"` (errorType, stackTrace, requestId), then its Duration against its timeout."
  evaluation_periods  = var.evaluation_periods
  threshold           = var.lambda_errors_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "faults"
    expression  = "MAX([FILL(errors, 0), FILL(caught, 0)])"
    label       = "${each.key} faults"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = each.value.function }
      stat        = "Sum"
      period      = var.period_seconds
    }
  }

  metric_query {
    id = "caught"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "Faults"
      dimensions  = merge(local.stage, { Function = each.key })
      stat        = "Sum"
      period      = var.period_seconds
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each = local.function_alarms

  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "${each.value.function}: Throttles >= ${var.lambda_throttles_threshold} in ${var.period_seconds} s (invocations refused for lack of concurrency). Look first at: the account's ConcurrentExecutions against its quota, and the function's reserved concurrency."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value.function }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  threshold           = var.lambda_throttles_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

################################################################################
# The authorizer cannot fetch the signing keys (JWKS unreachable)
################################################################################

resource "aws_cloudwatch_metric_alarm" "jwks" {
  alarm_name          = "${var.name_prefix}-jwks-unavailable"
  alarm_description   = "The authorizer failed to fetch the token signing keys ${var.jwks_failures_threshold} time(s) or more in ${var.period_seconds} s: speakers are refused with 503 SERVICE_UNAVAILABLE (listeners are unaffected). Look first at: the authorizer's log lines \"speaker token refused: signing keys unavailable\" (the error type), JWKS_URL, and the Cognito user pool and network egress."
  namespace           = var.metrics_namespace
  metric_name         = "JwksFetchFailures"
  dimensions          = local.stage
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  threshold           = var.jwks_failures_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

################################################################################
# First message and fan-out failure ratios
################################################################################

resource "aws_cloudwatch_metric_alarm" "ratio" {
  for_each = local.ratio_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  evaluation_periods  = var.evaluation_periods
  threshold           = each.value.percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "ratio"
    expression  = "IF(total >= ${each.value.minimum}, 100 * FILL(m0, 0) / total, 0)"
    label       = "${each.value.failed} (% of attempts)"
    return_data = true
  }

  metric_query {
    id         = "total"
    expression = join(" + ", [for index in range(length(each.value.others) + 1) : "FILL(m${index}, 0)"])
    label      = "attempts"
  }

  # m0 is the failures, the others the rest of the attempts.
  dynamic "metric_query" {
    for_each = concat([each.value.failed], each.value.others)

    content {
      id = "m${metric_query.key}"

      metric {
        namespace   = var.metrics_namespace
        metric_name = metric_query.value
        dimensions  = local.stage
        stat        = "Sum"
        period      = var.period_seconds
      }
    }
  }

  tags = var.tags
}

################################################################################
# The sweep: not running (missing data is breaching), not finishing in time
################################################################################

resource "aws_cloudwatch_metric_alarm" "sweep_not_running" {
  count = var.sweep_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-sweep-not-running"
  alarm_description   = "No sweep_shard run in ${var.period_seconds} s (expected ${var.sweep_shards} a minute): ghosts are not cleared, sessions do not expire, notices are not sent. Look first at: the sweep's EventBridge rule (enabled?), the sweep function's faults and log (\"could not start the sweep of shard\"), and lambda:InvokeFunction on sweep_shard."
  namespace           = var.metrics_namespace
  metric_name         = "SweepShardRuns"
  dimensions          = local.stage
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "sweep_not_finishing" {
  count = var.sweep_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-sweep-not-finishing"
  alarm_description   = "Sweep runs left sessions unchecked (out of time) or failed, ${var.sweep_unfinished_periods} periods of ${var.period_seconds} s in a row (missing runs count as unfinished). Look first at: SweepDuration and SweepSkipped on the dashboard, sweep_shard's Duration against its timeout; raise SWEEP_SHARDS or SWEEP_CONCURRENCY."
  evaluation_periods  = var.sweep_unfinished_periods
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "finished"
    expression  = "IF(FILL(runs, 0) > 0, FILL(completed, 0) / runs, 0)"
    label       = "sweep runs finished in time (fraction)"
    return_data = true
  }

  metric_query {
    id = "runs"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "SweepShardRuns"
      dimensions  = local.stage
      stat        = "Sum"
      period      = var.period_seconds
    }
  }

  metric_query {
    id = "completed"

    metric {
      namespace   = var.metrics_namespace
      metric_name = "SweepCompleted"
      dimensions  = local.stage
      stat        = "Sum"
      period      = var.period_seconds
    }
  }

  tags = var.tags
}

################################################################################
# API Gateway (WebSocket stage): the integration could not be called
################################################################################

resource "aws_cloudwatch_metric_alarm" "api_execution_errors" {
  alarm_name          = "${var.name_prefix}-api-execution-errors"
  alarm_description   = "WebSocket API ${var.api.id} stage ${var.api.stage_name}: ExecutionError >= ${var.api_errors_threshold} in ${var.period_seconds} s (API Gateway could not call a route's function: throttled, timed out, not permitted). The API's other 5XX, errors of the route functions, are their -faults alarms. Look first at: the API's access log (/aws/apigateway/...), the route functions' Throttles and Duration, and their resource policies."
  namespace           = "AWS/ApiGateway"
  metric_name         = "ExecutionError"
  dimensions          = { ApiId = var.api.id, Stage = var.api.stage_name }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  threshold           = var.api_errors_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

################################################################################
# DynamoDB
################################################################################

resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each = local.throttle_alarms

  alarm_name          = "${var.name_prefix}-dynamodb-${each.key}"
  alarm_description   = "${each.value.table} and its indexes: ${each.value.metric} >= ${var.dynamodb_throttles_threshold} in ${var.period_seconds} s. Look first at: the table's consumed capacity on the dashboard (a hot key? on-demand's per-partition limits) and which function's log shows \"DynamoDB ... failed: ...Throttl...\"."
  evaluation_periods  = var.evaluation_periods
  threshold           = var.dynamodb_throttles_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "total"
    expression  = "SUM(METRICS())"
    label       = "${each.value.metric} (table and indexes)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = each.value.series

    content {
      id = "m${metric_query.key}"

      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = each.value.metric
        dimensions  = metric_query.value
        stat        = "Sum"
        period      = var.period_seconds
      }
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dynamodb_system_errors" {
  for_each = var.tables

  alarm_name          = "${var.name_prefix}-dynamodb-${each.key}-system-errors"
  alarm_description   = "${each.value.name}: SystemErrors (HTTP 500 from DynamoDB) summed over ${join(", ", var.dynamodb_operations)} >= ${var.dynamodb_system_errors_threshold} in ${var.period_seconds} s. Look first at: the AWS Health Dashboard for DynamoDB in this region, then the functions' faults alarms (callers answer SERVICE_UNAVAILABLE)."
  evaluation_periods  = var.evaluation_periods
  threshold           = var.dynamodb_system_errors_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "total"
    expression  = "SUM(METRICS())"
    label       = "SystemErrors (all operations)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = var.dynamodb_operations

    content {
      id = "m${metric_query.key}"

      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = "SystemErrors"
        dimensions  = { TableName = each.value.name, Operation = metric_query.value }
        stat        = "Sum"
        period      = var.period_seconds
      }
    }
  }

  tags = var.tags
}
