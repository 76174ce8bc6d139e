"""EventBridge schedule expressions: ``rate(...)`` and a subset of ``cron(...)``.

Supported, per EventBridge's "Schedule expressions for rules":

- ``rate(value unit)`` with unit ``minute(s)``, ``hour(s)``, ``day(s)``.
- ``cron(minutes hours day-of-month month day-of-week year)``, UTC, with
  ``*``, ``?``, numbers, ranges ``a-b``, lists ``a,b`` and steps ``*/n``,
  ``a/n``, ``a-b/n``; month and weekday names (``JAN``, ``MON``); weekdays
  1-7 are SUN-SAT. ``L``, ``W`` and ``#`` are not supported (rejected).
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Optional, Set

import attrs

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


class ScheduleError(ValueError):
    """The expression is not one we can run."""


def _field(text: str, low: int, high: int, names=None) -> Optional[Set[int]]:
    """Values a cron field allows; None for ``*``/``?`` (anything)."""
    if text in ("*", "?"):
        return None
    values: Set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, raw_step = part.split("/", 1)
            step = int(raw_step)
            if step < 1:
                raise ScheduleError(f"bad step in {text!r}")
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 or "/" in text else start
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ScheduleError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, names) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    if not text.isdigit():
        raise ScheduleError(f"unsupported cron value {text!r}")
    return int(text)


@attrs.frozen
class Schedule:
    """A parsed expression; :meth:`next_after` gives the next run (epoch seconds)."""

    expression: str
    period: Optional[float] = None  # rate(...)
    minutes: Optional[frozenset] = None
    hours: Optional[frozenset] = None
    days: Optional[frozenset] = None
    months: Optional[frozenset] = None
    weekdays: Optional[frozenset] = None
    years: Optional[frozenset] = None

    @classmethod
    def parse(cls, expression: str) -> "Schedule":
        text = expression.strip()
        rate = _RATE.match(text)
        if rate:
            value, unit = int(rate.group(1)), rate.group(2).rstrip("s")
            if value < 1:
                raise ScheduleError(f"{expression!r}: rate must be positive")
            return cls(expression, period=float(value * _UNITS[unit]))
        cron = _CRON.match(text)
        if not cron:
            raise ScheduleError(f"{expression!r} is neither rate(...) nor cron(...)")
        fields = cron.group(1).split()
        if len(fields) != 6:
            raise ScheduleError(f"{expression!r}: cron needs 6 fields")
        if any(c in "".join(fields) for c in "LW#"):
            raise ScheduleError(f"{expression!r}: L, W and # are not supported")

        def frozen(values):
            return None if values is None else frozenset(values)

        return cls(
            expression,
            minutes=frozen(_field(fields[0], 0, 59)),
            hours=frozen(_field(fields[1], 0, 23)),
            days=frozen(_field(fields[2], 1, 31)),
            months=frozen(_field(fields[3], 1, 12, _MONTHS)),
            weekdays=frozen(_field(fields[4], 1, 7, _DAYS)),
            years=frozen(_field(fields[5], 1970, 2199)),
        )

    def next_after(self, now: float) -> float:
        """The first run strictly after ``now``."""
        if self.period is not None:
            return now + self.period
        t = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(second=0, microsecond=0)
        t += dt.timedelta(minutes=1)
        limit = t + dt.timedelta(days=366 * 5)
        while t < limit:
            if not self._day_matches(t):
                t = (t + dt.timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if self.hours is not None and t.hour not in self.hours:
                t = (t + dt.timedelta(hours=1)).replace(minute=0)
                continue
            if self.minutes is not None and t.minute not in self.minutes:
                t += dt.timedelta(minutes=1)
                continue
            return t.timestamp()
        raise ScheduleError(f"{self.expression!r} never fires")

    def _day_matches(self, t: dt.datetime) -> bool:
        if self.years is not None and t.year not in self.years:
            return False
        if self.months is not None and t.month not in self.months:
            return False
        if self.days is not None and t.day not in self.days:
            return False
        weekday = (t.isoweekday() % 7) + 1  # SUN=1 ... SAT=7
        return self.weekdays is None or weekday in self.weekdays


def scheduled_event(*, rule_arn: str, region: str, account_id: str, now: float) -> dict:
    """The EventBridge "Scheduled Event" a scheduled function receives."""
    import uuid

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
