output "user_pool_id" {
  description = "ID of the user pool (<region>_<id>)."
  value       = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  description = "ARN of the user pool."
  value       = aws_cognito_user_pool.this.arn
}

output "client_id" {
  description = "ID of the public app client: the aud of ID tokens (TOKEN_AUDIENCE)."
  value       = aws_cognito_user_pool_client.this.id
}

output "issuer" {
  description = "iss of the pool's tokens (TOKEN_ISSUER): https://cognito-idp.<region>.amazonaws.com/<pool id>."
  value       = "https://cognito-idp.${var.region}.amazonaws.com/${aws_cognito_user_pool.this.id}"
}

output "jwks_url" {
  description = "Where the pool's signing keys are served (JWKS_URL)."
  value = (var.jwks_base_url == null
    ? "https://cognito-idp.${var.region}.amazonaws.com/${aws_cognito_user_pool.this.id}/.well-known/jwks.json"
  : "${trimsuffix(var.jwks_base_url, "/")}/${aws_cognito_user_pool.this.id}/.well-known/jwks.json")
}

output "client_flows" {
  description = "Auth flows the app client allows."
  value       = aws_cognito_user_pool_client.this.explicit_auth_flows
}

output "client_has_secret" {
  description = "Whether the app client has a secret (false: a public client)."
  value       = aws_cognito_user_pool_client.this.generate_secret
}
