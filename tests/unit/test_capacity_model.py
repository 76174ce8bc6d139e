"""The capacity model's arithmetic (tools/scaling/model.py), on hand-made
measurements so each rule shows alone. Pure: the measured numbers are checked in
tests/functional/test_capacity.py."""

import math

import pytest

from tools.scaling import aws, model
from tools.scaling.measure import LISTING, SWEEP_SESSION, EventCost, Measurements, billed_messages
from tools.scaling.profile import Profile

EVENTS = ["speaker create", "speaker leave", "join", "listener leave", "listener refresh",
          "speaker refresh", "heartbeat (refresh notice)", "heartbeat (listener)",
          "heartbeat (speaker)", "translation", "control", "sweep (no sessions)", SWEEP_SESSION,
          LISTING, "audio chunk (kinesis)", "audio chunk (relay)"]


def event(name, function=None, main=None, pool=None, cpu=0.0, units=(), posts=(), received=()):
    calls = {function: {"main": dict(main or {}), "pool": dict(pool or {})}} if function else {}
    return EventCost(name=name, invocations={function: 1} if function else {},
                     cpu_ms={function: cpu} if function else {}, calls=calls,
                     units=[list(u) for u in units], posts=list(posts), received=list(received))


def measured(client_cpu_ms=0.0, **events):
    """Every event costs nothing but those given (by name, with _ for spaces)."""
    given = {e.name: e for e in events.values()}
    return Measurements(listeners=100, languages=5, client_cpu_ms=client_cpu_ms, sizes=[], config={},
                        events={name: given.get(name, event(name)) for name in EVENTS})


PROFILE = Profile(sessions=1000, listeners=100, languages=5, memory_mb=aws.FULL_VCPU_MB)
HEARTBEAT = {"dynamodb.UpdateItem": 1, "apigatewaymanagementapi.PostToConnection": 1}


def heartbeat(**kw):
    return event("heartbeat (listener)", "websocket_message", main=HEARTBEAT, **kw)


def listener_heartbeats(profile):
    return next(t.rate for t in model.terms(profile, {}) if t.event == "heartbeat (listener)")


class TestRates:
    def test_every_connection_heartbeats_once_an_interval(self):
        """S sessions of N listeners heartbeating every H seconds: S*N/H a second,
        less the heartbeats that carry a refresh notice."""
        rates = {t.event: t.rate for t in model.terms(PROFILE, {})}
        notices = rates["heartbeat (refresh notice)"]
        assert rates["heartbeat (listener)"] + rates["heartbeat (speaker)"] + notices == pytest.approx(
            1000 * 101 / 30)

    def test_a_listener_refreshes_once_per_refresh_period_it_lives_through(self):
        """A 120-minute session with refreshes at 100 minutes: one refresh per connection."""
        rates = {t.event: t.rate for t in model.terms(PROFILE, {})}
        assert rates["listener refresh"] == pytest.approx(1000 * 100 / 7200)
        short = Profile(sessions=1000, listeners=100, session_minutes=90)
        assert {t.event: t.rate for t in model.terms(short, {})}["listener refresh"] == 0


class TestLambda:
    def test_concurrency_is_rate_times_duration(self):
        """A heartbeat with 1 ms of CPU, an UpdateItem and a post lasts 1 + 6 + 15 ms."""
        result = model.run(PROFILE, measured(heartbeat=heartbeat(cpu=1.0)))
        function = result.functions["websocket_message"]
        assert function["duration_ms"] == pytest.approx(22.0)
        assert function["concurrency"] == pytest.approx(listener_heartbeats(PROFILE) * 0.022)

    def test_cpu_stretches_below_a_full_vcpu(self):
        """At 512 MB a function has 512/1769 of a vCPU: 1 ms of CPU takes 3.46 ms."""
        profile = Profile(sessions=1000, listeners=100, memory_mb=512)
        result = model.run(profile, measured(heartbeat=event("heartbeat (listener)", "websocket_message", cpu=1.0)))
        assert result.functions["websocket_message"]["duration_ms"] == pytest.approx(1769 / 512)

    def test_pooled_calls_overlap(self):
        """32 posts from a pool of 16 take two rounds of a post's latency."""
        fan = event("translation", "publish", pool={"apigatewaymanagementapi.PostToConnection": 32})
        result = model.run(PROFILE, measured(translation=fan))
        assert result.functions["publish"]["duration_ms"] == pytest.approx(2 * 15.0)

    def test_client_cpu_is_added_for_calls_the_harness_stands_in_for(self):
        """@connections posts cost botocore CPU the in-process harness does not spend."""
        result = model.run(PROFILE, measured(client_cpu_ms=0.5, heartbeat=heartbeat()))
        assert result.functions["websocket_message"]["duration_ms"] == pytest.approx(0.5 + 6 + 15)


class TestDynamoDB:
    def test_units_add_up_per_table_and_index(self):
        """Each heartbeat writes its row and its index entry: 1 WRU each per heartbeat."""
        units = [("Connections", "", "wru", "listener row", 1),
                 ("Connections", "members", "wru", "session", 1)]
        result = model.run(PROFILE, measured(heartbeat=heartbeat(units=units)))
        rate = listener_heartbeats(PROFILE)
        assert result.dynamodb[("Connections", "")]["wru"] == pytest.approx(rate)
        assert result.dynamodb[("Connections", "members")]["wru"] == pytest.approx(rate)

    def test_a_key_carries_only_its_share(self):
        """A listener's row takes its own heartbeats; a session's index partition all of
        its listeners'."""
        units = [("Connections", "", "wru", "listener row", 1),
                 ("Connections", "members", "wru", "session", 1)]
        result = model.run(PROFILE, measured(heartbeat=heartbeat(units=units)))
        keys = {(k["index"], k["class"]): k for k in result.hot_keys}
        rate = listener_heartbeats(PROFILE)
        assert keys[("", "listener row")]["wru"] == pytest.approx(rate / (1000 * 100))
        assert keys[("members", "session")]["wru"] == pytest.approx(rate / 1000)
        assert keys[("members", "session")]["use"] == pytest.approx(rate / 1000 / 1000)

    def test_a_shared_key_takes_every_sessions_writes(self):
        """The old status index: one key for all active sessions."""
        units = [("Sessions", "status-index", "wru", "status", 1)]
        result = model.run(PROFILE, measured(translation=event("translation", "publish", units=units)))
        status = next(k for k in result.hot_keys if k["class"] == "status")
        assert status["wru"] == pytest.approx(1000 * 5 * 0.5)


class TestListingReuse:
    def test_one_container_reads_once_per_roster_change(self):
        """A single container keeps the listing: almost every publish reuses it."""
        miss = model.listing_miss_rate(publishes_per_session=2.5, roster_changes_per_session=0.05,
                                       containers=1, total_publishes=2.5)
        assert miss < 0.05

    def test_many_containers_read_almost_every_time(self):
        """Invocations go to any of thousands of containers: the listing is rarely there."""
        miss = model.listing_miss_rate(publishes_per_session=2.5, roster_changes_per_session=0.05,
                                       containers=2000, total_publishes=25_000)
        assert miss > 0.95


class TestQuotasAndCost:
    def test_a_quota_is_reached_in_proportion_to_sessions(self):
        """Twice the limit at 100 sessions: reached at 50."""
        use = model.QuotaUse("x", aws.QUOTAS["lambda_concurrency"], 2000, sessions=100)
        assert use.use == 2 and use.breaks_at_sessions == 50

    def test_a_per_session_limit_does_not_move_with_sessions(self):
        """A session's own partition is as hot with ten sessions as with a million."""
        use = model.QuotaUse("x", aws.QUOTAS["dynamodb_partition"], 0.5, scales_with_sessions=False, sessions=100)
        assert use.breaks_at_sessions is None

    def test_messages_are_billed_per_started_32_kb(self):
        """A 32 KB message is one message, 32 KB + 1 byte two."""
        assert billed_messages([32 * 1024, 32 * 1024 + 1]) == 3

    def test_message_cost_is_billed_messages_times_the_price(self):
        """Each heartbeat is a message in and an acknowledgement out."""
        beat = heartbeat(posts=[100], received=[20])
        result = model.run(PROFILE, measured(heartbeat=beat))
        expected = 2 * listener_heartbeats(PROFILE) * 3600 * aws.PRICES["apigw_message"].value
        assert result.costs["API Gateway messages"] == pytest.approx(expected)
        assert result.cost_per_listener_hour == pytest.approx(result.cost_per_hour / 100_000)

    def test_the_first_quota_to_break_is_the_one_reached_at_fewest_sessions(self):
        """Heartbeats alone: the account's 10,000 requests/s (messages and their
        acknowledgements) before the stage's route throttle at the same 10,000/s
        (messages only)."""
        result = model.run(PROFILE, measured(heartbeat=heartbeat(posts=[100], received=[20])))
        first = result.first_to_break()
        assert first.key == "apigw_account_rps"
        assert math.isclose(first.breaks_at_sessions, 10_000 * 1000 / result.apigw["account_rps"])
