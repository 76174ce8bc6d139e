"""The app's metrics, locally: what CloudWatch would make of the EMF lines the
functions print.

In Lambda, a function's stdout goes to CloudWatch Logs, which turns every
Embedded Metric Format line into metrics. Here the functions run in this
process: :class:`StdoutTap` stands in for ``sys.stdout``, hands each EMF line to
the :class:`Collector` and passes every other line (the app's JSON log lines)
to the stack's log (stderr). The collector keeps totals since the start, per
metric and dimensions, which ``GET /_local/metrics`` serves as JSON, and makes
``make run``'s one-line summary each minute. Pure but for the stream it writes.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Dict, Optional, TextIO, Tuple

from chalicelib.observability.metrics import CATALOGUE, is_emf, metric_values

#: Metrics that report how many there are now (one value per sweep_shard run, by
#: shard), not how many happened: the current value is the sum of each shard's last.
GAUGES = ("ActiveSessions", "ConnectedListeners")
REFUSALS = ("ConnectRefusals", "MessageRefusals")
#: What clients did: a period with any of it gets a summary line even if nothing is
#: connected at its end (the sweep's own counters, every few seconds, do not).
ACTIVITY = REFUSALS + ("MessagesReceived", "ConnectionsAdmitted")

Key = Tuple[str, Tuple[Tuple[str, str], ...]]


class Collector:
    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._totals: Counter = Counter()
        self._samples: Dict[Key, list] = {}  # millisecond metrics: count, sum, max
        self._gauges: Dict[str, Dict[str, float]] = {name: {} for name in GAUGES}
        self._since_summary: Counter = Counter()
        # (namespace, name, dimensions with Stage) -> values seen: what CloudWatch
        # would hold as separate metrics (what an alarm can watch).
        self._series: Counter = Counter()
        self.lines = 0
        self.started = clock()

    def add(self, document: dict) -> None:
        """One EMF object, as a function printed it."""
        shard = str(document.get("shard", "-"))
        with self._lock:
            self.lines += 1
            namespaces = {m["Name"]: d.get("Namespace") for d in document["_aws"]["CloudWatchMetrics"]
                          for m in d.get("Metrics") or []}
            for name, dimensions, value in metric_values(document):
                self._series[(namespaces.get(name), name, tuple(sorted(dimensions.items())))] += 1
                extra = tuple(sorted((k, v) for k, v in dimensions.items() if k != "Stage"))
                key: Key = (name, extra)
                if name in GAUGES:
                    self._gauges[name][shard] = value
                elif name in CATALOGUE and CATALOGUE[name].unit == "Milliseconds":
                    count, total, largest = self._samples.get(key, (0, 0.0, 0.0))
                    self._samples[key] = [count + 1, total + value, max(largest, value)]
                else:
                    self._totals[key] += value
                    self._since_summary[key] += value

    def snapshot(self) -> dict:
        """The current values, for ``GET /_local/metrics``."""
        with self._lock:
            counts: Dict[str, dict] = {}
            for (name, extra), value in sorted(self._totals.items()):
                entry = counts.setdefault(name, {"total": 0})
                entry["total"] += value
                if extra:
                    entry.setdefault("by", {})[",".join(f"{k}={v}" for k, v in extra)] = value
            timings = {
                name + ("" if not extra else "[" + ",".join(f"{k}={v}" for k, v in extra) + "]"): {
                    "count": count, "averageMs": round(total / count, 3), "maxMs": round(largest, 3)}
                for (name, extra), (count, total, largest) in sorted(self._samples.items())
            }
            gauges = {name: sum(by_shard.values()) for name, by_shard in self._gauges.items()}
            series = [{"namespace": namespace, "metric": name, "dimensions": dict(dimensions),
                       "values": values}
                      for (namespace, name, dimensions), values in sorted(self._series.items(), key=str)]
            return {"namespace": "Broadcast", "since": self.started, "emfLines": self.lines,
                    "now": gauges, "counts": counts, "timings": timings, "series": series}

    def summary(self, connections: int, period: float = 60) -> Optional[str]:
        """One line: what is connected now, what happened in the last ``period``
        (each call closes a window, printed or not); None when nothing is connected
        and nothing happened."""
        with self._lock:
            recent, self._since_summary = self._since_summary, Counter()
            if not connections and not any(v for (name, _), v in recent.items() if name in ACTIVITY):
                return None
            sessions = int(sum(self._gauges["ActiveSessions"].values()))
            listeners = int(sum(self._gauges["ConnectedListeners"].values()))
        messages = int(sum(v for (name, _), v in recent.items() if name == "MessagesReceived"))
        by_code: Counter = Counter()
        for (name, extra), value in recent.items():
            if name in REFUSALS:
                by_code[dict(extra).get("Code", "?")] += int(value)
        refusals = sum(by_code.values())
        detail = (" (" + ", ".join(f"{code} {n}" for code, n in by_code.most_common()) + ")") if refusals else ""
        return (f"summary: {_n(sessions, 'session')}, {_n(listeners, 'listener')}, "
                f"{_n(connections, 'connection')} open; "
                f"{'last minute' if period == 60 else f'last {period:g} s'}: "
                f"{_n(messages, 'message')}, {_n(refusals, 'refusal')}{detail}")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


class StdoutTap:
    """A ``sys.stdout`` for the functions: EMF lines to the collector, anything
    else to ``passthrough``. Lines are assembled per thread (concurrent handlers
    never splice each other's halves)."""

    def __init__(self, collector: Collector, passthrough: TextIO) -> None:
        self._collector = collector
        self._passthrough = passthrough
        self._pending = threading.local()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        buffer = getattr(self._pending, "text", "") + text
        *lines, rest = buffer.split("\n")
        self._pending.text = rest
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        document: Optional[dict] = None
        if line.startswith("{") and '"_aws"' in line:
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            document = parsed if is_emf(parsed) else None
        if document is not None:
            self._collector.add(document)
            return
        with self._lock:
            self._passthrough.write(line + "\n")
            self._passthrough.flush()

    def flush(self) -> None:
        # A line without its newline yet stays pending: flushing it now would split it.
        with self._lock:
            self._passthrough.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"
