################################################################################
# Audio stream (optional, issue 6): AUDIO_SINK=kinesis
################################################################################

locals {
  audio_sink        = var.audio_stream_enabled ? "kinesis" : var.audio_sink
  audio_stream_name = var.audio_stream_enabled ? "${local.name_prefix}-audio" : ""
}

resource "aws_kinesis_stream" "audio" {
  count = var.audio_stream_enabled ? 1 : 0

  name             = local.audio_stream_name
  retention_period = var.audio_stream_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = "alias/aws/kinesis"

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }

  tags = local.tags
}
