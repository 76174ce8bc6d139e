# make deploy STAGE=prod: production stage.
# Every variable is described in ../variables.tf; anything unset keeps its default.

log_level          = "INFO"
log_retention_days = 90

# Tables survive a mistaken destroy; turn deletion protection off (and apply)
# before a deliberate `make destroy STAGE=prod`.
point_in_time_recovery_enabled = true
deletion_protection_enabled    = true

throttling_burst_limit = 5000
throttling_rate_limit  = 10000

# Speakers: the stack creates its own Cognito user pool (create_user_pool = true,
# protected from deletion with the tables). To use an existing pool instead, set both:
# token_issuer   = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_XXXXXXXXX"
# token_audience = "xxxxxxxxxxxxxxxxxxxxxxxxxx"

# alarm_email = "oncall@example.com"

# Lambda runtime and architecture: choose them on the command line, which sets both
# the package and these variables (make deploy RUNTIME=python3.12 ARCH=arm64); set
# here alone, the plan refuses a package built for another target.

# With terraform/deployer-policy.json, every role needs the project's boundary (../README.md, step 1).
# role_permissions_boundary_arn = "arn:aws:iam::123456789012:policy/broadcast-permissions-boundary"

# Once per account and region, if API Gateway has no CloudWatch Logs role yet (../README.md, step 3).
# manage_api_gateway_account = true
