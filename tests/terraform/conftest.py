"""Fixtures for the Terraform checks.

Everything runs on a copy of terraform/ in a per-session temp dir (provider
installs, lock files and state never land in the repo), with the hashicorp/aws
provider taken from a filesystem mirror (never the network). Where terraform or
the mirror is missing, the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.terraform.tfsupport import (
    REGION, Package, Terraform, copy_terraform_tree, find_terraform, package_command,
    require_wheelhouse,
)


@pytest.fixture(scope="session")
def terraform(tmp_path_factory) -> Terraform:
    return find_terraform(tmp_path_factory.mktemp("tf-cli"))


@pytest.fixture(scope="session")
def tf_tree(tmp_path_factory, terraform) -> Path:
    """A session copy of terraform/ whose root and modules are initialised."""
    tree = copy_terraform_tree(tmp_path_factory.mktemp("tf") / "terraform")
    terraform.init(tree)
    return tree


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Package:
    """The app packaged by tools/package.py."""
    require_wheelhouse()
    out_dir = tmp_path_factory.mktemp("build") / "dev"
    result = subprocess.run(
        package_command(out_dir), capture_output=True, text=True, timeout=240,
        env={**os.environ, "AWS_DEFAULT_REGION": REGION},
    )
    if result.returncode != 0:
        pytest.fail(f"tools/package.py failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return Package(out_dir / "manifest.json", out_dir / "deployment.zip")


class Stack:
    """The root module applied to one moto server."""

    def __init__(self, terraform, tree, package, endpoint):
        self.terraform, self.tree, self.package, self.endpoint = terraform, tree, package, endpoint
        self.env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        self.vars = [
            "-var=stage=dev",
            f"-var=aws_region={REGION}",
            f"-var=manifest_path={package.manifest}",
            f"-var=package_zip_path={package.zip}",
            # moto: a transient error (a connection its server dropped under load) is
            # retried, an unsupported call fails in seconds, not the default minutes.
            "-var=aws_max_retries=3",
            "-var=alarm_email=oncall@example.com",
            # moto's Cognito serves the pool's keys over http.
            f"-var=emulator_endpoint_url={endpoint}",
        ]
        self.outputs: dict = {}
        self.outputs_file: Path | None = None
        self.destroyed = False

    def tf(self, *args, check=True, timeout=240):
        return self.terraform.run(self.tree, *args, "-no-color", "-input=false", *self.vars,
                                  env=self.env, check=check, timeout=timeout)

    def client(self, service):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture(scope="session")
def moto_endpoint():
    """The moto server `make run` and `make deploy-local` start, on a free port of
    127.0.0.1 (its patches matter: the deployed functions call it concurrently)."""
    from local_stack.moto_server import MotoServer

    with MotoServer(0) as server:
        yield server.url


@pytest.fixture(scope="session")
def applied_stack(terraform, tf_tree, package, moto_endpoint, tmp_path_factory):
    """One ``terraform apply`` of the app's package to moto for the whole session
    (about 45 s), shared by the applied-stack checks, the IAM check and the
    run-deployed end-to-end tests; test_terraform_moto.py destroys it last."""
    stack = Stack(terraform, tf_tree, package, moto_endpoint)
    stack.tf("apply", "-auto-approve", timeout=280)
    raw = terraform.run(tf_tree, "output", "-json", env=stack.env).stdout
    stack.outputs = {name: value["value"] for name, value in json.loads(raw).items()}
    stack.outputs_file = tmp_path_factory.mktemp("outputs") / "outputs.json"
    stack.outputs_file.write_text(raw)
    yield stack
    if not stack.destroyed:  # a failed test left it up: clean the state dir anyway
        stack.tf("destroy", "-auto-approve", check=False)
    for leftover in ("terraform.tfstate", "terraform.tfstate.backup"):
        (tf_tree / leftover).unlink(missing_ok=True)
