"""Helpers shared by the Terraform checks (tests/terraform)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

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
