################################################################################
# Deployment
################################################################################

variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region name such as us-east-1."
  }
}

variable "aws_max_retries" {
  description = "Maximum retries of the AWS provider's API calls. Use 1 against emulators (moto, LocalStack)."
  type        = number
  default     = 25

  validation {
    condition     = var.aws_max_retries >= 0 && floor(var.aws_max_retries) == var.aws_max_retries
    error_message = "aws_max_retries must be a non-negative integer."
  }
}

variable "app_name" {
  description = "Chalice app_name; names are <app_name>-<stage>-<thing> (docs/design-contract.md)."
  type        = string
  default     = "broadcast"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,24}$", var.app_name))
    error_message = "app_name must start with a lowercase letter and be at most 25 characters of a-z, 0-9 and '-'."
  }
}

variable "stage" {
  description = "Chalice stage being deployed (dev, prod, ...); also the default API stage name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,11}$", var.stage))
    error_message = "stage must start with a lowercase letter and be at most 12 characters of a-z and 0-9."
  }
}

variable "manifest_path" {
  description = "Path of build/<stage>/manifest.json written by tools/package.py (make package)."
  type        = string

  validation {
    condition     = fileexists(var.manifest_path)
    error_message = "The manifest does not exist: run `make package STAGE=<stage>` first."
  }

  validation {
    condition = try(
      contains(keys(jsondecode(file(var.manifest_path)).functions), "authorizer") &&
      toset([for fn in values(jsondecode(file(var.manifest_path)).functions) : fn.websocket_route if try(fn.websocket_route, null) != null]) == toset(["$connect", "$default", "$disconnect"]),
      false,
    )
    error_message = "The manifest must hold the authorizer function and one function for each of $connect, $default and $disconnect (docs/design-contract.md)."
  }

  validation {
    condition     = try(jsondecode(file(var.manifest_path)).target.runtime != "", false)
    error_message = "The manifest names no target runtime: it was written by an older tools/package.py. Run `make package` again."
  }
}

variable "package_zip_path" {
  description = "Path of the deployment zip. null: the zip named in the manifest, next to it."
  type        = string
  default     = null

  validation {
    condition     = var.package_zip_path == null || fileexists(coalesce(var.package_zip_path, "-"))
    error_message = "package_zip_path does not exist: run `make package STAGE=<stage>` first."
  }
}

variable "lambda_runtime" {
  description = "Lambda runtime of every function. The package must be built for it (make package RUNTIME=...; the manifest records its target and the plan refuses another)."
  type        = string
  default     = "python3.13"

  validation {
    # Amazon Linux 2023 runtimes only: python3.11 and older run on Amazon Linux 2
    # (end of life); python3.14 is not accepted by the pinned provider.
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.12 or python3.13."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of every function, x86_64 or arm64 (make package ARCH=... must match)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "role_permissions_boundary_arn" {
  description = "Permissions boundary of every IAM role this stack creates (the function roles and the optional API Gateway logging role). Required when the deployer runs with terraform/deployer-policy.json, which only creates roles with a boundary."
  type        = string
  default     = null

  validation {
    condition     = var.role_permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", coalesce(var.role_permissions_boundary_arn, "-")))
    error_message = "role_permissions_boundary_arn must be null or an IAM policy ARN (arn:aws:iam::<account>:policy/<name>)."
  }
}

variable "emulator_endpoint_url" {
  description = "Set only when applying to a local emulator (make deploy-local sets it to the emulator's URL): the user pool's keys are then served by the emulator over http, which is refused otherwise. null for AWS."
  type        = string
  default     = null

  validation {
    condition     = var.emulator_endpoint_url == null || can(regex("^https?://[^/\\s]+/?$", coalesce(var.emulator_endpoint_url, "-")))
    error_message = "emulator_endpoint_url must be null or a base URL such as http://127.0.0.1:4566."
  }
}

variable "api_stage_name" {
  description = "Name of the API Gateway stage (last path segment of the wss:// URL). null: the same as stage."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource, besides Application, Stage and ManagedBy."
  type        = map(string)
  default     = {}
}

################################################################################
# Tables
################################################################################

variable "table_names" {
  description = "Override the table names (default <app_name>-<stage>-Sessions, -Connections, -RateLimits)."
  type = object({
    sessions    = optional(string)
    connections = optional(string)
    rate_limits = optional(string)
  })
  default = {}
}

variable "point_in_time_recovery_enabled" {
  description = "Enable DynamoDB point-in-time recovery on the three tables."
  type        = bool
  default     = false
}

variable "deletion_protection_enabled" {
  description = "Enable DynamoDB deletion protection on the three tables (prod). Turn off and apply before `make destroy`."
  type        = bool
  default     = false
}

################################################################################
# Functions, API, logs
################################################################################

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "schedules_enabled" {
  description = "Enable the EventBridge schedule of @app.schedule functions (the sweep)."
  type        = bool
  default     = true
}

variable "throttling_burst_limit" {
  description = "API stage default route burst limit. Default: the account's own default burst (5,000), so the stage is never the first limit reached (docs/scaling.md)."
  type        = number
  default     = 5000

  validation {
    condition     = var.throttling_burst_limit >= 0
    error_message = "throttling_burst_limit must be non-negative."
  }
}

variable "throttling_rate_limit" {
  description = "API stage default route rate limit (requests per second). Default: the account's own default (10,000/s); raise both together (docs/scaling.md)."
  type        = number
  default     = 10000

  validation {
    condition     = var.throttling_rate_limit >= 0
    error_message = "throttling_rate_limit must be non-negative."
  }
}

variable "detailed_metrics_enabled" {
  description = "Emit per-route API Gateway metrics (billed extra)."
  type        = bool
  default     = false
}

variable "manage_api_gateway_account" {
  description = "Create the role API Gateway writes logs with and set it in the region's API Gateway account settings (needed once per account and region for access logs; see terraform/README.md)."
  type        = bool
  default     = false
}

################################################################################
# Alarms
################################################################################

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic. null for none."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be null or an e-mail address."
  }
}

variable "alarm_period_seconds" {
  description = "Period of every alarm, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60."
  }
}

variable "api_errors_threshold" {
  description = "ExecutionError count per period at which the API alarm fires (IntegrationError is routine: refused handshakes)."
  type        = number
  default     = 5

  validation {
    condition     = var.api_errors_threshold > 0
    error_message = "api_errors_threshold must be positive."
  }
}

################################################################################
# Audio (issue 6)
################################################################################

variable "audio_stream_enabled" {
  description = "Create a Kinesis stream for audio and set AUDIO_SINK=kinesis (websocket_message may kinesis:PutRecord to it)."
  type        = bool
  default     = false
}

variable "audio_stream_retention_hours" {
  description = "Retention of the audio stream, in hours."
  type        = number
  default     = 24

  validation {
    condition     = var.audio_stream_retention_hours >= 24 && var.audio_stream_retention_hours <= 8760
    error_message = "audio_stream_retention_hours must be between 24 and 8760."
  }
}

variable "audio_sink" {
  description = "AUDIO_SINK when audio_stream_enabled is false: none or relay (kinesis is selected by audio_stream_enabled)."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "relay"], var.audio_sink)
    error_message = "audio_sink must be none or relay; set audio_stream_enabled = true for kinesis."
  }
}

################################################################################
# App configuration: one variable per environment variable of chalicelib/config.py
################################################################################

variable "session_max_duration_hours" {
  description = "SESSION_MAX_DURATION_HOURS: session lifetime (expiresAt = createdAt + this), extended by a speaker refresh."
  type        = number
  default     = 2

  validation {
    condition     = var.session_max_duration_hours > 0
    error_message = "session_max_duration_hours must be positive."
  }
}

variable "max_listeners_per_session" {
  description = "MAX_LISTENERS_PER_SESSION: listener capacity of a session."
  type        = number
  default     = 500

  validation {
    condition     = var.max_listeners_per_session >= 1 && floor(var.max_listeners_per_session) == var.max_listeners_per_session
    error_message = "max_listeners_per_session must be a positive integer."
  }
}

variable "connection_refresh_minutes" {
  description = "CONNECTION_REFRESH_MINUTES: connection age at which connectionRefreshRequired is sent."
  type        = number
  default     = 100

  validation {
    condition     = var.connection_refresh_minutes > 0 && var.connection_refresh_minutes <= 120
    error_message = "connection_refresh_minutes must be in (0, 120]: API Gateway closes connections after 2 hours."
  }
}

variable "connection_warning_minutes" {
  description = "CONNECTION_WARNING_MINUTES: connection age at which connectionWarning is sent."
  type        = number
  default     = 105

  validation {
    condition     = var.connection_warning_minutes > 0 && var.connection_warning_minutes <= 120
    error_message = "connection_warning_minutes must be in (0, 120]: API Gateway closes connections after 2 hours."
  }
}

variable "connection_max_duration_minutes" {
  description = "CONNECTION_MAX_DURATION_MINUTES: connection age at which the server closes it."
  type        = number
  default     = 120

  validation {
    condition     = var.connection_max_duration_minutes > 0 && var.connection_max_duration_minutes <= 120
    error_message = "connection_max_duration_minutes must be in (0, 120]: API Gateway closes connections after 2 hours anyway."
  }
}

variable "heartbeat_interval_seconds" {
  description = "HEARTBEAT_INTERVAL_SECONDS: advertised heartbeat period."
  type        = number
  default     = 30

  validation {
    condition     = var.heartbeat_interval_seconds > 0 && var.heartbeat_interval_seconds < 600
    error_message = "heartbeat_interval_seconds must be in (0, 600): API Gateway drops connections idle for 10 minutes."
  }
}

variable "heartbeat_timeout_seconds" {
  description = "HEARTBEAT_TIMEOUT_SECONDS: silence after which a connection is closed."
  type        = number
  default     = 90

  validation {
    condition     = var.heartbeat_timeout_seconds > 0
    error_message = "heartbeat_timeout_seconds must be positive."
  }
}

variable "speaker_reconnect_grace_seconds" {
  description = "SPEAKER_RECONNECT_GRACE_SECONDS: how long a session survives its speaker's lost connection."
  type        = number
  default     = 0

  validation {
    condition     = var.speaker_reconnect_grace_seconds >= 0
    error_message = "speaker_reconnect_grace_seconds must not be negative."
  }
}

variable "supported_languages" {
  description = "SUPPORTED_LANGUAGES: ISO 639-1 codes listeners may ask for. Empty: the app's built-in list."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for code in var.supported_languages : can(regex("^[a-z]{2}$", code))])
    error_message = "supported_languages must be two-letter lowercase ISO 639-1 codes."
  }
}

variable "create_user_pool" {
  description = "Create a Cognito user pool and app client for speakers (modules/auth) when token_issuer is empty, and wire them into TOKEN_ISSUER, TOKEN_AUDIENCE and JWKS_URL."
  type        = bool
  default     = true
}

variable "token_issuer" {
  description = "TOKEN_ISSUER of an existing user pool: expected iss of speaker tokens, https://cognito-idp.<region>.amazonaws.com/<user pool id>. Empty: the pool create_user_pool makes (or, without one, no speaker can connect; refused for prod)."
  type        = string
  default     = ""

  validation {
    condition     = var.token_issuer == "" || can(regex("^https://[^\\s/]+(/[^\\s]*)?[^/\\s]$", var.token_issuer))
    error_message = "token_issuer must be empty or an https:// URL without a trailing slash."
  }
}

variable "token_audience" {
  description = "TOKEN_AUDIENCE with token_issuer: the existing pool's app client id (aud of ID tokens, client_id of access tokens). Required with token_issuer."
  type        = string
  default     = ""
}

variable "token_use" {
  description = "TOKEN_USE: which Cognito token speakers present, id or access."
  type        = string
  default     = "id"

  validation {
    condition     = contains(["id", "access"], var.token_use)
    error_message = "token_use must be id or access."
  }
}

variable "jwks_url" {
  description = "JWKS_URL: where signing keys are fetched. Empty: <token_issuer>/.well-known/jwks.json. Must be https outside an emulator."
  type        = string
  default     = ""

  validation {
    condition     = var.jwks_url == "" || can(regex("^https?://", var.jwks_url))
    error_message = "jwks_url must be empty or an http(s) URL."
  }
}

variable "jwks_refetch_cooldown_seconds" {
  description = "JWKS_REFETCH_COOLDOWN_SECONDS: minimum time between JWKS refetches caused by unknown kids."
  type        = number
  default     = 300

  validation {
    condition     = var.jwks_refetch_cooldown_seconds >= 30
    error_message = "jwks_refetch_cooldown_seconds must be at least 30 (chalicelib/config.py): each forged kid may cost one JWKS fetch per period."
  }
}

variable "management_api_url" {
  description = "MANAGEMENT_API_URL: base URL of the @connections API. null: this stack's https://<api id>.execute-api.<region>.amazonaws.com/<stage>."
  type        = string
  default     = null

  validation {
    condition     = var.management_api_url == null || can(regex("^https?://", coalesce(var.management_api_url, "-")))
    error_message = "management_api_url must be null or an http(s) URL."
  }
}

variable "welcome_delivery_timeout_seconds" {
  description = "WELCOME_DELIVERY_TIMEOUT_SECONDS: how long deliver_welcome retries while the connection is still in $connect."
  type        = number
  default     = 5

  validation {
    condition     = var.welcome_delivery_timeout_seconds > 0
    error_message = "welcome_delivery_timeout_seconds must be positive."
  }
}

variable "sweep_shards" {
  description = "SWEEP_SHARDS: partitions of the sweep index; one sweep_shard invocation per shard each minute. Raise it, never lower it (sessions keep their shard)."
  type        = number
  default     = 16

  validation {
    condition     = var.sweep_shards >= 1 && var.sweep_shards <= 1000 && floor(var.sweep_shards) == var.sweep_shards
    error_message = "sweep_shards must be an integer from 1 to 1000."
  }
}

variable "sweep_concurrency" {
  description = "SWEEP_CONCURRENCY: sessions one sweep_shard invocation checks at once."
  type        = number
  default     = 16

  validation {
    condition     = var.sweep_concurrency >= 1 && floor(var.sweep_concurrency) == var.sweep_concurrency
    error_message = "sweep_concurrency must be a positive integer."
  }
}

variable "publish_concurrency" {
  description = "PUBLISH_CONCURRENCY: parallel @connections posts during fan-out."
  type        = number
  default     = 16

  validation {
    condition     = var.publish_concurrency >= 1 && floor(var.publish_concurrency) == var.publish_concurrency
    error_message = "publish_concurrency must be a positive integer."
  }
}

variable "rate_limit_connects_per_minute" {
  description = "RATE_LIMIT_CONNECTS_PER_MINUTE: connects per source IP per minute (0 turns the limit off). Generous: a congregation may share one NAT address."
  type        = number
  default     = 1000

  validation {
    condition     = var.rate_limit_connects_per_minute >= 0 && floor(var.rate_limit_connects_per_minute) == var.rate_limit_connects_per_minute
    error_message = "rate_limit_connects_per_minute must be a non-negative integer."
  }
}

variable "rate_limit_sessions_per_hour" {
  description = "RATE_LIMIT_SESSIONS_PER_HOUR: sessions one speaker may create per hour (0 turns the limit off)."
  type        = number
  default     = 20

  validation {
    condition     = var.rate_limit_sessions_per_hour >= 0 && floor(var.rate_limit_sessions_per_hour) == var.rate_limit_sessions_per_hour
    error_message = "rate_limit_sessions_per_hour must be a non-negative integer."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR (chalicelib/config.py)."
  }
}
