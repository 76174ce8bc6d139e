"""The code has no unused imports or names, no undefined or shadowed ones (ruff's
pyflakes rules, ruff.toml): what a reader trips over and a refactor leaves behind."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_pyflakes_finds_nothing():
    """`ruff check` (select F) over the whole repository reports no finding."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.fail("ruff is not installed in this environment: `make venv` installs it")
    result = subprocess.run([ruff, "check", "--output-format", "concise", "."],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
