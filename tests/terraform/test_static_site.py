"""terraform/modules/static_site: its own plan-level `terraform test` (mocked
provider), run from the module's directory in a copy of terraform/ with web/
beside it, as in the repository (the module uploads web/'s files)."""
from __future__ import annotations

import shutil

import pytest

from tests.terraform.tfsupport import MIN_TEST_VERSION, ROOT, copy_terraform_tree

pytestmark = pytest.mark.terraform


def test_static_site_module_tests_pass(terraform, tmp_path):
    """Private bucket read through origin access control only, https only, the pages and
    assets with their types, config.js with the WebSocket URL, the Hosted UI option, input
    validation, and the root's optional wiring (off by default)."""
    if terraform.version < MIN_TEST_VERSION:
        pytest.skip("terraform test with override_during needs Terraform >= 1.11")
    tree = copy_terraform_tree(tmp_path / "terraform")
    shutil.copytree(ROOT / "web", tmp_path / "web")
    module = tree / "modules" / "static_site"
    terraform.init(module)
    result = terraform.run(module, "test", "-no-color")
    assert "0 failed" in result.stdout and "7 passed" in result.stdout, result.stdout
