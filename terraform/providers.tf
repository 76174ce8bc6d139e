provider "aws" {
  region = var.aws_region

  # Against an emulator (make deploy-local) set this to 1: moto answers some
  # calls it does not implement with errors the SDK would otherwise retry for
  # about ten minutes. AWS_ENDPOINT_URL in the environment selects the endpoint.
  max_retries = var.aws_max_retries
}
