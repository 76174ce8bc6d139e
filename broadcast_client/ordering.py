"""Order of what a listener receives: broadcast sequence numbers and speaker audio.

This module is where the client applies docs/protocol.md's rules about order
(Broadcast: ``sequenceNumber`` per session and target language; Audio in:
``speakerSequenceNumber``). The protocol core only asks it questions:

- :class:`BroadcastSequences`: is this numbered message new (show it) or a
  duplicate (drop it), and which numbers were lost? One :class:`SequenceFilter`
  per target language.
- :class:`AudioReorderBuffer`: which received audio chunks are due to be written,
  in the speaker's order.

Pure: no sockets, no clock (callers pass ``now``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import attrs

from .actions import Print, WriteAudio

#: How far past the oldest missing number a filter keeps waiting for it.
SEQUENCE_WINDOW = 1000


@attrs.frozen
class Gap:
    """Numbers a :class:`SequenceFilter` stopped waiting for: ``count`` of them
    between ``first`` and ``last`` (both missing)."""

    count: int
    first: int
    last: int


@attrs.define
class SequenceFilter:
    """The ``sequenceNumber`` values of one target language seen so far.

    docs/protocol.md (Broadcast): numbers are strictly increasing per session and
    target language; drop a message whose number you have seen (a refresh overlap
    delivers everything twice); a jump means messages were lost. Publishes run
    concurrently, so messages may also arrive out of order: every number above
    ``floor`` is remembered, not only the highest. A number more than ``window``
    below the highest seen is given up on (:meth:`expire`), so one lost message
    does not make the filter remember every later number.
    """

    floor: Optional[int] = None  # every number up to here counts as seen
    window: int = SEQUENCE_WINDOW
    _above: set = attrs.field(factory=set)
    _top: Optional[int] = None  # the highest number in _above (when not empty)

    def reset(self, baseline: int) -> None:
        """Start at ``baseline``, the last number published before we arrived
        (``sessionJoined``, ``languageChanged``); numbers above it seen already stay seen."""
        self.floor = baseline
        self._above = {n for n in self._above if n > baseline}
        self._compact()

    def advance(self, baseline: int) -> List[int]:
        """Count everything up to ``baseline`` as seen (after a reconnect); returns
        the numbers that never arrived, lost while we were away."""
        if self.floor is None:
            self.reset(baseline)
            return []
        missed = [n for n in range(self.floor + 1, baseline + 1) if n not in self._above]
        if baseline > self.floor:
            self.reset(baseline)
        return missed

    def accept(self, number: int) -> bool:
        """True the first time ``number`` is seen, False for a duplicate."""
        if (self.floor is not None and number <= self.floor) or number in self._above:
            return False
        self._above.add(number)
        if self._top is None or number > self._top or len(self._above) == 1:
            self._top = number
        self._compact()
        return True

    def expire(self) -> Optional[Gap]:
        """Stop waiting for numbers more than :attr:`window` below the highest
        seen: they count as seen from now on. Returns what was given up, if anything."""
        if not self._above:
            return None
        top = self._top
        if self.floor is None:
            low = min(self._above)
            if top - low <= self.window:
                return None
            self.floor = low - 1
        if top - self.floor <= self.window:
            return None
        new_floor = top - self.window
        first = self.floor + 1  # missing: _compact() leaves no seen number at floor + 1
        last = new_floor
        while last in self._above:
            last -= 1
        kept = {n for n in self._above if n > new_floor}
        count = (new_floor - self.floor) - (len(self._above) - len(kept))
        self._above, self.floor = kept, new_floor
        self._compact()
        return Gap(count, first, last)

    def missing(self) -> List[int]:
        """Numbers below the highest seen that have not arrived (yet)."""
        if not self._above:
            return []
        low = self.floor + 1 if self.floor is not None else min(self._above)
        return [n for n in range(low, max(self._above)) if n not in self._above]

    @property
    def remembered(self) -> int:
        """How many numbers above :attr:`floor` are held (the filter's memory)."""
        return len(self._above)

    @property
    def highest(self) -> Optional[int]:
        return max(self._above, default=self.floor)

    def _compact(self) -> None:
        if self.floor is None:
            return
        while self.floor + 1 in self._above:
            self.floor += 1
            self._above.discard(self.floor)


@attrs.define
class BroadcastSequences:
    """A listener's broadcast numbering, one :class:`SequenceFilter` per target language.

    Welcomes (``sessionJoined``, ``connectionRefreshComplete``) and
    ``languageChanged`` carry a baseline, the last number published before them;
    every other numbered message is a broadcast message (:meth:`arrived`).
    """

    _filters: Dict[Optional[str], SequenceFilter] = attrs.field(factory=dict)

    def of(self, language: Optional[str]) -> SequenceFilter:
        """The filter of one target language."""
        return self._filters.setdefault(language, SequenceFilter())

    def arrived(self, language: Optional[str], number: int) -> Tuple[bool, List[Any]]:
        """A broadcast message numbered ``number`` arrived: whether to show it
        (False: a duplicate, drop it) and notes about numbers given up on."""
        sequences = self.of(language)
        if not sequences.accept(number):
            return False, []
        gap = sequences.expire()
        if gap is None:
            return True, []
        return True, [Print(f"! {gap.count} message(s) missed (#{gap.first}..#{gap.last}): not arrived "
                            f"{sequences.window} messages later; no longer waiting for them")]

    def welcomed(self, language: Optional[str], baseline: int, *, reconnected: bool) -> List[Any]:
        """A welcome's ``sequenceNumber`` (``baseline``) arrived; ``reconnected``: on a
        socket that replaced one lost unexpectedly. Returns notes about messages lost."""
        sequences = self.of(language)
        if reconnected:
            missed = sequences.advance(baseline)
            if missed:
                return [Print(f"! {len(missed)} message(s) missed while reconnecting "
                              f"(#{missed[0]}..#{missed[-1]})")]
        elif sequences.floor is None:
            # A refresh overlap keeps the old floor: the old socket may still
            # deliver numbers below this baseline.
            sequences.reset(baseline)
        return []

    def restart(self, language: Optional[str], baseline: int) -> None:
        """``languageChanged``: numbering of ``language`` starts after ``baseline``."""
        self.of(language).reset(baseline)


@attrs.define
class AudioReorderBuffer:
    """Puts received audio back in the speaker's order before it is written.

    API Gateway hands one connection's messages to the server concurrently and a
    publish fans out concurrently, so chunks can arrive out of order. They are
    ordered by ``speakerSequenceNumber``: a chunk is written when it is the next
    one, or when chunks have waited ``hold`` seconds for a missing one (which is
    then skipped, and dropped if it turns up later). Chunks without a number are
    written as they come.
    """

    hold: float = 0.5
    _next: Optional[int] = None
    _pending: Dict[int, Tuple[float, bytes]] = attrs.field(factory=dict)

    def push(self, number: Optional[int], data: bytes, now: float) -> List[Any]:
        if number is None:
            return [WriteAudio(data)]
        if (self._next is not None and number < self._next) or number in self._pending:
            return [Print(f"! speaker's audio chunk {number} came too late or twice; not written")]
        self._pending[number] = (now, data)
        return self.release(now)

    def release(self, now: float, *, flush: bool = False) -> List[Any]:
        """Write what is due: the next chunk in order, everything once ``hold`` expired."""
        actions: List[Any] = []
        while self._pending:
            number = min(self._pending)
            waited = now - min(arrived for arrived, _ in self._pending.values())
            if not (flush or number == self._next or waited >= self.hold):
                break
            _, data = self._pending.pop(number)
            self._next = number + 1
            actions.append(WriteAudio(data))
        return actions

    def deadline(self) -> Optional[float]:
        """When :meth:`release` must run next, or None when nothing waits."""
        if not self._pending:
            return None
        return min(arrived for arrived, _ in self._pending.values()) + self.hold
