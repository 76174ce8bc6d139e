"""Figures of the attack suites (issue 12), written to build/attack-figures.json.

Every suite counts what it tried and how each attempt ended:

- ``refused``: turned away as documented (a 4xx, a documented 503, an ``error``
  message with a documented code);
- ``wrongly_accepted``: let through although it should not have been (a forged
  token admitted, a connect over the rate limit, a listener acting as the speaker,
  counts that drifted);
- ``server_errors``: a 5xx other than the documented 503s, ``INTERNAL_ERROR``, or a
  handler that raised;
- ``accepted``: legitimately let through (fuzzing and chaos try valid input too).

``tests/conftest.py`` writes the file when the run ends, merging with the suites a
previous run recorded (``make test-attack`` runs only these).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict

import attrs

ROOT = Path(__file__).resolve().parents[2]
FIGURES_FILE = ROOT / "build" / "attack-figures.json"


@attrs.define
class Tally:
    tried: int = 0
    refused: int = 0
    wrongly_accepted: int = 0
    server_errors: int = 0
    accepted: int = 0
    extra: Dict[str, object] = attrs.field(factory=dict)
    started: float = attrs.field(factory=time.monotonic, repr=False)
    last: float = attrs.field(factory=time.monotonic, repr=False)

    def add(self, outcome: str) -> None:
        """Count one attempt ending in ``outcome`` (a field name above)."""
        self.tried += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.last = time.monotonic()

    def to_dict(self) -> dict:
        return {
            "tried": self.tried, "refused": self.refused,
            "wrongly_accepted": self.wrongly_accepted, "server_errors": self.server_errors,
            "accepted": self.accepted, **self.extra,
            # From the first attempt to the last: the suite's own time, roughly.
            "seconds": round(self.last - self.started, 1),
        }


SUITES: Dict[str, Tally] = {}


def tally(suite: str) -> Tally:
    """The running tally of ``suite`` (created on first use, summed over its tests)."""
    return SUITES.setdefault(suite, Tally())


def write() -> None:
    if not SUITES:
        return
    try:
        figures = json.loads(FIGURES_FILE.read_text())
    except (OSError, ValueError):
        figures = {}
    figures.update({name: suite.to_dict() for name, suite in SUITES.items()})
    FIGURES_FILE.parent.mkdir(exist_ok=True)
    FIGURES_FILE.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
