locals {
  alarm_actions = [aws_sns_topic.this.arn]

  # Every metric below is one the service really emits with exactly these
  # dimensions, so every alarm can fire:
  # - AWS/Lambda Errors, Throttles: FunctionName.
  # - AWS/ApiGateway (WebSocket) IntegrationError, ExecutionError: ApiId + Stage
  #   (emitted without detailed metrics; per-route dimensions need them).
  # - AWS/DynamoDB ReadThrottleEvents, WriteThrottleEvents: TableName for the
  #   table, TableName + GlobalSecondaryIndexName for each index (the table's
  #   series excludes its indexes); SystemErrors: TableName + Operation only,
  #   so it is summed over the operations the app calls.
  api_metrics = {
    integration-errors = { metric = "IntegrationError", description = "integration (Lambda) 4XX/5XX responses" }
    execution-errors   = { metric = "ExecutionError", description = "errors calling the integration" }
  }

  function_alarms = merge(
    { for name, fn in var.function_names : "${name}-errors" => { function = fn, metric = "Errors", threshold = var.lambda_errors_threshold } },
    { for name, fn in var.function_names : "${name}-throttles" => { function = fn, metric = "Throttles", threshold = var.lambda_throttles_threshold } },
  )

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
# Lambda
################################################################################

resource "aws_cloudwatch_metric_alarm" "lambda" {
  for_each = local.function_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = "${each.value.function}: ${each.value.metric} >= ${each.value.threshold} in ${var.period_seconds} s."
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = each.value.function }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

################################################################################
# API Gateway (WebSocket stage)
################################################################################

resource "aws_cloudwatch_metric_alarm" "api" {
  for_each = local.api_metrics

  alarm_name          = "${var.name_prefix}-api-${each.key}"
  alarm_description   = "WebSocket API ${var.api.id} stage ${var.api.stage_name}: ${each.value.description} >= ${var.api_errors_threshold} in ${var.period_seconds} s."
  namespace           = "AWS/ApiGateway"
  metric_name         = each.value.metric
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
  alarm_description   = "${each.value.table} and its indexes: ${each.value.metric} >= ${var.dynamodb_throttles_threshold} in ${var.period_seconds} s."
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
  alarm_description   = "${each.value.name}: SystemErrors (HTTP 500) summed over ${join(", ", var.dynamodb_operations)} >= ${var.dynamodb_system_errors_threshold} in ${var.period_seconds} s."
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
