locals {
  source_code_hash = filebase64sha256(var.package_zip_path)

  function_names = { for name, fn in var.functions : name => "${var.name_prefix}-${name}" }

  scheduled = { for name, fn in var.functions : name => fn if fn.schedule != null }

  # ${execution_arn}/${stage}/${verb}/@connections/*: POST sends, GET reads
  # connection info, DELETE closes the socket; each function gets only the verbs it uses.
  manage_connections_arns = {
    for name, grant in var.permissions : name => [
      for verb in grant.manage_connections :
      "${var.connections_api.execution_arn}/${var.connections_api.stage_name}/${verb}/@connections/*"
    ] if var.connections_api != null
  }

  unknown_permissions = setsubtract(keys(var.functions), keys(var.permissions))
}

################################################################################
# Log groups
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  for_each = var.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

################################################################################
# IAM: one role per function, inline policy with only what the function uses
################################################################################

resource "aws_iam_role" "this" {
  for_each = var.functions

  name                 = substr("${local.function_names[each.key]}-role", 0, 64)
  description          = "Execution role of ${local.function_names[each.key]} (${each.value.handler})."
  permissions_boundary = var.role_permissions_boundary_arn

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })

  tags = var.tags
}

locals {
  policy_statements = {
    for name, fn in var.functions : name => concat(
      [{
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.this[name].arn}:*"]
      }],
      [
        for index, grant in try(var.permissions[name].dynamodb, []) : {
          Sid      = "DynamoDB${index}"
          Effect   = "Allow"
          Action   = sort(distinct([for action in grant.actions : "dynamodb:${action}"]))
          Resource = grant.resources
        }
      ],
      length(try(local.manage_connections_arns[name], [])) > 0 ? [{
        Sid      = "ManageConnections"
        Effect   = "Allow"
        Action   = ["execute-api:ManageConnections"]
        Resource = local.manage_connections_arns[name]
      }] : [],
      length(try(var.permissions[name].invoke_functions, [])) > 0 ? [{
        Sid      = "InvokeFunctions"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [for target in var.permissions[name].invoke_functions : aws_lambda_function.this[target].arn]
      }] : [],
      length(try(var.permissions[name].kinesis_put_record_stream_arns, [])) > 0 ? [{
        Sid      = "PutAudioRecords"
        Effect   = "Allow"
        Action   = ["kinesis:PutRecord"]
        Resource = var.permissions[name].kinesis_put_record_stream_arns
      }] : [],
    )
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = var.functions

  name = "least-privilege"
  role = aws_iam_role.this[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.policy_statements[each.key]
  })
}

################################################################################
# Functions
################################################################################

resource "aws_lambda_function" "this" {
  for_each = var.functions

  function_name    = local.function_names[each.key]
  description      = "${each.value.handler} (${each.value.trigger})"
  role             = aws_iam_role.this[each.key].arn
  handler          = each.value.handler
  runtime          = var.runtime
  architectures    = [var.architecture]
  memory_size      = coalesce(each.value.memory_size, var.default_memory_size)
  timeout          = coalesce(each.value.timeout, var.default_timeout)
  filename         = var.package_zip_path
  source_code_hash = local.source_code_hash

  reserved_concurrent_executions = coalesce(each.value.reserved_concurrency, -1)

  environment {
    variables = merge(each.value.environment, var.environment)
  }

  # Lambda's own lines (START, REPORT, uncaught errors) as JSON, like the app's.
  logging_config {
    log_format = var.log_format
    log_group  = aws_cloudwatch_log_group.this[each.key].name
    # With JSON, Lambda drops the function's lines below this level (INFO when
    # unset), whatever LOG_LEVEL lets through; only JSON takes these settings.
    application_log_level = var.log_format == "JSON" ? var.application_log_level : null
    system_log_level      = var.log_format == "JSON" ? "INFO" : null
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.this]

  lifecycle {
    precondition {
      condition     = contains(keys(var.permissions), each.key)
      error_message = "Function ${each.key} has no entry in var.permissions: add its IAM needs (docs/design-contract.md) before deploying it."
    }

    precondition {
      condition     = alltrue([for target in try(var.permissions[each.key].invoke_functions, []) : contains(keys(var.functions), target)])
      error_message = "Function ${each.key} may invoke a function that is not in the manifest."
    }
  }
}

################################################################################
# Asynchronous invocation (Lambda's event queue): retries and maximum age
################################################################################

resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = var.asynchronous_invocation

  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = each.value.maximum_retry_attempts
  maximum_event_age_in_seconds = each.value.maximum_event_age_in_seconds
}

################################################################################
# Schedules (@app.schedule)
################################################################################

resource "aws_cloudwatch_event_rule" "this" {
  for_each = local.scheduled

  name                = substr("${local.function_names[each.key]}-schedule", 0, 64)
  description         = "Runs ${local.function_names[each.key]} on ${each.value.schedule}."
  schedule_expression = each.value.schedule
  state               = var.schedules_enabled ? "ENABLED" : "DISABLED"

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = local.scheduled

  rule = aws_cloudwatch_event_rule.this[each.key].name
  arn  = aws_lambda_function.this[each.key].arn
}

resource "aws_lambda_permission" "schedule" {
  for_each = local.scheduled

  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.key].arn
}
