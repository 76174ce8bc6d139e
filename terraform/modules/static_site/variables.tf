variable "name" {
  description = "Prefix of the bucket name (S3 adds a unique suffix) and of the CloudFront names, e.g. broadcast-dev-site."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,35}$", var.name))
    error_message = "name must be 2 to 36 characters of a-z, 0-9 and '-' (an S3 bucket prefix leaves room for S3's suffix)."
  }
}

variable "websocket_url" {
  description = "The deployed WebSocket URL the pages connect to (the root module's websocket_url output). Written to config.js."
  type        = string

  validation {
    condition     = can(regex("^wss://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9_.-]*)*$", var.websocket_url))
    error_message = "websocket_url must be a wss:// URL (pages served over https may only open secure WebSockets)."
  }
}

variable "heartbeat_interval_seconds" {
  description = "The functions' HEARTBEAT_INTERVAL_SECONDS, so the pages heartbeat at the server's interval."
  type        = number
  default     = 30

  validation {
    condition     = var.heartbeat_interval_seconds > 0 && var.heartbeat_interval_seconds < 600
    error_message = "heartbeat_interval_seconds must be in (0, 600): API Gateway drops connections idle for 10 minutes."
  }
}

variable "languages" {
  description = "The functions' SUPPORTED_LANGUAGES: the pages' language pickers and their checks before connecting. null: the app's built-in list (chalicelib/languages.py)."
  type        = list(string)
  nullable    = false
  default     = ["ar", "ca", "da", "de", "en", "es", "fi", "fr", "hi", "it", "ja", "ko", "nl", "no", "pl", "pt", "sv", "tr", "zh"]

  validation {
    condition     = length(var.languages) > 0 && alltrue([for code in var.languages : can(regex("^[a-z]{2}$", code))])
    error_message = "languages must be a non-empty list of two-letter lowercase ISO 639-1 codes."
  }
}

variable "source_language" {
  description = "The speaker page's default spoken language."
  type        = string
  default     = "en"

  validation {
    condition     = can(regex("^[a-z]{2}$", var.source_language))
    error_message = "source_language must be a two-letter lowercase ISO 639-1 code."
  }
}

variable "cognito" {
  description = "Optional Hosted UI sign-in for the speaker page: the user pool's Hosted UI domain (auth.example.org or <prefix>.auth.<region>.amazoncognito.com) and the public app client id (no secret; authorization code grant, callback URL <site>/speak). null: speakers paste a token."
  type = object({
    domain       = string
    client_id    = string
    redirect_uri = optional(string)
  })
  default = null

  validation {
    condition     = var.cognito == null || (can(regex("^[a-z0-9.-]+$", try(var.cognito.domain, ""))) && length(try(var.cognito.client_id, "")) > 0)
    error_message = "cognito.domain must be a host name (no scheme) and cognito.client_id must be set."
  }
}

variable "site_dir" {
  description = "Directory of the pages (the repository's web/). null: web/ next to terraform/."
  type        = string
  default     = null
}

variable "aliases" {
  description = "Custom domain names for the site (CNAMEs). Needs acm_certificate_arn. Empty: the cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate in us-east-1 covering aliases (CloudFront only uses us-east-1 certificates)."
  type        = string
  default     = null

  validation {
    condition     = var.acm_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate ARN in us-east-1."
  }
}

variable "price_class" {
  description = "CloudFront price class: PriceClass_100 (North America, Europe), PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy the bucket with its objects (the pages are reproducible; safe for dev stages)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the bucket and the distribution."
  type        = map(string)
  default     = {}
}
