################################################################################
# User pool: speakers sign in here (listeners are anonymous)
################################################################################

resource "aws_cognito_user_pool" "this" {
  name = var.name

  # Speakers sign in with their e-mail address; an administrator creates them
  # (make speaker-user): nobody can sign up on their own.
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"

  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = var.password_minimum_length
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 7
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  tags = var.tags
}

################################################################################
# App client: public (no secret: tokens are obtained in browsers and CLIs)
################################################################################

resource "aws_cognito_user_pool_client" "this" {
  name         = "${var.name}-client"
  user_pool_id = aws_cognito_user_pool.this.id

  generate_secret = false
  explicit_auth_flows = [
    "ALLOW_USER_SRP_AUTH",      # browsers (the password never leaves them)
    "ALLOW_USER_PASSWORD_AUTH", # make speaker-token, CLIs
    "ALLOW_REFRESH_TOKEN_AUTH",
  ]
  prevent_user_existence_errors = "ENABLED"

  # The ID token travels in the WebSocket URL (browsers cannot set headers):
  # keep it short-lived. Clients fetch a fresh one for each reconnect.
  id_token_validity      = var.id_token_validity_minutes
  access_token_validity  = var.id_token_validity_minutes
  refresh_token_validity = var.refresh_token_validity_days
  token_validity_units {
    id_token      = "minutes"
    access_token  = "minutes"
    refresh_token = "days"
  }
}
