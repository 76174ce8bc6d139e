"""EventBridge ``rate(...)`` schedules, and the event a scheduled function receives.

Only ``rate(value unit)`` with unit ``minute(s)``, ``hour(s)`` or ``day(s)`` is
run (EventBridge, "Schedule expressions for rules"): the app declares
``rate(1 minute)`` and nothing else. A ``cron(...)`` expression is refused with
:class:`ScheduleError`; :class:`~local_stack.lambda_runtime.LambdaApp` then
leaves that function unscheduled, with a warning.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid

import attrs

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """The expression is not one we can run."""


@attrs.frozen
class Schedule:
    """A parsed ``rate(...)``; :meth:`next_after` gives the next run (epoch seconds)."""

    expression: str
    period: float

    @classmethod
    def parse(cls, expression: str) -> "Schedule":
        rate = _RATE.match(expression.strip())
        if not rate:
            raise ScheduleError(f"{expression!r}: only rate(N minutes|hours|days) is emulated locally")
        value, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if value < 1:
            raise ScheduleError(f"{expression!r}: rate must be positive")
        return cls(expression, period=float(value * _UNITS[unit]))

    def next_after(self, now: float) -> float:
        """The first run strictly after ``now``."""
        return now + self.period


def scheduled_event(*, rule_arn: str, region: str, account_id: str, now: float) -> dict:
    """The EventBridge "Scheduled Event" a scheduled function receives."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
