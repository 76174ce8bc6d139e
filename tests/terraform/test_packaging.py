"""tools/package.py: a zip for the target Lambda runtime (not the builder's
Python), a manifest Terraform reads that agrees with the design contract,
timeouts that respect AWS's limits, and reproducible packaging."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import zipfile

import pytest

from tests.terraform.tfsupport import (
    REGION, ROOT, TARGET_ARCH, TARGET_RUNTIME, WHEELHOUSE, package_command,
)
from tools.lambda_target import RUST_BINDING, Target, read_lock, verify_package

CONTRACT = ROOT / "docs" / "design-contract.md"
# Functions the app must always have; sweep and publish arrive with issues 5 and 6.
REQUIRED = {"authorizer", "websocket_connect", "websocket_message", "websocket_disconnect", "deliver_welcome"}
ROUTES = {"websocket_connect": "$connect", "websocket_message": "$default", "websocket_disconnect": "$disconnect"}


def contract_handlers() -> dict[str, str]:
    """Chalice function name -> handler string, from the contract's table."""
    rows = re.findall(r"^\|\s*`(\w+)`\s*\|\s*`([\w.]+)`\s*\|", CONTRACT.read_text(), re.MULTILINE)
    return dict(rows)


@pytest.fixture(scope="module")
def real_package(package):
    return package


class TestManifest:
    def test_contract_table_is_readable(self):
        """The contract lists the seven functions this test compares against."""
        assert set(contract_handlers()) >= REQUIRED | {"sweep", "publish"}

    def test_functions_and_handlers_follow_the_contract(self, real_package):
        """Every packaged function is a contract function with the contract's handler."""
        contract = contract_handlers()
        functions = real_package.functions
        assert REQUIRED <= set(functions), REQUIRED - set(functions)
        for name, spec in functions.items():
            assert name in contract, f"{name} is not in docs/design-contract.md"
            assert spec["handler"] == contract[name], name

    def test_triggers(self, real_package):
        """WebSocket functions carry their route, the sweep its schedule."""
        functions = real_package.functions
        for name, route in ROUTES.items():
            assert functions[name]["websocket_route"] == route
        if "sweep" in functions:
            assert functions["sweep"]["schedule"] == "rate(1 minute)"
        for spec in functions.values():
            assert spec["runtime"] == TARGET_RUNTIME
            assert spec["architectures"] == [TARGET_ARCH]

    def test_manifest_names_its_zip(self, real_package):
        """The manifest's zip digest is the zip's."""
        manifest = json.loads(real_package.manifest.read_text())
        assert manifest["zip"] == real_package.zip.name
        assert manifest["zip_sha256"] == hashlib.sha256(real_package.zip.read_bytes()).hexdigest()

    def test_packaging_is_reproducible(self, real_package, tmp_path):
        """Packaging the same source twice gives the same zip bytes and manifest."""
        outputs = []
        for attempt in ("first", "second"):
            out_dir = tmp_path / attempt
            subprocess.run(
                package_command(out_dir), check=True, capture_output=True, timeout=240,
                env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": REGION},
            )
            outputs.append(((out_dir / "deployment.zip").read_bytes(),
                            (out_dir / "manifest.json").read_text()))
        assert outputs[0] == outputs[1]


class TestTargetRuntime:
    """`make package` on this machine's Python builds for the Lambda runtime."""

    def test_every_compiled_module_fits_the_target(self, real_package):
        """The zip's wheels all carry tags of python3.13/x86_64/glibc 2.34; their
        extensions are cp313 or abi3 ELF objects; cryptography's Rust binding ships."""
        target = Target(TARGET_RUNTIME, TARGET_ARCH)
        locked = [r.name for r in read_lock(ROOT / "requirements.txt", target)]
        shipped = verify_package(real_package.zip, target, locked)
        assert set(shipped) == set(locked)
        with zipfile.ZipFile(real_package.zip) as archive:
            names = archive.namelist()
        extensions = [n for n in names if n.endswith(".so")]
        assert RUST_BINDING in extensions
        assert all(n.endswith((".cpython-313-x86_64-linux-gnu.so", ".abi3.so")) for n in extensions), extensions
        assert not [n for n in names if "cpython-311" in n], "an extension for the builder's Python shipped"

    def test_manifest_records_the_target_and_what_ships(self, real_package):
        """Terraform compares the manifest's target with its own variables."""
        manifest = json.loads(real_package.manifest.read_text())
        assert manifest["target"] == {"runtime": "python3.13", "architecture": "x86_64",
                                      "python_version": "3.13", "glibc": "2.34"}
        assert {"pyjwt", "cryptography", "cffi", "attrs"} <= set(manifest["packages"])
        assert manifest["zip_size"] == real_package.zip.stat().st_size

    def test_nothing_dev_only_ships(self, real_package):
        """No boto3/botocore (the runtime has them), tests, local stack or bytecode."""
        with zipfile.ZipFile(real_package.zip) as archive:
            tops = {name.split("/", 1)[0] for name in archive.namelist()}
            infos = archive.infolist()
        assert not tops & {"boto3", "botocore", "tests", "local_stack", "broadcast_client", "tools", "moto"}
        assert not [i.filename for i in infos if "__pycache__" in i.filename or i.filename.endswith(".pyc")]
        # Reproducible entries: one fixed date, one mode, sorted names.
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in infos} == {0o100644}
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)

    def test_a_missing_wheel_fails_the_build_naming_package_and_target(self, real_package, tmp_path):
        """Without cryptography's wheel the build stops (exit 1) and says which
        package is missing for which runtime; no zip or manifest is left behind."""
        wheelhouse = tmp_path / "wheelhouse"
        shutil.copytree(WHEELHOUSE, wheelhouse)
        for wheel in wheelhouse.glob("cryptography-*.whl"):
            wheel.unlink()
        out_dir = tmp_path / "out"
        result = subprocess.run(package_command(out_dir, wheelhouse=wheelhouse),
                                capture_output=True, text=True, timeout=240,
                                env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": REGION})
        assert result.returncode == 1
        assert re.search(r"no wheel for python3\.13 on x86_64 .*: cryptography==\d", result.stderr), result.stderr
        assert not out_dir.exists()

    def test_a_wheel_for_another_target_is_not_taken(self, real_package, tmp_path):
        """The same wheels do not fit python3.12 (cffi is cp313): that build fails too."""
        wheelhouse = tmp_path / "wheelhouse"
        shutil.copytree(WHEELHOUSE, wheelhouse)
        command = package_command(tmp_path / "out", wheelhouse=wheelhouse)
        command[command.index("--runtime") + 1] = "python3.12"
        result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                                env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": REGION})
        assert result.returncode == 1
        assert "no wheel for python3.12 on x86_64" in result.stderr and "cffi==" in result.stderr


class TestTimeouts:
    """Function timeouts follow AWS's limits and the app's own deadlines."""

    # "Integration timeout: 50 milliseconds - 29 seconds for all integration
    # types" (API Gateway developer guide, "Amazon API Gateway quotas for
    # configuring and running a WebSocket API"). A function still running then
    # is cut off by the gateway while it keeps writing state.
    API_GATEWAY_INTEGRATION_TIMEOUT = 29

    def test_route_functions_end_before_the_integration_timeout(self, real_package):
        """The authorizer and the $connect/$default/$disconnect functions time out before 29 s."""
        functions = real_package.functions
        behind_the_api = [n for n, f in functions.items() if f.get("websocket_route")] + ["authorizer"]
        assert len(behind_the_api) == 4
        for name in behind_the_api:
            assert functions[name]["timeout"] < self.API_GATEWAY_INTEGRATION_TIMEOUT, name

    def test_sweep_timeout_agrees_with_its_reserve_and_schedule(self, real_package):
        """A shard worker stops starting sessions TIME_RESERVE_SECONDS before its
        timeout, so the timeout leaves it time to work, and it ends before the next
        minute's workers start; the scheduled coordinator only starts them."""
        from chalicelib import sweeper

        coordinator, worker = real_package.functions["sweep"], real_package.functions["sweep_shard"]
        assert coordinator["schedule"] == "rate(1 minute)" and coordinator["timeout"] < 60
        assert worker["timeout"] >= 4 * sweeper.TIME_RESERVE_SECONDS
        assert worker["timeout"] < 60

    def test_welcome_delivery_fits_in_its_function(self, real_package):
        """deliver_welcome retries for WELCOME_DELIVERY_TIMEOUT_SECONDS: its timeout is longer."""
        from chalicelib.config import Config

        assert real_package.functions["deliver_welcome"]["timeout"] > \
            Config().welcome_delivery_timeout_seconds + 3
