output "api_id" {
  description = "ID of the WebSocket API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "wss:// endpoint of the API, without the stage."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "api_execution_arn" {
  description = "Execution ARN prefix of the API (arn:aws:execute-api:region:account:api_id)."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_apigatewayv2_stage.this.name
}

output "stage_arn" {
  description = "ARN of the stage."
  value       = aws_apigatewayv2_stage.this.arn
}

output "stage_invoke_url" {
  description = "wss:// URL clients connect to."
  value       = aws_apigatewayv2_stage.this.invoke_url
}

output "authorizer_id" {
  description = "ID of the REQUEST authorizer on $connect."
  value       = aws_apigatewayv2_authorizer.this.id
}

output "routes" {
  description = "Route ID, authorization type and authorizer of each route key."
  value = {
    for key, route in aws_apigatewayv2_route.this : key => {
      id                 = route.id
      authorization_type = route.authorization_type
      authorizer_id      = route.authorizer_id
    }
  }
}

output "access_log_group_name" {
  description = "Name of the stage's access log group."
  value       = aws_cloudwatch_log_group.access.name
}
