# make deploy STAGE=prod: production stage.
# Every variable is described in ../variables.tf; anything unset keeps its default.

log_level          = "INFO"
log_retention_days = 90

# Tables survive a mistaken destroy; turn deletion protection off (and apply)
# before a deliberate `make destroy STAGE=prod`.
point_in_time_recovery_enabled = true
deletion_protection_enabled    = true

throttling_burst_limit = 500
throttling_rate_limit  = 1000

# Set both before the first real deploy: with an empty issuer every speaker is refused.
# token_issuer   = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_XXXXXXXXX"
# token_audience = "xxxxxxxxxxxxxxxxxxxxxxxxxx"

# alarm_email = "oncall@example.com"
