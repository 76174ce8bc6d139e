# Plan-level checks of modules/websocket_api on its own (mocked provider).

mock_provider "aws" {
  override_during = plan
  source          = "./tests"
}

variables {
  name       = "broadcast-dev-websocket-api"
  stage_name = "dev"
  routes = {
    "$connect"    = { function_name = "broadcast-dev-websocket_connect", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:broadcast-dev-websocket_connect/invocations" }
    "$default"    = { function_name = "broadcast-dev-websocket_message", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:broadcast-dev-websocket_message/invocations" }
    "$disconnect" = { function_name = "broadcast-dev-websocket_disconnect", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:broadcast-dev-websocket_disconnect/invocations" }
  }
  authorizer = {
    function_name = "broadcast-dev-authorizer"
    invoke_arn    = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:broadcast-dev-authorizer/invocations"
  }
}

run "websocket_api_shape" {
  command = plan

  module {
    source = "./modules/websocket_api"
  }

  assert {
    condition     = aws_apigatewayv2_api.this.protocol_type == "WEBSOCKET" && aws_apigatewayv2_api.this.route_selection_expression == "$request.body.action"
    error_message = "A WEBSOCKET API selecting routes on $request.body.action."
  }

  assert {
    condition     = toset(keys(aws_apigatewayv2_route.this)) == toset(["$connect", "$default", "$disconnect"])
    error_message = "Exactly the three routes Chalice handlers exist for."
  }

  assert {
    condition     = aws_apigatewayv2_route.this["$connect"].authorization_type == "CUSTOM" && aws_apigatewayv2_route.this["$connect"].authorizer_id == aws_apigatewayv2_authorizer.this.id
    error_message = "The authorizer must be attached to $connect."
  }

  assert {
    condition = alltrue([
      for key, route in aws_apigatewayv2_route.this : route.authorization_type == "NONE" && route.authorizer_id == null if key != "$connect"
    ])
    error_message = "The authorizer must be attached to $connect only."
  }

  assert {
    condition     = aws_apigatewayv2_authorizer.this.authorizer_type == "REQUEST" && length(coalesce(aws_apigatewayv2_authorizer.this.identity_sources, [])) == 0
    error_message = "A REQUEST authorizer without identity sources (anonymous listeners must reach it)."
  }

  assert {
    condition     = aws_apigatewayv2_stage.this.auto_deploy && aws_apigatewayv2_stage.this.name == "dev"
    error_message = "The stage deploys automatically (no aws_apigatewayv2_deployment)."
  }

  assert {
    condition     = aws_apigatewayv2_stage.this.default_route_settings[0].throttling_burst_limit == 5000 && aws_apigatewayv2_stage.this.default_route_settings[0].throttling_rate_limit == 10000
    error_message = "The stage is throttled."
  }

  assert {
    condition     = can(jsondecode(aws_apigatewayv2_stage.this.access_log_settings[0].format)) && aws_apigatewayv2_stage.this.access_log_settings[0].destination_arn == aws_cloudwatch_log_group.access.arn
    error_message = "Access logs are JSON lines in the module's log group."
  }

  assert {
    condition     = aws_cloudwatch_log_group.access.retention_in_days == 30
    error_message = "The access log group has a retention."
  }

  assert {
    condition = alltrue([
      for key, permission in aws_lambda_permission.routes :
      permission.source_arn == "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/${key}" && permission.principal == "apigateway.amazonaws.com"
    ])
    error_message = "API Gateway may invoke each route's function for that route of this stage only."
  }

  assert {
    condition     = aws_lambda_permission.authorizer.source_arn == "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/authorizers/${aws_apigatewayv2_authorizer.this.id}"
    error_message = "API Gateway may invoke the authorizer function as this API's authorizer only."
  }
}

run "rejects_unknown_route_keys" {
  command = plan

  module {
    source = "./modules/websocket_api"
  }

  variables {
    routes = {
      "$connect"    = { function_name = "a", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/x" }
      "$default"    = { function_name = "b", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/x" }
      "$disconnect" = { function_name = "c", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/x" }
      "join"        = { function_name = "d", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/x" }
    }
  }

  expect_failures = [var.routes]
}
