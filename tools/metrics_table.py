#!/usr/bin/env python3
"""Print, or write into docs/observability.md, the metrics table derived from the
catalogue in chalicelib/observability/metrics.py (tests/unit/test_metrics.py checks
the doc).

Usage: ``python tools/metrics_table.py [--write]``
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "observability.md"
HEADER = "| metric | unit | dimensions | meaning |\n|---|---|---|---|\n"


def row(spec) -> str:
    from chalicelib.observability.metrics import STAGE

    dimensions = f"`{STAGE}`" + (f", `{spec.dimension}`" if spec.dimension else "")
    return f"| `{spec.name}` | {spec.unit} | {dimensions} | {spec.doc} |\n"


def table() -> str:
    from chalicelib.observability.metrics import CATALOGUE

    return HEADER + "".join(row(spec) for spec in CATALOGUE.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in docs/observability.md")
    args = parser.parse_args()
    if not args.write:
        print(table(), end="")
        return 0
    text = DOC.read_text()
    pattern = re.compile(re.escape(HEADER) + r"(?:\|.*\n)*\n")
    if not pattern.search(text):
        print("docs/observability.md has no metrics table (header: "
              f"{HEADER.splitlines()[0]!r}) followed by a blank line", file=sys.stderr)
        return 1
    DOC.write_text(pattern.sub(lambda _: table() + "\n", text, count=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
