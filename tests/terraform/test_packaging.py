"""tools/package.py: the manifest Terraform reads agrees with the design contract,
and packaging is reproducible."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import pytest

from tests.terraform.tfsupport import REGION, ROOT

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
    if not package.real:
        pytest.skip("app.py is not there yet: nothing to package")
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
            assert spec["runtime"].startswith("python3.")

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
                [sys.executable, str(ROOT / "tools" / "package.py"), "--stage", "dev",
                 "--project-dir", str(ROOT), "--out-dir", str(out_dir)],
                check=True, capture_output=True, timeout=240,
                env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": REGION},
            )
            outputs.append(((out_dir / "deployment.zip").read_bytes(),
                            (out_dir / "manifest.json").read_text()))
        assert outputs[0] == outputs[1]
