"""Human-readable session ids: ``{adjective}-{noun}-{NNN}``.

Generation is pure: :func:`candidate_ids` yields at most ``MAX_ID_ATTEMPTS`` fresh
candidates and the store claims one with a conditional put, so two speakers can
never share an id (no read-then-write).
"""

from __future__ import annotations

import random
import re
import secrets
from typing import Iterator, Optional

from chalicelib.wire.words import ADJECTIVES, NOUNS, is_blocked

MAX_ID_ATTEMPTS = 10
NUMBER_MIN, NUMBER_MAX = 100, 999

_SHAPE = re.compile(r"([a-z]+)-([a-z]+)-([1-9][0-9]{2})")
_ADJECTIVES = frozenset(ADJECTIVES)
_NOUNS = frozenset(NOUNS)
_system_random = secrets.SystemRandom()


def generate_session_id(rng: Optional[random.Random] = None) -> str:
    """One random, non-blocked id. ``rng`` is injectable for deterministic tests."""
    rng = rng or _system_random
    while True:
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        if not is_blocked(adjective, noun):
            return f"{adjective}-{noun}-{rng.randint(NUMBER_MIN, NUMBER_MAX)}"


def candidate_ids(rng: Optional[random.Random] = None) -> Iterator[str]:
    """Up to MAX_ID_ATTEMPTS distinct candidates, to be claimed in order."""
    seen = set()
    while len(seen) < MAX_ID_ATTEMPTS:
        candidate = generate_session_id(rng)
        if candidate not in seen:
            seen.add(candidate)
            yield candidate


def is_valid_session_id(value: object) -> bool:
    """Exactly the generated shape: listed words, a number from 100 to 999."""
    if not isinstance(value, str):
        return False
    match = _SHAPE.fullmatch(value)
    if not match:
        return False
    adjective, noun, _number = match.groups()
    return adjective in _ADJECTIVES and noun in _NOUNS and not is_blocked(adjective, noun)
