"""Schedule expressions: rate(...) runs; anything else is refused."""
import datetime as dt

import pytest

from local_stack.schedule import Schedule, ScheduleError, scheduled_event


def ts(*args):
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


class TestRate:
    @pytest.mark.parametrize("expression,period", [
        ("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400),
    ])
    def test_rate_periods(self, expression, period):
        """rate(N unit) runs every N units."""
        assert Schedule.parse(expression).next_after(1000.0) == 1000.0 + period

    def test_rate_zero_is_rejected(self):
        """rate(0 minutes) is invalid."""
        with pytest.raises(ScheduleError):
            Schedule.parse("rate(0 minutes)")


class TestCron:
    @pytest.mark.parametrize("expression", [
        "cron(0 10 * * ? *)", "cron(* * * * ? *)", "every minute",
    ])
    def test_anything_but_rate_is_refused_naming_what_is_emulated(self, expression):
        """cron(...) is not emulated (the app only declares a rate): the error says so."""
        with pytest.raises(ScheduleError, match=r"only rate\(N minutes\|hours\|days\) is emulated"):
            Schedule.parse(expression)


def test_scheduled_event_shape():
    """Scheduled functions get an EventBridge 'Scheduled Event'."""
    event = scheduled_event(rule_arn="arn:aws:events:us-east-1:1:rule/r", region="us-east-1",
                            account_id="1", now=ts(2026, 1, 1))
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "2026-01-01T00:00:00Z" and event["resources"] == ["arn:aws:events:us-east-1:1:rule/r"]
