################################################################################
# Manifest (tools/package.py): function name -> handler, runtime, settings
################################################################################

locals {
  manifest         = jsondecode(file(var.manifest_path))
  package_zip_path = coalesce(var.package_zip_path, "${dirname(var.manifest_path)}/${local.manifest.zip}")

  name_prefix    = "${var.app_name}-${var.stage}"
  api_stage_name = coalesce(var.api_stage_name, var.stage)

  tags = merge(var.tags, {
    Application = var.app_name
    Stage       = var.stage
    ManagedBy   = "terraform"
  })

  functions = local.manifest.functions
  websocket_routes = {
    for name, fn in local.functions : fn.websocket_route => name if try(fn.websocket_route, null) != null
  }
}

################################################################################
# Tables
################################################################################

module "tables" {
  source = "./modules/tables"

  table_names = {
    sessions    = coalesce(var.table_names.sessions, "${local.name_prefix}-Sessions")
    connections = coalesce(var.table_names.connections, "${local.name_prefix}-Connections")
    rate_limits = coalesce(var.table_names.rate_limits, "${local.name_prefix}-RateLimits")
  }
  point_in_time_recovery_enabled = var.point_in_time_recovery_enabled
  deletion_protection_enabled    = var.deletion_protection_enabled

  tags = local.tags
}

################################################################################
# Speaker sign-in: a Cognito user pool (modules/auth), unless an existing
# pool's issuer is given
################################################################################

locals {
  create_user_pool = var.create_user_pool && var.token_issuer == ""
}

module "auth" {
  source = "./modules/auth"
  count  = local.create_user_pool ? 1 : 0

  name                = "${local.name_prefix}-speakers"
  region              = var.aws_region
  deletion_protection = var.deletion_protection_enabled
  # moto serves a pool's keys at <endpoint>/<pool id>/.well-known/jwks.json
  # while its tokens name the real Cognito issuer.
  jwks_base_url = var.emulator_endpoint_url

  tags = local.tags
}

locals {
  token_issuer_configured = local.create_user_pool || var.token_issuer != ""

  token_issuer   = local.create_user_pool ? module.auth[0].issuer : var.token_issuer
  token_audience = local.create_user_pool ? module.auth[0].client_id : var.token_audience
  jwks_url       = var.jwks_url != "" ? var.jwks_url : (local.create_user_pool && var.emulator_endpoint_url != null ? module.auth[0].jwks_url : "")
}

################################################################################
# Functions
#
# IAM needs per function are docs/design-contract.md's "IAM needs per function".
################################################################################

locals {
  sessions_arn    = module.tables.table_arns.sessions
  connections_arn = module.tables.table_arns.connections
  rate_limits_arn = module.tables.table_arns.rate_limits

  sessions_sweep_index_arn = module.tables.index_arns.sessions["sweep-index"]
  members_index_arn        = module.tables.index_arns.connections["session-members-index"]

  # Exactly the calls each function's code makes, no more: DynamoDB actions per
  # table or index (a TransactWriteItems needs each item's own action),
  # @connections verbs, functions invoked. tests/terraform/test_iam_follows_code.py
  # records every AWS call each handler makes while the functional scenarios run
  # and fails when this map grants more or less than that.
  permissions = {
    authorizer = {} # verifies tokens with the JWKS over HTTPS: no AWS call
    websocket_connect = {
      dynamodb = [
        # A join reads the session and its address's rate counter in one BatchGetItem.
        { actions = ["BatchGetItem", "GetItem", "PutItem", "UpdateItem"], resources = [local.sessions_arn] },
        { actions = ["GetItem", "PutItem", "UpdateItem", "DeleteItem"], resources = [local.connections_arn] },
        # A speaker back within the reconnect grace tells the listeners.
        { actions = ["Query"], resources = [local.members_index_arn] },
        { actions = ["BatchGetItem", "UpdateItem"], resources = [local.rate_limits_arn] },
      ]
      manage_connections = ["POST"]
      invoke_functions   = [for name in ["deliver_welcome"] : name if contains(keys(local.functions), name)]
    }
    websocket_message = {
      dynamodb = [
        { actions = ["GetItem", "UpdateItem"], resources = [local.sessions_arn] },
        # endSession releases the session's connections 25 to a BatchWriteItem.
        { actions = ["UpdateItem", "DeleteItem", "BatchWriteItem"], resources = [local.connections_arn] },
        { actions = ["Query"], resources = [local.members_index_arn] },
      ]
      manage_connections             = ["POST", "DELETE"]
      kinesis_put_record_stream_arns = aws_kinesis_stream.audio[*].arn
    }
    websocket_disconnect = {
      dynamodb = [
        # GetItem: a leaving listener's speaker was replaced since it joined.
        { actions = ["GetItem", "UpdateItem"], resources = [local.sessions_arn] },
        { actions = ["GetItem", "DeleteItem", "BatchWriteItem"], resources = [local.connections_arn] },
        { actions = ["Query"], resources = [local.members_index_arn] },
      ]
      manage_connections = ["POST", "DELETE"]
    }
    sweep = {
      invoke_functions = [for name in ["sweep_shard"] : name if contains(keys(local.functions), name)]
    }
    sweep_shard = {
      dynamodb = [
        { actions = ["UpdateItem"], resources = [local.sessions_arn] },
        { actions = ["Query"], resources = [local.sessions_sweep_index_arn] },
        { actions = ["GetItem", "UpdateItem", "DeleteItem", "BatchWriteItem"], resources = [local.connections_arn] },
        { actions = ["Query"], resources = [local.members_index_arn] },
      ]
      manage_connections = ["POST", "DELETE"]
    }
    publish = {
      dynamodb = [
        { actions = ["UpdateItem"], resources = [local.sessions_arn] },
        { actions = ["DeleteItem"], resources = [local.connections_arn] },
        { actions = ["Query"], resources = [local.members_index_arn] },
      ]
      manage_connections = ["POST"]
    }
    deliver_welcome = {
      dynamodb = [{ actions = ["GetItem"], resources = [local.connections_arn] }]
      # DELETE: a refusal delivered in band (refusal=message) is followed by the close.
      manage_connections = ["POST", "DELETE"]
    }
    # GET /health reads a missing key of each table.
    api_handler = {
      dynamodb = [{ actions = ["GetItem"], resources = [local.sessions_arn, local.connections_arn, local.rate_limits_arn] }]
    }
  }

  # Every function reads the same Config (chalicelib/config.py). Variables left
  # empty are not set, so the app's own default applies (SUPPORTED_LANGUAGES'
  # built-in list, JWKS_URL derived from TOKEN_ISSUER, ...).
  optional_environment = {
    for key, value in {
      SUPPORTED_LANGUAGES = join(",", var.supported_languages)
      TOKEN_ISSUER        = local.token_issuer
      TOKEN_AUDIENCE      = local.token_audience
      JWKS_URL            = local.jwks_url
    } : key => value if value != ""
  }

  environment = merge(local.optional_environment, {
    SESSIONS_TABLE                   = module.tables.table_names.sessions
    CONNECTIONS_TABLE                = module.tables.table_names.connections
    RATE_LIMITS_TABLE                = module.tables.table_names.rate_limits
    SESSION_MAX_DURATION_HOURS       = tostring(var.session_max_duration_hours)
    MAX_LISTENERS_PER_SESSION        = tostring(var.max_listeners_per_session)
    CONNECTION_REFRESH_MINUTES       = tostring(var.connection_refresh_minutes)
    CONNECTION_WARNING_MINUTES       = tostring(var.connection_warning_minutes)
    CONNECTION_MAX_DURATION_MINUTES  = tostring(var.connection_max_duration_minutes)
    HEARTBEAT_INTERVAL_SECONDS       = tostring(var.heartbeat_interval_seconds)
    HEARTBEAT_TIMEOUT_SECONDS        = tostring(var.heartbeat_timeout_seconds)
    SPEAKER_RECONNECT_GRACE_SECONDS  = tostring(var.speaker_reconnect_grace_seconds)
    TOKEN_USE                        = var.token_use
    JWKS_REFETCH_COOLDOWN_SECONDS    = tostring(var.jwks_refetch_cooldown_seconds)
    MANAGEMENT_API_URL               = local.management_api_url
    WELCOME_FUNCTION_NAME            = "${local.name_prefix}-deliver_welcome"
    SWEEP_FUNCTION_NAME              = "${local.name_prefix}-sweep_shard"
    SWEEP_SHARDS                     = tostring(var.sweep_shards)
    SWEEP_CONCURRENCY                = tostring(var.sweep_concurrency)
    WELCOME_DELIVERY_TIMEOUT_SECONDS = tostring(var.welcome_delivery_timeout_seconds)
    AUDIO_SINK                       = local.audio_sink
    AUDIO_STREAM_NAME                = local.audio_stream_name
    PUBLISH_CONCURRENCY              = tostring(var.publish_concurrency)
    RATE_LIMIT_CONNECTS_PER_MINUTE   = tostring(var.rate_limit_connects_per_minute)
    RATE_LIMIT_SESSIONS_PER_HOUR     = tostring(var.rate_limit_sessions_per_hour)
    PRIVACY_KEY                      = local.privacy_key
    LOG_LEVEL                        = var.log_level
    STAGE                            = var.stage
  })

  # Functions invoked asynchronously (Lambda queues the event): deliver_welcome
  # by $connect, the sweep by EventBridge, sweep_shard by the sweep. A retried
  # first message arrives after the client has moved on, and a delayed sweep
  # overlaps the next one:
  # no retries, and an event older than a minute (the shortest age Lambda
  # accepts) is dropped.
  asynchronous_invocation = {
    for name in ["deliver_welcome", "sweep", "sweep_shard"] : name => {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    } if contains(keys(local.functions), name)
  }

  # Built from the API id (not the stage) so the functions do not depend on the
  # stage, which depends on them through its routes.
  management_api_url = coalesce(
    var.management_api_url,
    "https://${module.websocket_api.api_id}.execute-api.${var.aws_region}.amazonaws.com/${local.api_stage_name}",
  )
}

module "functions" {
  source = "./modules/functions"

  name_prefix             = local.name_prefix
  functions               = local.functions
  package_zip_path        = local.package_zip_path
  runtime                 = var.lambda_runtime
  architecture            = var.lambda_architecture
  environment             = local.environment
  permissions             = local.permissions
  asynchronous_invocation = local.asynchronous_invocation
  log_retention_days      = var.log_retention_days
  # LOG_LEVEL in Lambda's names, so Lambda keeps what the app writes.
  application_log_level         = var.log_level == "WARNING" ? "WARN" : var.log_level
  schedules_enabled             = var.schedules_enabled
  role_permissions_boundary_arn = var.role_permissions_boundary_arn

  connections_api = {
    execution_arn = module.websocket_api.api_execution_arn
    stage_name    = local.api_stage_name
  }

  tags = local.tags
}

################################################################################
# WebSocket API
################################################################################

module "websocket_api" {
  source = "./modules/websocket_api"

  name       = "${local.name_prefix}-websocket-api"
  stage_name = local.api_stage_name

  routes = {
    for route, name in local.websocket_routes : route => {
      function_name = module.functions.function_names[name]
      invoke_arn    = module.functions.function_invoke_arns[name]
    }
  }
  authorizer = {
    function_name = module.functions.function_names["authorizer"]
    invoke_arn    = module.functions.function_invoke_arns["authorizer"]
  }

  throttling_burst_limit   = var.throttling_burst_limit
  throttling_rate_limit    = var.throttling_rate_limit
  detailed_metrics_enabled = var.detailed_metrics_enabled
  log_retention_days       = var.log_retention_days

  tags = local.tags

  # Access logging is refused until the region's API Gateway account has a CloudWatch role.
  depends_on = [aws_api_gateway_account.this]
}

################################################################################
# Health check: GET /health (Chalice's api_handler) behind its own HTTP API
################################################################################

module "health_api" {
  source = "./modules/health_api"
  count  = contains(keys(local.functions), "api_handler") ? 1 : 0

  name = "${local.name_prefix}-health"
  function = {
    name       = module.functions.function_names["api_handler"]
    invoke_arn = module.functions.function_invoke_arns["api_handler"]
  }

  tags = local.tags
}

################################################################################
# Alarms (on real faults only) and the dashboard
################################################################################

module "alarms" {
  source = "./modules/alarms"

  name_prefix    = local.name_prefix
  alarm_email    = var.alarm_email
  period_seconds = var.alarm_period_seconds
  stage          = var.stage

  function_names = module.functions.function_names
  api = {
    id         = module.websocket_api.api_id
    stage_name = module.websocket_api.stage_name
  }
  tables = {
    for role, name in module.tables.table_names : role => {
      name                     = name
      global_secondary_indexes = module.tables.index_names[role]
    }
  }
  api_errors_threshold = var.api_errors_threshold
  sweep_enabled        = var.schedules_enabled && contains(keys(local.functions), "sweep_shard")
  sweep_shards         = var.sweep_shards

  tags = local.tags
}

module "dashboard" {
  source = "./modules/dashboard"

  name           = local.name_prefix
  region         = var.aws_region
  stage          = var.stage
  sweep_shards   = var.sweep_shards
  function_names = module.functions.function_names
  api = {
    id         = module.websocket_api.api_id
    stage_name = module.websocket_api.stage_name
  }
  table_names = module.tables.table_names
}

################################################################################
# Warnings (a check block reports, it does not stop the plan)
################################################################################

check "speakers_can_sign_in" {
  assert {
    condition     = local.token_issuer_configured
    error_message = "No token issuer: every speaker will be refused (listeners can still connect). Set create_user_pool = true, or token_issuer and token_audience."
  }
}
