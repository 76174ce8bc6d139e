# Plan-level checks of modules/static_site (mocked provider), and of its wiring
# into the root module (terraform/static_site.tf). Run from this module's
# directory (`terraform test` there; tests/terraform/test_static_site.py does),
# with web/ next to terraform/ as in the repository.

mock_provider "aws" {
  override_during = plan
  source          = "../../tests"

  mock_resource "aws_s3_bucket" {
    defaults = {
      id                          = "broadcast-dev-site-20261202000000000000000001"
      arn                         = "arn:aws:s3:::broadcast-dev-site-20261202000000000000000001"
      bucket_regional_domain_name = "broadcast-dev-site-20261202000000000000000001.s3.us-east-1.amazonaws.com"
    }
  }

  mock_resource "aws_cloudfront_distribution" {
    defaults = {
      id          = "E2QWRUHAPOMQZL"
      arn         = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL"
      domain_name = "d111111abcdef8.cloudfront.net"
    }
  }

  mock_resource "aws_cloudfront_origin_access_control" {
    defaults = {
      id = "E1OACEXAMPLE01"
    }
  }

  mock_resource "aws_cloudfront_response_headers_policy" {
    defaults = {
      id = "5f7f5d2e-0000-4000-8000-000000000001"
    }
  }
}

variables {
  name          = "broadcast-dev-site"
  websocket_url = "wss://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev"
  languages     = ["de", "es"]
  site_dir      = "../../../web"
}

run "private_bucket_read_by_cloudfront_only" {
  command = plan

  module {
    source = "./"
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this.block_public_acls,
      aws_s3_bucket_public_access_block.this.block_public_policy,
      aws_s3_bucket_public_access_block.this.ignore_public_acls,
      aws_s3_bucket_public_access_block.this.restrict_public_buckets,
    ])
    error_message = "The bucket must block every kind of public access."
  }

  assert {
    condition     = aws_cloudfront_origin_access_control.this.origin_access_control_origin_type == "s3" && aws_cloudfront_origin_access_control.this.signing_behavior == "always" && aws_cloudfront_origin_access_control.this.signing_protocol == "sigv4"
    error_message = "CloudFront must sign every request to the bucket (origin access control, SigV4)."
  }

  assert {
    condition     = one(aws_cloudfront_distribution.this.origin).origin_access_control_id == aws_cloudfront_origin_access_control.this.id
    error_message = "The distribution's origin must use the origin access control."
  }

  assert {
    condition = jsondecode(aws_s3_bucket_policy.this.policy).Statement == [{
      Sid       = "CloudFrontReadsThroughOriginAccessControl"
      Effect    = "Allow"
      Principal = { Service = "cloudfront.amazonaws.com" }
      Action    = "s3:GetObject"
      Resource  = "arn:aws:s3:::broadcast-dev-site-20261202000000000000000001/*"
      Condition = { StringEquals = { "AWS:SourceArn" = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL" } }
    }]
    error_message = "Only this distribution may read objects, and only read them."
  }

  assert {
    condition = alltrue(concat(
      [one(aws_cloudfront_distribution.this.default_cache_behavior).viewer_protocol_policy == "redirect-to-https"],
      [for b in aws_cloudfront_distribution.this.ordered_cache_behavior : b.viewer_protocol_policy == "redirect-to-https"],
    ))
    error_message = "Every path must redirect to https (getUserMedia needs a secure context)."
  }
}

run "pages_assets_and_a_generated_config" {
  command = plan

  module {
    source = "./"
  }

  assert {
    condition     = toset(keys(aws_s3_object.page)) == toset(["listen", "speak"]) && alltrue([for o in aws_s3_object.page : startswith(o.content_type, "text/html")])
    error_message = "The pages are served as /listen and /speak, as HTML."
  }

  assert {
    condition = alltrue([
      contains(keys(aws_s3_object.asset), "assets/js/lib/client.js"),
      contains(keys(aws_s3_object.asset), "assets/vendor/qrcode-generator/qrcode.mjs"),
      aws_s3_object.asset["assets/js/lib/client.js"].content_type == "text/javascript",
      aws_s3_object.asset["assets/css/site.css"].content_type == "text/css",
      alltrue([for key in keys(aws_s3_object.asset) : startswith(key, "assets/")]),
    ])
    error_message = "Every asset under assets/, nothing else (no README), with its content type."
  }

  assert {
    condition     = strcontains(aws_s3_object.config.content, "\"websocketUrl\":\"wss://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev\"") && strcontains(aws_s3_object.config.content, "\"languages\":[\"de\",\"es\"]") && strcontains(aws_s3_object.config.content, "window.BROADCAST_CONFIG = Object.freeze(")
    error_message = "config.js names the deployed WebSocket URL and the languages."
  }

  assert {
    condition     = length(output.config.auth) == 0 && output.listen_url == "https://d111111abcdef8.cloudfront.net/listen"
    error_message = "Without Cognito the speaker pastes a token; the pages are on the cloudfront.net name."
  }

  assert {
    condition     = strcontains(one(one(aws_cloudfront_response_headers_policy.this.security_headers_config).content_security_policy).content_security_policy, "connect-src 'self' wss://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com;")
    error_message = "The pages may connect to the WebSocket API's origin and nothing else."
  }

  assert {
    condition     = toset([for b in aws_cloudfront_distribution.this.ordered_cache_behavior : b.path_pattern if b.cache_policy_id == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"]) == toset(["/config.js", "/listen", "/speak"])
    error_message = "config.js and the pages are never cached (CachingDisabled)."
  }
}

run "hosted_ui_sign_in" {
  command = plan

  module {
    source = "./"
  }

  variables {
    cognito = { domain = "auth.example.org", client_id = "4abcdefghijklmnopqrstuvw" }
  }

  assert {
    condition     = output.config.auth.cognito == { domain = "auth.example.org", clientId = "4abcdefghijklmnopqrstuvw", redirectUri = "https://d111111abcdef8.cloudfront.net/speak" }
    error_message = "The Hosted UI's domain and client id reach config.js, with /speak as the callback."
  }

  assert {
    condition     = strcontains(one(one(aws_cloudfront_response_headers_policy.this.security_headers_config).content_security_policy).content_security_policy, "https://auth.example.org")
    error_message = "The speaker page may reach the Hosted UI's token endpoint."
  }
}

run "refuses_an_insecure_websocket_url" {
  command = plan

  module {
    source = "./"
  }

  variables {
    websocket_url = "ws://127.0.0.1:8000/dev"
  }

  expect_failures = [var.websocket_url]
}

run "aliases_need_a_certificate" {
  command = plan

  module {
    source = "./"
  }

  variables {
    aliases = ["listen.example.org"]
  }

  expect_failures = [aws_cloudfront_distribution.this]
}

run "root_wires_the_site_to_the_stage" {
  command = plan

  module {
    source = "../.."
  }

  variables {
    stage               = "dev"
    manifest_path       = "../../tests/fixtures/manifest.json"
    static_site_enabled = true
  }

  assert {
    condition     = output.static_site_listen_url == "https://d111111abcdef8.cloudfront.net/listen"
    error_message = "The root outputs the site's listener page."
  }

  assert {
    condition     = module.static_site[0].config.websocketUrl == module.websocket_api.stage_invoke_url && module.static_site[0].config.heartbeatIntervalSeconds == var.heartbeat_interval_seconds
    error_message = "config.js names this stage's WebSocket URL and heartbeat interval."
  }

  assert {
    condition     = length(module.static_site[0].config.languages) == 19
    error_message = "With supported_languages empty (the app's built-in list), the pages offer the same 19 languages."
  }
}

run "root_without_the_site" {
  command = plan

  module {
    source = "../.."
  }

  variables {
    stage         = "dev"
    manifest_path = "../../tests/fixtures/manifest.json"
  }

  assert {
    condition     = length(module.static_site) == 0 && output.static_site_listen_url == null
    error_message = "The static site is optional and off by default."
  }
}
