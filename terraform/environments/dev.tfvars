# make deploy STAGE=dev (and make deploy-local): development stage.
# Every variable is described in ../variables.tf; anything unset keeps its default.

log_level          = "DEBUG"
log_retention_days = 14

point_in_time_recovery_enabled = false
deletion_protection_enabled    = false

throttling_burst_limit = 100
throttling_rate_limit  = 50

# Speakers: the stack creates its own Cognito user pool unless these name an
# existing one (see ../README.md, "Speaker sign-in").
# token_issuer   = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_XXXXXXXXX"
# token_audience = "xxxxxxxxxxxxxxxxxxxxxxxxxx"

# alarm_email = "you@example.com"

# Lambda runtime and architecture: choose them on the command line, which sets both
# the package and these variables (make deploy RUNTIME=python3.12 ARCH=arm64); set
# here alone, the plan refuses a package built for another target.

# With terraform/deployer-policy.json, every role needs the project's boundary (../README.md, step 1).
# role_permissions_boundary_arn = "arn:aws:iam::123456789012:policy/broadcast-permissions-boundary"

# Once per account and region, if API Gateway has no CloudWatch Logs role yet (../README.md, step 3).
# manage_api_gateway_account = true
