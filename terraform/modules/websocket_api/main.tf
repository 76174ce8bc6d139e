locals {
  stage_name = var.stage_name

  # WebSocket APIs accept an authorizer on $connect only: the handshake is the
  # one request that carries the caller's credentials (the speaker's token in
  # the query string, since browsers cannot set headers on a WebSocket).
  authorized_route = "$connect"
}

################################################################################
# API
################################################################################

resource "aws_apigatewayv2_api" "this" {
  name                       = var.name
  description                = var.description
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.action"

  tags = var.tags
}

################################################################################
# Authorizer (REQUEST, no identity sources)
#
# With identity sources, API Gateway answers 401 without invoking the
# authorizer whenever one is missing, which would refuse anonymous listeners.
# Without them nothing can be cached, so the result TTL is 0.
################################################################################

resource "aws_apigatewayv2_authorizer" "this" {
  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-authorizer"
  authorizer_type  = "REQUEST"
  authorizer_uri   = var.authorizer.invoke_arn
  identity_sources = []
}

################################################################################
# Integrations and routes
################################################################################

resource "aws_apigatewayv2_integration" "this" {
  for_each = var.routes

  api_id                    = aws_apigatewayv2_api.this.id
  description               = "${each.key} -> ${each.value.function_name}"
  integration_type          = "AWS_PROXY"
  integration_method        = "POST"
  integration_uri           = each.value.invoke_arn
  content_handling_strategy = "CONVERT_TO_TEXT"
  passthrough_behavior      = "WHEN_NO_MATCH"
}

resource "aws_apigatewayv2_route" "this" {
  for_each = var.routes

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.this[each.key].id}"
  authorization_type = each.key == local.authorized_route ? "CUSTOM" : "NONE"
  authorizer_id      = each.key == local.authorized_route ? aws_apigatewayv2_authorizer.this.id : null
}

################################################################################
# Stage
#
# auto_deploy: every route change is deployed without an explicit deployment
# resource (which LocalStack-compatible emulators such as moto cannot create).
################################################################################

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/${local.stage_name}/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

resource "aws_apigatewayv2_stage" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = local.stage_name
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit   = var.throttling_burst_limit
    throttling_rate_limit    = var.throttling_rate_limit
    detailed_metrics_enabled = var.detailed_metrics_enabled
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format          = jsonencode(var.access_log_format)
  }

  tags = var.tags

  # The stage's routes must exist before auto_deploy takes its first deployment.
  depends_on = [aws_apigatewayv2_route.this]
}

################################################################################
# Permissions for API Gateway to invoke the functions
################################################################################

resource "aws_lambda_permission" "routes" {
  for_each = var.routes

  statement_id  = "AllowApiGatewayRoute${replace(each.key, "$", "")}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/${local.stage_name}/${each.key}"
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = var.authorizer.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.this.id}"
}
