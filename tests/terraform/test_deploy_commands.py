"""`make deploy`'s preflight and `make deploy-local`'s driver, as a user meets them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from local_stack.moto_server import MotoServer
from tests.terraform.tfsupport import ROOT
from tools import preflight

# Variables a nested make or the test run would leak into the commands.
_LEAKS = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
          "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
          "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
          "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


def user_environment(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _LEAKS}
    # No credentials anywhere: no files, no instance metadata.
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", **extra)
    return env


def fake_terraform(tmp_path):
    """A `terraform` that records its arguments instead of running."""
    calls = tmp_path / "terraform-calls"
    script = tmp_path / "terraform"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, calls


class TestDeployWithoutCredentials:
    def test_stops_before_packaging_or_terraform(self, tmp_path):
        """`make deploy` without credentials exits with a message pointing at
        terraform/README.md; nothing is packaged and terraform never runs."""
        if not (ROOT / ".venv" / "bin" / "python").exists():
            pytest.skip("needs the project's .venv (make venv)")
        script, calls = fake_terraform(tmp_path)
        stage = "preflightci"
        result = subprocess.run(
            ["make", "--no-print-directory", "deploy", f"STAGE={stage}", f"TERRAFORM={script}"],
            cwd=ROOT, env=user_environment(), capture_output=True, text=True, timeout=120)
        assert result.returncode != 0
        assert "no AWS credentials found" in result.stderr
        assert "terraform/README.md" in result.stderr
        assert not (ROOT / "build" / stage).exists(), "packaging ran"
        assert not calls.exists(), "terraform ran"


class TestPreflightChecks:
    def test_a_region_without_logging_role_stops_with_both_fixes(self):
        """No cloudwatchRoleArn and a stack that does not manage it: stop, naming both ways out."""
        session = _StubSession({"apiKeyVersion": "4"})
        with pytest.raises(preflight.PreflightError) as info:
            preflight.check_logging_role(session, "eu-west-1", "dev", managed=False)
        message = str(info.value)
        assert "manage_api_gateway_account = true" in message and "update-account" in message
        assert "terraform/environments/dev.tfvars" in message

    def test_a_logging_role_set_or_managed_passes(self):
        """A role in the account settings, or a stack that sets it, is enough."""
        session = _StubSession({"cloudwatchRoleArn": "arn:aws:iam::123456789012:role/apigw-logs"})
        assert "role/apigw-logs" in preflight.check_logging_role(session, "us-east-1", "dev", managed=False)
        assert "manage_api_gateway_account" in preflight.check_logging_role(None, "us-east-1", "dev", managed=True)

    def test_the_stage_tfvars_decide_whether_the_stack_manages_the_role(self, tmp_path):
        """manage_api_gateway_account is read from the stage's tfvars, then TF_VAR_."""
        tfvars = tmp_path / "dev.tfvars"
        tfvars.write_text("log_level = \"INFO\"\n# manage_api_gateway_account = true\n")
        assert not preflight.stack_manages_logging_role([tfvars], environ={})
        assert preflight.stack_manages_logging_role([tfvars], environ={"TF_VAR_manage_api_gateway_account": "true"})
        tfvars.write_text("manage_api_gateway_account = true\n")
        assert preflight.stack_manages_logging_role([tfvars], environ={})


class _StubSession:
    """Just enough of a botocore session: an apigateway client with a canned GetAccount."""

    def __init__(self, account):
        self.account = account

    def create_client(self, service, region_name=None):
        from botocore.session import Session
        from botocore.stub import Stubber

        client = Session().create_client(service, region_name=region_name,
                                         aws_access_key_id="x", aws_secret_access_key="x")
        stubber = Stubber(client)
        stubber.add_response("get_account", self.account)
        stubber.activate()
        return client


class TestDeployLocalDriver:
    def test_quiet_progress_full_log_outputs_and_no_deprecated_flags(self, tmp_path):
        """deploy-local prints one line per step and a summary, keeps terraform's
        output in the log, writes outputs.json, and never passes -state."""
        state = {"resources": [{"mode": "managed", "instances": [{}, {}]}, {"mode": "data", "instances": [{}]}]}
        outputs = {name: {"value": value} for name, value in {
            "api_id": "abc123", "function_names": {"authorizer": "broadcast-dev-authorizer"},
            "lambda_runtime": "python3.13 (x86_64)", "table_names": {"sessions": "broadcast-dev-Sessions"},
            "jwks_url": "http://127.0.0.1:1/pool/.well-known/jwks.json",
            "websocket_url": "wss://abc123.execute-api.us-east-1.amazonaws.com/dev", "api_stage_name": "dev",
        }.items()}
        calls = tmp_path / "calls"
        script = tmp_path / "terraform"
        script.write_text(
            "#!/bin/sh\n"
            f"echo \"$@\" >> {calls}\n"
            "case \"$1\" in\n"
            "  init) echo 'lots of init output';;\n"
            f"  apply) echo 'lots of apply output'; echo '{json.dumps(state)}' > terraform.tfstate;;\n"
            f"  output) echo '{json.dumps(outputs)}';;\n"
            "esac\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        manifest = tmp_path / "manifest.json"
        manifest.write_text("{}")
        with MotoServer(0) as moto:  # an emulator already running at AWS_ENDPOINT_URL
            endpoint = moto.url
            result = subprocess.run(
                [sys.executable, str(ROOT / "tools" / "deploy_local.py"), "--manifest", str(manifest),
                 "--work-dir", str(tmp_path / "work"), "--terraform", str(script)],
                env={**user_environment(), "AWS_ENDPOINT_URL": endpoint},
                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == f"[2/4] emulator: AWS_ENDPOINT_URL={endpoint}"
        assert lines[1].startswith("[3/4] terraform init")
        assert lines[2].startswith("[4/4] terraform apply: 2 resources")
        assert "lots of" not in result.stdout and len(lines) <= 10
        assert "make run-deployed" in result.stdout
        assert "lots of apply output" in (tmp_path / "work" / "deploy.log").read_text()
        assert json.loads((tmp_path / "work" / "outputs.json").read_text())["api_id"]["value"] == "abc123"
        recorded = calls.read_text()
        assert "-state" not in recorded
        assert f"-var=emulator_endpoint_url={endpoint}" in recorded


class TestRunDeployedWithoutEmulator:
    def test_says_how_to_keep_the_emulator(self, tmp_path):
        """run-deployed against an emulator that is gone exits 2 and says to use HOLD=1."""
        from tests.terraform.tfsupport import free_port

        outputs = tmp_path / "outputs.json"
        endpoint = f"http://127.0.0.1:{free_port()}"
        outputs.write_text(json.dumps({"emulator_endpoint_url": {"value": endpoint},
                                       "aws_region": {"value": "us-east-1"},
                                       "api_stage_name": {"value": "dev"}}))
        package = tmp_path / "deployment.zip"
        package.write_bytes(b"")
        result = subprocess.run(
            [sys.executable, "-m", "local_stack", "run-deployed", "--outputs", str(outputs),
             "--package", str(package), "--cache-dir", str(tmp_path / "cache")],
            cwd=ROOT, env={**user_environment(), "PORT": "0"}, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert f"nothing answers at {endpoint}" in result.stderr and "HOLD=1" in result.stderr
