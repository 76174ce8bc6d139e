"""terraform/modules/health_api: its own plan-level `terraform test` (mocked
provider), run from the module's directory in a copy of terraform/."""
from __future__ import annotations

import pytest

from tests.terraform.tfsupport import MIN_TEST_VERSION, copy_terraform_tree

pytestmark = pytest.mark.terraform


def test_health_api_module_tests_pass(terraform, tmp_path):
    """One public GET /health route, payload 1.0 on the function, throttled, the
    function invocable by that route only, and the integration timeout bounded."""
    if terraform.version < MIN_TEST_VERSION:
        pytest.skip("terraform test with override_during needs Terraform >= 1.11")
    module = copy_terraform_tree(tmp_path / "terraform") / "modules" / "health_api"
    terraform.init(module)
    result = terraform.run(module, "test", "-no-color")
    assert "0 failed" in result.stdout and "2 passed" in result.stdout, result.stdout
