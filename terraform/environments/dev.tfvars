# make deploy STAGE=dev (and make deploy-local): development stage.
# Every variable is described in ../variables.tf; anything unset keeps its default.

log_level          = "DEBUG"
log_retention_days = 14

point_in_time_recovery_enabled = false
deletion_protection_enabled    = false

throttling_burst_limit = 100
throttling_rate_limit  = 50

# Speaker tokens: the Cognito user pool and app client (see ../README.md, "Cognito").
# token_issuer   = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_XXXXXXXXX"
# token_audience = "xxxxxxxxxxxxxxxxxxxxxxxxxx"

# alarm_email = "you@example.com"
