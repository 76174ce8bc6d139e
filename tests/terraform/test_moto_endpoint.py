"""tools/moto_endpoint.py, which `make deploy-local` runs terraform through."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.terraform.tfsupport import ROOT, free_port

SCRIPT = ROOT / "tools" / "moto_endpoint.py"
PROBE = (
    "import boto3, json, os; "
    "boto3.client('dynamodb').create_table(TableName='probe', BillingMode='PAY_PER_REQUEST', "
    "KeySchema=[{'AttributeName': 'k', 'KeyType': 'HASH'}], "
    "AttributeDefinitions=[{'AttributeName': 'k', 'AttributeType': 'S'}]); "
    "print(json.dumps({k: os.environ.get(k) for k in ('AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', "
    "'AWS_PROFILE', 'MOTO_ENDPOINT_EMBEDDED')}))"
)


def run(args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=60, env={**base, **env})


class TestMotoEndpoint:
    def test_starts_an_embedded_moto_when_nothing_listens(self):
        """With no endpoint, the command runs against a fresh moto with test credentials."""
        port = free_port()
        result = run(["--port", str(port), "--", sys.executable, "-c", PROBE], AWS_PROFILE="someone")
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen == {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_PROFILE": None,
            "MOTO_ENDPOINT_EMBEDDED": "1",
        }

    def test_refuses_an_endpoint_that_does_not_answer(self):
        """An AWS_ENDPOINT_URL where nothing listens is an error, not a silent fallback."""
        result = run(["--", sys.executable, "-c", "print('ran')"],
                     AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
        assert result.returncode == 2
        assert "nothing answers" in result.stderr
        assert "ran" not in result.stdout
