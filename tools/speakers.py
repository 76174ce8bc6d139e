#!/usr/bin/env python3
"""Speakers of a deployed stack's Cognito user pool: create one, get its ID token.

    python tools/speakers.py --outputs build/dev/outputs.json create alice@example.com
    python tools/speakers.py --outputs build/dev/outputs.json token alice@example.com

``--outputs`` is the stack's ``terraform output -json`` (``make deploy`` and
``make deploy-local`` write it): the user pool, its app client and the region,
and, for a stack applied to an emulator, the emulator's URL (then test
credentials are used, never a developer's real ones).

``create`` makes a speaker with a permanent password: ``PASSWORD`` from the
environment, else a generated one, printed once. ``token`` signs in with
``USER_PASSWORD_AUTH`` (``PASSWORD``, else asked for on a terminal) and prints the
ID token alone on the last line, like ``make token``. Works the same against AWS
and against moto's Cognito.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import string
import sys
from pathlib import Path
from typing import Optional


class SpeakerError(Exception):
    """Something the user must fix; the message says what."""


def read_outputs(path: Path) -> dict:
    if not path.is_file():
        raise SpeakerError(f"{path} does not exist: deploy the stack first (make deploy, or "
                           f"make deploy-local), which writes it")
    raw = json.loads(path.read_text())
    outputs = {name: value.get("value") if isinstance(value, dict) else value
               for name, value in raw.items()}
    if not outputs.get("user_pool_id") or not outputs.get("user_pool_client_id"):
        raise SpeakerError(
            "this stack has no user pool of its own (token_issuer names an existing pool): "
            "manage speakers in that pool (AWS console, or `aws cognito-idp admin-create-user`)")
    return outputs


def cognito_client(outputs: dict):
    import boto3

    endpoint = outputs.get("emulator_endpoint_url")
    region = outputs.get("aws_region") or "us-east-1"
    if endpoint:
        return boto3.client("cognito-idp", region_name=region, endpoint_url=endpoint,
                            aws_access_key_id="test", aws_secret_access_key="test")
    return boto3.client("cognito-idp", region_name=region)


SYMBOLS = "-_.!%+="


def generate_password(length: int = 20) -> str:
    """Meets the pool's policy: lower, upper, digit and symbol, at least 12 characters."""
    alphabet = string.ascii_letters + string.digits + SYMBOLS
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c.islower() for c in password) and any(c.isupper() for c in password)
                and any(c.isdigit() for c in password) and any(c in SYMBOLS for c in password)):
            return password


def create_speaker(client, outputs: dict, email: str, password: Optional[str]) -> str:
    """Create (or reset) ``email`` with a permanent password; return the password."""
    from botocore.exceptions import ClientError

    pool = outputs["user_pool_id"]
    password = password or generate_password()
    try:
        client.admin_create_user(
            UserPoolId=pool, Username=email, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": email},
                            {"Name": "email_verified", "Value": "true"}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "UsernameExistsException":
            raise SpeakerError(f"cannot create {email}: {exc.response['Error']['Message']}") from None
    try:
        client.admin_set_user_password(UserPoolId=pool, Username=email, Password=password,
                                       Permanent=True)
    except ClientError as exc:
        raise SpeakerError(f"cannot set the password of {email}: "
                           f"{exc.response['Error']['Message']}") from None
    return password


def speaker_token(client, outputs: dict, email: str, password: str) -> str:
    from botocore.exceptions import ClientError

    try:
        result = client.initiate_auth(
            ClientId=outputs["user_pool_client_id"], AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password})
    except ClientError as exc:
        raise SpeakerError(f"sign-in of {email} failed: {exc.response['Error']['Message']}") from None
    if "AuthenticationResult" not in result:
        raise SpeakerError(f"sign-in of {email} needs {result.get('ChallengeName')}: "
                           f"reset the speaker with `make speaker-user EMAIL={email}`")
    return result["AuthenticationResult"]["IdToken"]


def _password_for_token(email: str) -> str:
    password = os.environ.get("PASSWORD")
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass(f"password of {email}: ")
    raise SpeakerError("set PASSWORD (the speaker's password) or run on a terminal to be asked")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, required=True,
                        help="the stack's `terraform output -json` file")
    parser.add_argument("command", choices=["create", "token"])
    parser.add_argument("email")
    args = parser.parse_args(argv)
    if "@" not in args.email:
        print("speakers: EMAIL must be an e-mail address (speakers sign in with it)", file=sys.stderr)
        return 2
    try:
        outputs = read_outputs(args.outputs)
        client = cognito_client(outputs)
        if args.command == "create":
            given = os.environ.get("PASSWORD")
            password = create_speaker(client, outputs, args.email, given)
            print(f"speaker {args.email} is ready in user pool {outputs['user_pool_id']}")
            if not given:
                print(f"password (shown once; give it as PASSWORD= to make speaker-token): {password}")
            return 0
        token = speaker_token(client, outputs, args.email, _password_for_token(args.email))
    except SpeakerError as exc:
        print(f"speakers: {exc}", file=sys.stderr)
        return 1
    print(f"ID token of {args.email} (valid for the pool's ID token lifetime, 60 minutes by default):",
          file=sys.stderr)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
