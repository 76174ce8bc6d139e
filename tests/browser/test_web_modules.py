"""The pages' pure modules and their client (web/assets/js/lib), unit-tested with
node's own test runner (tests/browser/js/*.test.mjs): no browser needed."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).parent / "js"


@pytest.mark.skipif(shutil.which("node") is None, reason="node (>= 20) runs the pages' unit tests; install nodejs")
def test_the_pages_modules_pass_their_unit_tests():
    """`node --test` over tests/browser/js: ordering, refresh handover, reconnect, refusals,
    PCM and resampling, presence counts, tokens, Hosted UI URLs."""
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.mjs"))
    assert files
    done = subprocess.run(["node", "--test", *files], capture_output=True, text=True, timeout=120)
    summary = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", done.stdout, re.M))
    assert done.returncode == 0 and summary.get("fail") == "0", done.stdout[-4000:] + done.stderr[-2000:]
    assert int(summary["pass"]) >= 30, summary
