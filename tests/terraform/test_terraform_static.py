"""Static Terraform checks: formatting, validation of every module and the root,
and the plan-level ``terraform test`` suite (mocked provider, terraform/tests)."""

from __future__ import annotations

import shutil

import pytest

from tests.terraform.tfsupport import MIN_TEST_VERSION, MODULES, TERRAFORM_DIR, copy_terraform_tree

pytestmark = pytest.mark.terraform


class TestFormatting:
    def test_terraform_fmt_is_clean(self, terraform):
        """Every .tf/.tftest.hcl file is as `terraform fmt` writes it."""
        result = terraform.run(TERRAFORM_DIR, "fmt", "-check", "-recursive", "-diff",
                               "-no-color", check=False)
        assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


class TestValidate:
    def test_root_module_is_valid(self, terraform, tf_tree):
        """The root module validates with the aws provider from the mirror."""
        terraform.run(tf_tree, "validate", "-no-color")

    @pytest.mark.parametrize("module", MODULES)
    def test_module_is_valid(self, terraform, tmp_path, module):
        """Each module validates on its own (it declares its own provider needs)."""
        tree = copy_terraform_tree(tmp_path / "terraform")
        terraform.init(tree / "modules" / module)
        terraform.run(tree / "modules" / module, "validate", "-no-color")


class TestPlanLevel:
    @pytest.fixture(autouse=True)
    def _needs_recent_terraform(self, terraform):
        if terraform.version < MIN_TEST_VERSION:
            pytest.skip(f"terraform test with override_during needs Terraform >= "
                        f"{'.'.join(map(str, MIN_TEST_VERSION))}, found "
                        f"{'.'.join(map(str, terraform.version))}")

    def test_terraform_test_suite_passes(self, terraform, tf_tree):
        """terraform/tests/*.tftest.hcl pass with the contract's fixture manifest."""
        result = terraform.run(tf_tree, "test", "-no-color")
        assert "0 failed" in result.stdout, result.stdout

    def test_root_checks_pass_with_the_real_manifest(self, terraform, tmp_path, package):
        """The root checks (handlers, IAM, alarms) also hold for the app's own manifest."""
        # terraform test gives the test file's variables precedence over -var, so
        # the real package replaces the fixtures in a copy of the tree instead.
        tree = copy_terraform_tree(tmp_path / "terraform")
        shutil.copyfile(package.manifest, tree / "tests" / "fixtures" / "manifest.json")
        shutil.copyfile(package.zip, tree / "tests" / "fixtures" / "deployment.zip")
        terraform.init(tree)
        result = terraform.run(tree, "test", "-no-color", "-filter=tests/root.tftest.hcl")
        assert "0 failed" in result.stdout, result.stdout
