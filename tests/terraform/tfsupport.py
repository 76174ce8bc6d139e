"""Helpers shared by the Terraform checks (tests/terraform)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
FIXTURES = TERRAFORM_DIR / "tests" / "fixtures"
MODULES = sorted(p.name for p in (TERRAFORM_DIR / "modules").iterdir() if p.is_dir())
DEFAULT_PLUGIN_DIRS = ("/opt/tf-plugins",)
# terraform test's override_during (mocked computed values at plan time) came in 1.11.
MIN_TEST_VERSION = (1, 11)
REGION = "us-east-1"
# The target every packaging test builds for (tools/package.py's default), from
# the wheelhouse `make test` fills before running pytest (tests never download).
TARGET_RUNTIME, TARGET_ARCH = "python3.13", "x86_64"
WHEELHOUSE = ROOT / "build" / "wheelhouse" / f"{TARGET_RUNTIME}-{TARGET_ARCH}"


def package_command(out_dir: Path, *extra: str, wheelhouse: Path = WHEELHOUSE) -> list:
    """tools/package.py for the test target, offline, from ``wheelhouse``."""
    import sys

    return [sys.executable, str(ROOT / "tools" / "package.py"), "--stage", "dev",
            "--project-dir", str(ROOT), "--out-dir", str(out_dir), "--offline",
            "--runtime", TARGET_RUNTIME, "--arch", TARGET_ARCH, "--wheelhouse", str(wheelhouse),
            *extra]


def require_wheelhouse() -> None:
    """Skip, saying how to fix it, when the target's wheels were never downloaded."""
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.skip(f"no wheels for {TARGET_RUNTIME}/{TARGET_ARCH} in {WHEELHOUSE}: "
                    f"`make wheelhouse` downloads them (make test does it first)")


@dataclass
class Terraform:
    """A terraform binary bound to an environment that can never reach the network."""

    binary: str
    version: tuple[int, ...]
    plugin_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, workdir: Path, *args: str, env: dict[str, str] | None = None,
            check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.binary, *args], cwd=workdir, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=timeout,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"terraform {' '.join(args)} (in {workdir}) exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
                pytrace=False,
            )
        return result

    def init(self, workdir: Path, *args: str) -> None:
        self.run(workdir, "init", "-input=false", "-no-color", "-backend=false",
                 f"-plugin-dir={self.plugin_dir}", *args)


def copy_terraform_tree(dest: Path) -> Path:
    """Copy terraform/ without local provider installs, lock files or state."""
    shutil.copytree(
        TERRAFORM_DIR, dest,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*",
                                      "terraform.tfstate.d", "*.tfplan"),
    )
    return dest


@dataclass
class Package:
    manifest: Path
    zip: Path

    @property
    def functions(self) -> dict:
        return json.loads(self.manifest.read_text())["functions"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _find_plugin_dir() -> Path | None:
    candidates = [os.environ.get("TF_PLUGIN_DIR"), *DEFAULT_PLUGIN_DIRS]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if (path / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return path
    return None


def find_terraform(cli_config_dir: Path) -> Terraform:
    """The terraform binary with the provider mirror, in an environment that can never
    reach the network; skips (saying why) where either is missing."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (Terraform >= 1.6 needed for these checks)")
    plugin_dir = _find_plugin_dir()
    if plugin_dir is None:
        pytest.skip(
            "no hashicorp/aws provider mirror: set TF_PLUGIN_DIR to a directory holding "
            "registry.terraform.io/hashicorp/aws (these checks never download providers)"
        )
    out = subprocess.run([binary, "version", "-json"], capture_output=True, text=True,
                         env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    version = tuple(int(x) for x in re.findall(r"\d+", json.loads(out.stdout)["terraform_version"])[:3])

    # An empty CLI config: no user settings, no credentials helpers; with
    # -plugin-dir, init installs from the mirror only.
    cli_config = Path(cli_config_dir) / "terraformrc"
    cli_config.write_text("# generated by tests/terraform/tfsupport.py\n")
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("TF_", "AWS_ENDPOINT_URL"))
    }
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",  # no version check call home
    )
    return Terraform(binary=binary, version=version, plugin_dir=plugin_dir, env=env)


def plan_json(terraform: Terraform, tree: Path, endpoint: str, *variables: str) -> dict:
    """``terraform plan`` of the root module in ``tree`` (initialised here) against an
    emulator at ``endpoint`` (the provider checks its credentials there; nothing is
    created), as ``terraform show -json`` gives it. The fixture manifest by default."""
    terraform.init(tree)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    terraform.run(tree, "plan", "-input=false", "-no-color", "-out=observed.tfplan",
                  "-var=stage=dev", "-var=manifest_path=tests/fixtures/manifest.json",
                  "-var=aws_max_retries=3", *variables, env=env, timeout=300)
    return json.loads(terraform.run(tree, "show", "-json", "observed.tfplan", env=env).stdout)


def _dimensions(known: Optional[dict], unknown) -> Dict[str, Optional[str]]:
    """A metric's dimensions from the plan; a value only known after apply is None."""
    dimensions: Dict[str, Optional[str]] = dict(known or {})
    if isinstance(unknown, dict):
        for name, is_unknown in unknown.items():
            if is_unknown is True:
                dimensions[name] = None
    return dimensions


def planned_alarm_metrics(plan: dict) -> List[dict]:
    """Every metric every planned alarm watches: ``{"alarm", "namespace", "metric",
    "dimensions"}`` (single-metric alarms and each metric of a metric-math alarm)."""
    metrics = []
    for change in plan["resource_changes"]:
        if change["type"] != "aws_cloudwatch_metric_alarm":
            continue
        after, unknown = change["change"]["after"], change["change"]["after_unknown"] or {}
        name = after["alarm_name"]
        if after.get("metric_name"):
            metrics.append({"alarm": name, "namespace": after["namespace"], "metric": after["metric_name"],
                            "dimensions": _dimensions(after.get("dimensions"), unknown.get("dimensions"))})
        for index, query in enumerate(after.get("metric_query") or []):
            unknown_query = (unknown.get("metric_query") or [{}] * (index + 1))[index] or {}
            for inner, metric in enumerate(query.get("metric") or []):
                unknown_metric = ((unknown_query.get("metric") or [{}] * (inner + 1))[inner] or {}) \
                    if isinstance(unknown_query, dict) else {}
                metrics.append({"alarm": name, "namespace": metric["namespace"],
                                "metric": metric["metric_name"],
                                "dimensions": _dimensions(metric.get("dimensions"),
                                                          unknown_metric.get("dimensions"))})
    return metrics
