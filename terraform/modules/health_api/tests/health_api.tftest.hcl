# Plan-level checks of modules/health_api with a mocked provider.

mock_provider "aws" {
  override_during = plan

  mock_resource "aws_apigatewayv2_api" {
    defaults = {
      id            = "h1e2a3l4t5"
      api_endpoint  = "https://h1e2a3l4t5.execute-api.us-east-1.amazonaws.com"
      execution_arn = "arn:aws:execute-api:us-east-1:123456789012:h1e2a3l4t5"
      arn           = "arn:aws:apigateway:us-east-1::/apis/h1e2a3l4t5"
    }
  }
}

variables {
  name = "broadcast-dev-health"
  function = {
    name       = "broadcast-dev-api_handler"
    invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:broadcast-dev-api_handler/invocations"
  }
}

run "one_public_route_on_the_function" {
  command = plan

  assert {
    condition     = aws_apigatewayv2_api.this.protocol_type == "HTTP" && aws_apigatewayv2_route.health.route_key == "GET /health"
    error_message = "An HTTP API with exactly the route GET /health."
  }

  assert {
    condition     = aws_apigatewayv2_integration.this.integration_type == "AWS_PROXY" && aws_apigatewayv2_integration.this.payload_format_version == "1.0"
    error_message = "A Lambda proxy integration with payload format 1.0 (the event Chalice's routes read)."
  }

  assert {
    condition     = aws_apigatewayv2_stage.this.name == "$default" && aws_apigatewayv2_stage.this.auto_deploy
    error_message = "The $default stage, deployed automatically."
  }

  assert {
    condition     = aws_apigatewayv2_stage.this.default_route_settings[0].throttling_rate_limit == 5 && aws_apigatewayv2_stage.this.default_route_settings[0].throttling_burst_limit == 10
    error_message = "The public route is throttled by default."
  }

  assert {
    condition     = aws_lambda_permission.this.source_arn == "arn:aws:execute-api:us-east-1:123456789012:h1e2a3l4t5/*/GET/health" && aws_lambda_permission.this.principal == "apigateway.amazonaws.com"
    error_message = "Only this API's GET /health may invoke the function."
  }

  assert {
    condition     = output.health_url == "https://h1e2a3l4t5.execute-api.us-east-1.amazonaws.com/health"
    error_message = "health_url is the API endpoint plus /health."
  }
}

run "timeout_is_bounded" {
  command = plan

  variables {
    timeout_milliseconds = 40000
  }

  expect_failures = [var.timeout_milliseconds]
}
