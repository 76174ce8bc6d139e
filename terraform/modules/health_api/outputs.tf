output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the HTTP API (its $default stage)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "health_url" {
  description = "URL uptime monitors poll: 200 when every table answers, else 503."
  value       = "${aws_apigatewayv2_api.this.api_endpoint}/health"
}

output "route_keys" {
  description = "Route keys of the API (only GET /health)."
  value       = [aws_apigatewayv2_route.health.route_key]
}
