################################################################################
# HTTP API: one route, GET /health, on the app's api_handler function
#
# Payload format 1.0 is the REST API's proxy event, which is what Chalice's
# route dispatch reads (requestContext.resourcePath and httpMethod): "Working
# with AWS Lambda proxy integrations for HTTP APIs" in the API Gateway
# Developer Guide.
################################################################################

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  description   = "Health check of ${var.name}: GET /health"
  protocol_type = "HTTP"

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "this" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = var.function.invoke_arn
  payload_format_version = "1.0"
  timeout_milliseconds   = var.timeout_milliseconds
}

resource "aws_apigatewayv2_route" "health" {
  api_id    = aws_apigatewayv2_api.this.id
  route_key = "GET /health"
  target    = "integrations/${aws_apigatewayv2_integration.this.id}"
}

# The route is public (uptime monitors have no credentials) and each check costs
# three DynamoDB reads: the stage's throttle caps what anyone can make it cost.
resource "aws_apigatewayv2_stage" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  tags = var.tags
}

################################################################################
# Permission: this API's GET /health may invoke the function, nothing else
################################################################################

resource "aws_lambda_permission" "this" {
  statement_id  = "AllowHealthApi"
  action        = "lambda:InvokeFunction"
  function_name = var.function.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/GET/health"
}
