"""Schedule expressions: rate(...) and the cron subset."""
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
    def test_every_minute(self):
        """cron(* * * * ? *) fires at the next whole minute."""
        assert Schedule.parse("cron(* * * * ? *)").next_after(ts(2026, 1, 1, 10, 0, 30)) == ts(2026, 1, 1, 10, 1)

    def test_fixed_time_daily(self):
        """cron(15 10 * * ? *) fires at 10:15 UTC, tomorrow once passed."""
        schedule = Schedule.parse("cron(15 10 * * ? *)")
        assert schedule.next_after(ts(2026, 1, 1, 9, 0)) == ts(2026, 1, 1, 10, 15)
        assert schedule.next_after(ts(2026, 1, 1, 10, 15)) == ts(2026, 1, 2, 10, 15)

    def test_steps_ranges_and_weekday_names(self):
        """*/15 minutes on weekdays MON-FRI (2026-01-03 is a Saturday)."""
        schedule = Schedule.parse("cron(0/15 8-9 ? * MON-FRI *)")
        assert schedule.next_after(ts(2026, 1, 2, 9, 50)) == ts(2026, 1, 5, 8, 0)
        assert schedule.next_after(ts(2026, 1, 5, 8, 0)) == ts(2026, 1, 5, 8, 15)

    @pytest.mark.parametrize("expression", [
        "cron(0 10 L * ? *)", "cron(0 10 * * 6#3 *)", "cron(0 10 * *)", "every minute", "cron(61 * * * ? *)",
    ])
    def test_unsupported_expressions_are_rejected(self, expression):
        """L, W, #, wrong field counts and out-of-range values are refused."""
        with pytest.raises(ScheduleError):
            Schedule.parse(expression)


def test_scheduled_event_shape():
    """Scheduled functions get an EventBridge 'Scheduled Event'."""
    event = scheduled_event(rule_arn="arn:aws:events:us-east-1:1:rule/r", region="us-east-1",
                            account_id="1", now=ts(2026, 1, 1))
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "2026-01-01T00:00:00Z" and event["resources"] == ["arn:aws:events:us-east-1:1:rule/r"]
