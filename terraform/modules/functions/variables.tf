variable "name_prefix" {
  description = "Prefix of every name; functions are deployed as <name_prefix>-<chalice name> (e.g. broadcast-dev-deliver_welcome)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 1 to 40 characters of a-z, A-Z, 0-9 and '-'."
  }
}

variable "functions" {
  description = "The \"functions\" map of build/<stage>/manifest.json (tools/package.py): Chalice function name to handler, runtime and settings."
  type = map(object({
    handler              = string
    runtime              = string
    trigger              = string
    memory_size          = optional(number)
    timeout              = optional(number)
    reserved_concurrency = optional(number)
    architectures        = optional(list(string), ["x86_64"])
    environment          = optional(map(string), {})
    schedule             = optional(string)
    websocket_route      = optional(string)
  }))

  validation {
    condition     = length(var.functions) > 0
    error_message = "The manifest lists no function: run tools/package.py."
  }

  validation {
    condition     = alltrue([for fn in values(var.functions) : can(regex("^[A-Za-z_][A-Za-z0-9_.]*\\.[A-Za-z_][A-Za-z0-9_]*$", fn.handler))])
    error_message = "Every handler must look like module.function (e.g. app.on_ws_connect)."
  }

  validation {
    condition     = alltrue([for fn in values(var.functions) : fn.schedule == null || can(regex("^(rate|cron)\\(.+\\)$", fn.schedule))])
    error_message = "A schedule must be a rate(...) or cron(...) expression."
  }
}

variable "package_zip_path" {
  description = "Path of the deployment zip built by tools/package.py (build/<stage>/deployment.zip)."
  type        = string

  validation {
    condition     = endswith(var.package_zip_path, ".zip")
    error_message = "package_zip_path must point at a .zip file."
  }
}

variable "runtime" {
  description = "Lambda runtime of every function; the manifest's functions must have been packaged for it."
  type        = string
  default     = "python3.13"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.12 or python3.13 (Amazon Linux 2023 runtimes)."
  }
}

variable "architecture" {
  description = "Instruction set of every function (x86_64 or arm64); the package must have been built for it."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "asynchronous_invocation" {
  description = "Event invoke config of functions invoked asynchronously, by Chalice name: retries (0-2) and maximum event age (60-21600 s) of Lambda's event queue."
  type = map(object({
    maximum_retry_attempts       = number
    maximum_event_age_in_seconds = number
  }))
  default = {}

  validation {
    condition = alltrue([
      for config in values(var.asynchronous_invocation) :
      config.maximum_retry_attempts >= 0 && config.maximum_retry_attempts <= 2 &&
      config.maximum_event_age_in_seconds >= 60 && config.maximum_event_age_in_seconds <= 21600
    ])
    error_message = "maximum_retry_attempts must be 0 to 2 and maximum_event_age_in_seconds 60 to 21600 (Lambda's limits)."
  }
}

variable "environment" {
  description = "Environment variables given to every function (every function reads the same Config). Overrides the manifest's."
  type        = map(string)
  default     = {}
}

variable "permissions" {
  description = <<-EOT
    What each function may do besides writing its own logs, by Chalice function name. Every function in
    the manifest needs an entry (an empty object grants logs only). dynamodb: actions without the
    "dynamodb:" prefix on table or index ARNs; manage_connections: the @connections verbs (POST, GET,
    DELETE) it may call on connections_api's stage (execute-api:ManageConnections); invoke_functions: Chalice names of functions in this
    module it may invoke; kinesis_put_record_stream_arns: streams it may kinesis:PutRecord to.
  EOT
  type = map(object({
    dynamodb = optional(list(object({
      actions   = list(string)
      resources = list(string)
    })), [])
    manage_connections             = optional(list(string), [])
    invoke_functions               = optional(list(string), [])
    kinesis_put_record_stream_arns = optional(list(string), [])
  }))

  validation {
    condition     = alltrue([for p in values(var.permissions) : alltrue([for verb in p.manage_connections : contains(["POST", "GET", "DELETE"], verb)])])
    error_message = "manage_connections verbs are POST, GET and DELETE."
  }

  validation {
    condition = alltrue(flatten([
      for grant in flatten([for p in values(var.permissions) : p.dynamodb]) : [
        for resource in grant.resources : can(regex("^arn:aws[a-z-]*:dynamodb:[^:*]+:[0-9]+:table/[^*]+$", resource))
      ]
    ]))
    error_message = "DynamoDB grants must name table or index ARNs: no wildcards."
  }

  validation {
    condition = alltrue(flatten([
      for grant in flatten([for p in values(var.permissions) : p.dynamodb]) : [
        for action in grant.actions : can(regex("^[A-Z][A-Za-z]+$", action))
      ]
    ]))
    error_message = "DynamoDB actions are bare API names without prefix or wildcard (GetItem, not dynamodb:* or dynamodb:GetItem)."
  }
}

variable "connections_api" {
  description = "The WebSocket API whose @connections the functions with manage_connections may call: its execution ARN and stage name. null when none does."
  type = object({
    execution_arn = string
    stage_name    = string
  })
  default = null
}

variable "log_retention_days" {
  description = "Retention of each function's log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "log_format" {
  description = "Lambda's log format (logging_config): JSON makes the runtime's own lines (START, REPORT, uncaught errors) JSON objects like the app's; Text keeps them plain."
  type        = string
  default     = "JSON"

  validation {
    condition     = contains(["JSON", "Text"], var.log_format)
    error_message = "log_format must be JSON or Text."
  }
}

variable "application_log_level" {
  description = "Lambda's filter of the function's JSON lines (logging_config.application_log_level): the lowest level kept. Lambda's names: TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.application_log_level)
    error_message = "application_log_level must be one of Lambda's: TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the log groups with. null uses CloudWatch Logs' default encryption."
  type        = string
  default     = null
}

variable "default_memory_size" {
  description = "Memory (MB) of a function whose manifest entry has none."
  type        = number
  default     = 256

  validation {
    condition     = var.default_memory_size >= 128 && var.default_memory_size <= 10240
    error_message = "default_memory_size must be between 128 and 10240 MB."
  }
}

variable "default_timeout" {
  description = "Timeout (seconds) of a function whose manifest entry has none."
  type        = number
  default     = 30

  validation {
    condition     = var.default_timeout >= 1 && var.default_timeout <= 900
    error_message = "default_timeout must be between 1 and 900 seconds."
  }
}

variable "schedules_enabled" {
  description = "Whether the EventBridge rules of scheduled functions (the sweep) are enabled."
  type        = bool
  default     = true
}

variable "role_permissions_boundary_arn" {
  description = "Permissions boundary attached to every function role (required by terraform/deployer-policy.json)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
