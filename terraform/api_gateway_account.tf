################################################################################
# API Gateway account settings (optional, once per account and region)
#
# WebSocket stages refuse access logging ("CloudWatch Logs role ARN must be set
# in account settings to enable logging") until the region's API Gateway
# account names a role it can write logs with. That setting is shared by every
# API in the region, so only one stack should manage it.
################################################################################

resource "aws_iam_role" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name                 = "${local.name_prefix}-apigateway-cloudwatch"
  description          = "Lets API Gateway write execution and access logs to CloudWatch Logs."
  permissions_boundary = var.role_permissions_boundary_arn

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "apigateway.amazonaws.com" }
    }]
  })

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  role       = aws_iam_role.api_gateway_cloudwatch[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_cloudwatch]
}
