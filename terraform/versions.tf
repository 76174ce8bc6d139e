terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The lowest release with everything these modules use:
      # - aws_lambda_function runtime "python3.13" (our default): 5.75.1 refuses
      #   it at plan time (hashicorp/terraform-provider-aws#40107); 5.76.0
      #   (2024-11-14), the release after AWS launched the runtime, accepts it;
      # - aws_cloudwatch_event_rule.state: 5.27.0 (#34510).
      # Everything else (event invoke configs, Cognito, API Gateway v2,
      # DynamoDB deletion protection) is older. Tested with 5.100.0.
      version = ">= 5.76.0, < 6.0"
    }
  }
}
