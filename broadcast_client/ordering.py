"""Order of what a listener receives: broadcast sequence numbers and speaker audio.

This module is where the client applies docs/protocol.md's rules about order
("Ordering and duplicates"), the same rules as the browser client's
``web/assets/js/lib/sequence.js`` (``ReorderBuffer``) and ``player.js``:

- :class:`ReorderBuffer`: one sequence of numbers. Delivers each number once, in
  order; holds what arrives early; gives a missing number up (a :class:`Gap`) only
  when a later message has waited :data:`GAP_TIMEOUT` or more than :data:`WINDOW`
  messages wait behind it; drops duplicates, and late numbers whose gap was reported.
- :class:`BroadcastSequences`: one buffer per target language, and the baseline
  rules of the welcomes (join, refresh, reconnect) and of ``languageChanged``.
- :class:`AudioOrder`: received audio chunks in the speaker's order
  (``speakerSequenceNumber``), holding a chunk at most :data:`AUDIO_HOLD` for a
  missing earlier one; the first chunk too, since an earlier one may overtake it.

Pure: no sockets, no clock. Callers pass ``now`` (any unit, the same throughout:
the client uses epoch seconds) and call ``expire(now)`` at ``deadline()``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import attrs

from .actions import Print, WriteAudio

#: How many messages may wait behind a missing number before it is given up.
WINDOW = 128
#: How long (s) a message waits for a missing number before that number is given up.
GAP_TIMEOUT = 2.0
#: How many given-up numbers are remembered, to tell "late" from "duplicate".
SKIPPED_MEMORY = 1024
#: How long (s) an audio chunk waits for a missing earlier one (the browser player's 300 ms).
AUDIO_HOLD = 0.3
#: How many audio chunks may wait behind a missing one (the browser player's window).
AUDIO_WINDOW = 32


@attrs.frozen
class Gap:
    """Numbers ``first``..``last`` (all missing) given up on, and why: ``timeout``
    (a later message waited the gap timeout), ``window`` (too many waited behind
    them), ``reconnect`` (published while the client was away) or ``end`` (the
    client stopped before they came)."""

    first: int
    last: int
    reason: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@attrs.frozen
class Release:
    """What one input to a :class:`ReorderBuffer` lets out: items to ``deliver`` in
    order, after reporting ``gaps``; ``duplicate`` and ``late`` say why an arrival
    was dropped."""

    deliver: Tuple[Any, ...] = ()
    gaps: Tuple[Gap, ...] = ()
    duplicate: bool = False
    late: bool = False

    def __add__(self, other: "Release") -> "Release":
        return Release(self.deliver + other.deliver, self.gaps + other.gaps,
                       self.duplicate or other.duplicate, self.late or other.late)


@attrs.define
class ReorderBuffer:
    """One sequence of numbers, put back in order (docs/protocol.md, "Ordering and
    duplicates", steps 1 to 5; sequence.js's ``ReorderBuffer``, method for method)."""

    window: int = WINDOW
    gap_timeout: float = GAP_TIMEOUT
    #: The next number to deliver; None until a baseline (a welcome) or a timeout sets it.
    next: Optional[int] = None
    duplicates: int = 0
    late: int = 0
    _held: Dict[int, Tuple[Any, float]] = attrs.field(factory=dict)  # number -> (item, arrived at)
    _skipped: Dict[int, None] = attrs.field(factory=dict)  # an ordered set, oldest first

    def reset(self, baseline: int, now: float) -> Release:
        """Start after ``baseline``, the last number published before this client
        arrived (``sessionJoined``, ``languageChanged``). Held numbers at or below it
        are dropped: they were published before."""
        self.next = baseline + 1
        self._held = {n: held for n, held in self._held.items() if n > baseline}
        return self._drain(now)

    def advance(self, baseline: int, now: float) -> Release:
        """After a reconnect: everything up to ``baseline`` was published while the
        client was away; what never arrived is reported at once (it cannot arrive any
        more)."""
        if self.next is None:
            return self.reset(baseline, now)
        deliver: List[Any] = []
        gaps: List[Gap] = []
        while self.next <= baseline:
            if self.next in self._held:
                deliver.append(self._take(self.next))
                self.next += 1
                continue
            following = [n for n in self._held if self.next < n <= baseline]
            last = min(following) - 1 if following else baseline
            gaps.append(self._skip(self.next, last, "reconnect"))
            self.next = last + 1
        return Release(tuple(deliver), tuple(gaps)) + self._drain(now)

    def push(self, number: int, item: Any, now: float) -> Release:
        """Message ``number`` (carrying ``item``) arrived at ``now``."""
        if (self.next is not None and number < self.next) or number in self._held:
            late = number in self._skipped
            if late:
                del self._skipped[number]
                # Its gap was reported and later messages delivered: applying it now
                # would put old state (a pause, a volume) over newer state.
                self.late += 1
            else:
                self.duplicates += 1
            return Release(duplicate=not late, late=late)
        self._held[number] = (item, now)
        return self._drain(now)

    def expire(self, now: float) -> Release:
        """Give up on missing numbers whose followers waited long enough."""
        return self._drain(now)

    def flush(self) -> Release:
        """Deliver everything held, in order, the holes reported as ``end`` gaps
        (the client stops: nothing else will come)."""
        return self._drain(0.0, force="end")

    def deadline(self) -> Optional[float]:
        """When :meth:`expire` must run next, or None when nothing waits."""
        if not self._held:
            return None
        return self._oldest() + self.gap_timeout

    @property
    def waiting(self) -> int:
        """How many numbers arrived but wait for a missing one."""
        return len(self._held)

    def _oldest(self) -> float:
        return min(at for _, at in self._held.values())

    def _take(self, number: int) -> Any:
        return self._held.pop(number)[0]

    def _skip(self, first: int, last: int, reason: str) -> Gap:
        # Only the newest SKIPPED_MEMORY numbers are kept: add no more than that.
        for n in range(max(first, last - SKIPPED_MEMORY + 1), last + 1):
            self._skipped[n] = None
            if len(self._skipped) > SKIPPED_MEMORY:
                del self._skipped[next(iter(self._skipped))]
        return Gap(first, last, reason)

    def _drain(self, now: float, force: Optional[str] = None) -> Release:
        deliver: List[Any] = []
        gaps: List[Gap] = []
        while True:
            if self.next is not None and self.next in self._held:
                deliver.append(self._take(self.next))
                self.next += 1
                continue
            if not self._held:
                break
            # Compared as deadline() computes it, so that expire(deadline()) always acts.
            if force is not None:
                reason = force
            elif now >= self._oldest() + self.gap_timeout:
                reason = "timeout"
            elif len(self._held) > self.window:
                reason = "window"
            else:
                break
            low = min(self._held)
            if self.next is None:
                # No baseline came (a welcome lost): start at the lowest number seen.
                self.next = low
                continue
            gaps.append(self._skip(self.next, low - 1, reason))
            self.next = low
        return Release(tuple(deliver), tuple(gaps))


@attrs.define
class BroadcastSequences:
    """A listener's broadcast numbering: one :class:`ReorderBuffer` per target
    language, and docs/protocol.md's baseline rules.

    Welcomes (``sessionJoined``, ``connectionRefreshComplete``) and
    ``languageChanged`` carry a baseline, the last number published before them;
    every other numbered message is a broadcast message (:meth:`arrived`).
    """

    window: int = WINDOW
    gap_timeout: float = GAP_TIMEOUT
    _buffers: Dict[Optional[str], ReorderBuffer] = attrs.field(factory=dict)

    def of(self, language: Optional[str]) -> ReorderBuffer:
        """The buffer of one target language."""
        buffer = self._buffers.get(language)
        if buffer is None:
            buffer = self._buffers[language] = ReorderBuffer(self.window, self.gap_timeout)
        return buffer

    def arrived(self, language: Optional[str], number: int, item: Any, now: float) -> Release:
        """A broadcast message numbered ``number`` arrived."""
        return self.of(language).push(number, item, now)

    def welcomed(self, language: Optional[str], baseline: int, now: float, *,
                 reconnected: bool) -> Release:
        """A welcome's ``sequenceNumber`` (``baseline``) arrived; ``reconnected``: on a
        socket that replaced one lost unexpectedly."""
        buffer = self.of(language)
        if reconnected:
            return buffer.advance(baseline, now)
        if buffer.next is None:
            return buffer.reset(baseline, now)
        # A refresh keeps its place: the old socket may still deliver numbers below
        # this baseline.
        return Release()

    def restart(self, language: Optional[str], baseline: int, now: float) -> Release:
        """``languageChanged``: the numbering of ``language`` starts after ``baseline``."""
        return self.of(language).reset(baseline, now)

    def expire(self, now: float) -> List[Tuple[Optional[str], Release]]:
        """Every language's buffer whose :meth:`ReorderBuffer.deadline` has come, expired."""
        return [(language, buffer.expire(now)) for language, buffer in self._buffers.items()
                if buffer.deadline() is not None and now >= buffer.deadline()]

    def flush(self) -> List[Tuple[Optional[str], Release]]:
        """Every language's held messages, in order (the client stops)."""
        return [(language, buffer.flush()) for language, buffer in self._buffers.items()
                if buffer.waiting]

    def deadline(self) -> Optional[float]:
        """When :meth:`expire` must run next, or None when nothing waits."""
        return min((d for d in (b.deadline() for b in self._buffers.values()) if d is not None),
                   default=None)


@attrs.define
class AudioOrder:
    """Received audio chunks in the speaker's order, as the browser's player does.

    Concurrent ``sendAudio`` invocations can publish chunks in another order than
    spoken (docs/protocol.md, "Ordering and duplicates", last paragraph), the first
    ones included. So the first numbered chunk is not written at once: like a jitter
    buffer starting up, it waits :attr:`hold` seconds for earlier ones, and writing
    starts from the lowest number seen by then (a chunk below it that comes later
    is not written). From then on a chunk after a missing one waits at most
    :attr:`hold` seconds (or until :attr:`window` chunks wait), then the missing one
    is skipped, and not written if it turns up later. Chunks without a number are
    written as they come.
    """

    hold: float = AUDIO_HOLD
    window: int = AUDIO_WINDOW
    _order: ReorderBuffer = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._order = ReorderBuffer(self.window, self.hold)

    def push(self, number: Optional[int], data: bytes, now: float) -> List[Any]:
        """One chunk arrived: what to write now (and notes)."""
        if number is None:
            return [WriteAudio(data)]
        # No baseline: the buffer holds the first chunks for ``hold``, then starts at
        # the lowest number seen (ReorderBuffer's rule when a welcome was lost).
        result = self._order.push(number, data, now)
        if result.duplicate or result.late:
            return [Print(f"! speaker's audio chunk {number} came too late or twice; not written")]
        return self._write(result)

    def expire(self, now: float) -> List[Any]:
        return self._write(self._order.expire(now))

    def flush(self) -> List[Any]:
        """Everything held, in order (the client stops)."""
        return self._write(self._order.flush())

    def deadline(self) -> Optional[float]:
        return self._order.deadline()

    def _write(self, result: Release) -> List[Any]:
        why = {"timeout": f"not arrived within {self.hold:g} s",
               "window": f"{self.window} later chunks waited for them",
               "end": "not arrived before the end"}
        actions: List[Any] = [Print(f"! speaker's audio chunk(s) {gap.first}..{gap.last} skipped: "
                                    f"{why.get(gap.reason, gap.reason)}")
                              for gap in result.gaps]
        return actions + [WriteAudio(data) for data in result.deliver]
