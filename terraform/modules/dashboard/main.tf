locals {
  ns    = var.metrics_namespace
  stage = var.stage

  # A widget of line graphs; metrics in CloudWatch's dashboard body syntax.
  functions = sort(keys(var.function_names))

  per_function = {
    for metric in ["Errors", "Duration", "Throttles"] : metric => [
      for name in local.functions : ["AWS/Lambda", metric, "FunctionName", var.function_names[name], {
        label = name, stat = metric == "Duration" ? "p99" : "Sum"
      }]
    ]
  }

  per_table = {
    for metric in ["ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "ReadThrottleEvents", "WriteThrottleEvents"] : metric => [
      for role, name in var.table_names : ["AWS/DynamoDB", metric, "TableName", name, { label = "${role} ${metric}", stat = "Sum" }]
    ]
  }

  # Sessions and listeners now: each sweep_shard run reports its shard's
  # counts; the average per run times the shards is the total, whatever the
  # number of runs that fell into one period.
  sessions_now = [
    [{ expression = "s / r * ${var.sweep_shards}", label = "sessions", id = "sessions" }],
    [{ expression = "l / r * ${var.sweep_shards}", label = "listeners", id = "listeners" }],
    [local.ns, "ActiveSessions", "Stage", local.stage, { id = "s", stat = "Sum", visible = false }],
    [local.ns, "ConnectedListeners", "Stage", local.stage, { id = "l", stat = "Sum", visible = false }],
    [local.ns, "SweepShardRuns", "Stage", local.stage, { id = "r", stat = "Sum", visible = false }],
  ]

  # Closed sets (codes, intents, reasons) are found by search, so a new code
  # shows up without a change here.
  by = { for dimension in ["Intent", "Code", "Reason", "Function", "Limit", "Role"] :
    dimension => "{${local.ns},Stage,${dimension}} Stage=\"${local.stage}\""
  }

  widgets = [
    { title = "Sessions and listeners now", metrics = local.sessions_now, period = 60 },
    { title = "Joins (connections admitted by intent)", metrics = [[{ expression = "SEARCH('${local.by.Intent} MetricName=\"ConnectionsAdmitted\"', 'Sum', 60)", id = "admitted" }]], period = 60 },
    { title = "Refusals by code ($connect)", metrics = [[{ expression = "SEARCH('${local.by.Code} MetricName=\"ConnectRefusals\"', 'Sum', 60)", id = "refusals" }]], period = 60 },
    { title = "Refusals by code (messages) and rate limits", metrics = [
      [{ expression = "SEARCH('${local.by.Code} MetricName=\"MessageRefusals\"', 'Sum', 60)", id = "messages" }],
      [{ expression = "SEARCH('${local.by.Limit} MetricName=\"RateLimitRefusals\"', 'Sum', 60)", id = "limits" }],
    ], period = 60 },
    { title = "First message: latency (ms)", metrics = [
      [local.ns, "WelcomeLatency", "Stage", local.stage, { stat = "p50", label = "p50" }],
      [local.ns, "WelcomeLatency", "Stage", local.stage, { stat = "p99", label = "p99" }],
    ], period = 60 },
    { title = "First message: outcomes", metrics = [
      for metric in ["WelcomeDelivered", "WelcomeGone", "WelcomeFailed"] : [local.ns, metric, "Stage", local.stage, { stat = "Sum" }]
    ], period = 60 },
    { title = "Fan-out: posts", metrics = [
      for metric in ["FanoutDelivered", "FanoutGone", "FanoutFailed"] : [local.ns, metric, "Stage", local.stage, { stat = "Sum" }]
    ], period = 60 },
    { title = "Fan-out: duration (ms)", metrics = [
      [local.ns, "FanoutDuration", "Stage", local.stage, { stat = "p50", label = "p50" }],
      [local.ns, "FanoutDuration", "Stage", local.stage, { stat = "p99", label = "p99" }],
    ], period = 60 },
    { title = "Sweep: runs and runs finished in time", metrics = [
      for metric in ["SweepShardRuns", "SweepCompleted", "SweepSkipped"] : [local.ns, metric, "Stage", local.stage, { stat = "Sum" }]
    ], period = 60 },
    { title = "Sweep: duration (ms) and work", metrics = [
      [local.ns, "SweepDuration", "Stage", local.stage, { stat = "Maximum", label = "longest run" }],
      [{ expression = "SEARCH('${local.by.Reason} MetricName=\"SweepActions\"', 'Sum', 60)", id = "actions" }],
    ], period = 60 },
    { title = "Sessions ended, forced closes (by reason)", metrics = [
      [{ expression = "SEARCH('${local.by.Reason} MetricName=\"SessionsEnded\"', 'Sum', 60)", id = "ended" }],
      [{ expression = "SEARCH('${local.by.Reason} MetricName=\"ForcedCloses\"', 'Sum', 60)", id = "closed" }],
    ], period = 60 },
    { title = "Faults caught (by function) and JWKS fetch failures", metrics = [
      [{ expression = "SEARCH('${local.by.Function} MetricName=\"Faults\"', 'Sum', 60)", id = "faults" }],
      [local.ns, "JwksFetchFailures", "Stage", local.stage, { stat = "Sum" }],
    ], period = 60 },
    { title = "Lambda errors per function", metrics = local.per_function.Errors, period = 60 },
    { title = "Lambda duration p99 per function (ms)", metrics = local.per_function.Duration, period = 60 },
    { title = "Lambda throttles per function", metrics = local.per_function.Throttles, period = 60 },
    { title = "WebSocket API", metrics = [
      for metric in ["ConnectCount", "MessageCount", "ClientError", "IntegrationError", "ExecutionError"] :
      ["AWS/ApiGateway", metric, "ApiId", var.api.id, "Stage", var.api.stage_name, { stat = "Sum" }]
    ], period = 60 },
    { title = "DynamoDB consumed capacity", metrics = concat(local.per_table.ConsumedReadCapacityUnits, local.per_table.ConsumedWriteCapacityUnits), period = 60 },
    { title = "DynamoDB throttles (tables)", metrics = concat(local.per_table.ReadThrottleEvents, local.per_table.WriteThrottleEvents), period = 60 },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.widgets : {
        type   = "metric"
        x      = (index % 3) * 8
        y      = floor(index / 3) * 6
        width  = 8
        height = 6
        properties = {
          title   = widget.title
          region  = var.region
          view    = "timeSeries"
          stacked = false
          period  = widget.period
          metrics = widget.metrics
        }
      }
    ]
  })
}
