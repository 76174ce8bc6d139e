#!/usr/bin/env python3
"""Print, or write into README.md, the configuration table derived from the settings
declared in chalicelib/config.py (tests/unit/test_config.py checks the README).

Usage: ``python tools/config_table.py [--write]``
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADER = "| variable | default | meaning |\n|---|---|---|\n"


def table() -> str:
    from chalicelib.config import variables

    return HEADER + "".join(f"| `{v.name}` | {v.default} | {v.doc} |\n" for v in variables())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = parser.parse_args()
    if not args.write:
        print(table(), end="")
        return 0
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(re.escape(HEADER) + r"\| `SESSIONS_TABLE` \|.*?\n\n", re.S)
    if not pattern.search(text):
        print("README.md has no configuration table starting with SESSIONS_TABLE", file=sys.stderr)
        return 1
    readme.write_text(pattern.sub(lambda _: table() + "\n", text, count=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
