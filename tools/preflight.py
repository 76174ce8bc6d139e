#!/usr/bin/env python3
"""Checks before `make plan`/`make deploy` touch anything: stop early, say how to fix.

1. AWS credentials can be found (botocore's own resolution: environment,
   profile, SSO, container or instance role) and are accepted
   (``sts:GetCallerIdentity``). Terraform would only say "No valid credential
   sources found" after the package was built and the providers installed.
2. The stage's API Gateway access logs can be written: WebSocket stages refuse
   access logging ("CloudWatch Logs role ARN must be set in account settings to
   enable logging") until the region's API Gateway account names a CloudWatch
   role (``apigateway:GetAccount``). Either that role is set, or this stack
   manages it (``manage_api_gateway_account = true``).

Exit status 0 when everything is in place, 2 with a message otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import List, Optional

README = "terraform/README.md"


class PreflightError(Exception):
    pass


def find_credentials(session):
    """botocore's credentials, or None. Resolution reads the environment and
    files first; only container/instance roles need the network."""
    try:
        return session.get_credentials()
    except Exception as exc:  # a broken profile, an expired SSO cache...
        raise PreflightError(f"AWS credentials could not be loaded: {exc}. See {README}, "
                             f"\"Credentials\".") from None


def check_credentials(session, region: str) -> str:
    if find_credentials(session) is None:
        raise PreflightError(
            "no AWS credentials found: nothing was packaged or deployed. Configure credentials "
            "for a principal with terraform/deployer-policy.json (for example `aws configure "
            "sso` then AWS_PROFILE=<profile>, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), "
            f"and AWS_DEFAULT_REGION. Step by step: {README}, \"Deploying to AWS\".")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        identity = session.create_client("sts", region_name=region).get_caller_identity()
    except ClientError as exc:
        raise PreflightError(
            f"AWS refused the credentials ({exc.response['Error']['Code']}: "
            f"{exc.response['Error']['Message']}): renew them (`aws sso login`, new keys). "
            f"See {README}.") from None
    except BotoCoreError as exc:
        raise PreflightError(f"cannot reach AWS to check the credentials: {exc}") from None
    return identity["Arn"]


def stack_manages_logging_role(var_files: List[Path], environ=os.environ) -> bool:
    """Whether this stack sets the API Gateway account's role
    (``manage_api_gateway_account = true`` in a tfvars file or TF_VAR_)."""
    value = environ.get("TF_VAR_manage_api_gateway_account")
    for path in var_files:
        if path.is_file():
            match = re.search(r"^\s*manage_api_gateway_account\s*=\s*(true|false)\b",
                              path.read_text(), re.MULTILINE)
            if match:
                value = match.group(1)
    return (value or "").strip().lower() == "true"


def check_logging_role(session, region: str, stage: str, managed: bool) -> Optional[str]:
    if managed:
        return "this stack sets the API Gateway CloudWatch role (manage_api_gateway_account)"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        account = session.create_client("apigateway", region_name=region).get_account()
    except (ClientError, BotoCoreError) as exc:
        raise PreflightError(
            f"cannot read API Gateway's account settings in {region} ({exc}): the deployer "
            f"needs apigateway:GET on arn:aws:apigateway:{region}::/account "
            f"(terraform/deployer-policy.json)") from None
    role = account.get("cloudwatchRoleArn")
    if role:
        return f"API Gateway in {region} writes logs with {role}"
    raise PreflightError(
        f"API Gateway in {region} has no CloudWatch Logs role, so the stage's access logs "
        f"would be refused halfway through the deploy. Once per account and region, either "
        f"let this stack manage it: add `manage_api_gateway_account = true` to "
        f"terraform/environments/{stage}.tfvars (only one stack per region should), or set it "
        f"yourself: `aws apigateway update-account --patch-operations "
        f"op=replace,path=/cloudwatchRoleArn,value=<role ARN>` with a role that trusts "
        f"apigateway.amazonaws.com and has AmazonAPIGatewayPushToCloudWatchLogs. See {README}, step 3.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", default=None)
    parser.add_argument("--var-file", action="append", type=Path, default=[])
    args = parser.parse_args(argv)
    import botocore.session

    session = botocore.session.Session()
    region = args.region or session.get_config_variable("region") or "us-east-1"
    try:
        who = check_credentials(session, region)
        print(f"preflight: deploying {args.stage} to {region} as {who}")
        managed = stack_manages_logging_role(args.var_file)
        print(f"preflight: {check_logging_role(session, region, args.stage, managed)}")
    except PreflightError as exc:
        print(f"preflight: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
