#!/usr/bin/env python3
"""Publish a message to a session's listeners through the ``publish`` function.

    python tools/publish.py SESSION_ID es "Bienaventurados los mansos"
    python tools/publish.py SESSION_ID --all "to every listener"

By default the function is invoked through the local stack's Lambda Invoke API
(``--endpoint``, default http://127.0.0.1:8000, with test credentials), exactly as
another service would invoke it in AWS. ``--endpoint aws`` uses your AWS
configuration instead; name the deployed function with ``--function``
(``broadcast-dev-publish``). Prints the function's result; exits 1 when the
function reports an error (``SESSION_NOT_FOUND``...), 2 on bad arguments.
See docs/protocol.md, "The publish function".
"""
from __future__ import annotations

import argparse
import json
import sys


def event(session_id: str, language, text: str, type_: str) -> dict:
    body = {"sessionId": session_id, "type": type_, "data": {"text": text}}
    if language:
        body["targetLanguage"] = language
    return body


def invoke(payload: dict, *, endpoint: str, function: str, region: str) -> dict:
    import boto3
    from botocore.config import Config

    if endpoint == "aws":
        client = boto3.client("lambda", region_name=region)
    else:
        # Never send real credentials to a local endpoint.
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                        region_name=region)
        client = session.client("lambda", endpoint_url=endpoint,
                                config=Config(retries={"max_attempts": 1}, read_timeout=60))
    response = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    result = json.loads(response["Payload"].read() or b"null")
    if "FunctionError" in response:
        return {"error": {"code": "FUNCTION_ERROR", "message": json.dumps(result)}}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("session_id")
    parser.add_argument("language", nargs="?", help="target language (ISO 639-1); omit with --all")
    parser.add_argument("text")
    parser.add_argument("--all", action="store_true", help="every listener, whatever their language")
    parser.add_argument("--type", default="translation", help="message type (default translation)")
    parser.add_argument("--function", default="publish", help="function name (default publish)")
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000",
                        help="Lambda endpoint, or 'aws' for your AWS configuration")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    if bool(args.language) == args.all:
        parser.error("give a language, or --all for every listener")
    try:
        result = invoke(event(args.session_id, args.language, args.text, args.type),
                        endpoint=args.endpoint, function=args.function, region=args.region)
    except Exception as exc:  # botocore's errors: no endpoint, unknown function...
        print(f"publish: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 1 if isinstance(result, dict) and "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
