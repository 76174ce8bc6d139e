"""The capacity model's measurements and verdict (tools/capacity.py, docs/scaling.md).

The model multiplies what tools/scaling/measure.py counts on the real handlers; these
tests hold those counts to the per-event budgets of test_call_budgets.py, check that
the 10,000 x 100 profile needs no quota raised beyond the ones docs/scaling.md names,
and run a small version of `make capacity-simulate` against the moto server.
"""

import math
from pathlib import Path

import pytest

from tools.scaling import model, simulate
from tools.scaling.measure import LISTING, SWEEP_SESSION, measure
from tools.scaling.profile import Profile

N, LANGUAGES = 100, 5
DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
# What the default profile needs AWS (or our own Terraform) to raise; docs/scaling.md
# names each. Adjustable, every one: AWS raises them on request.
RAISED_ON_REQUEST = {"lambda_concurrency", "lambda_sync_rate", "apigw_account_rps", "apigw_route_rps",
                     "dynamodb_table_rru", "dynamodb_table_wru"}


@pytest.fixture(scope="module")
def measured():
    return measure(listeners=N, languages=LANGUAGES)


def dynamodb(event):
    return sum(n for name in event.calls.values() for ops in name.values()
               for op, n in ops.items() if op.startswith("dynamodb."))


def posts(event):
    return event.count("apigatewaymanagementapi.PostToConnection")


class TestMeasuredCallsAreTheBudgets:
    """The budgets of tests/functional/test_call_budgets.py, on the model's own numbers."""

    def test_join_heartbeat_and_leave(self, measured):
        """Join: BatchGetItem, TransactWriteItems, Invoke and the welcome, plus the
        presence post; heartbeat 2; leave: a read, a transaction, the presence post."""
        join = measured["join"]
        assert join.total_calls == 5 and dynamodb(join) == 2 and posts(join) == 2
        assert join.count("lambda.Invoke") == 1
        assert measured["heartbeat (listener)"].total_calls == 2
        leave = measured["listener leave"]
        assert dynamodb(leave) == 2 and posts(leave) == 1 and leave.total_calls == 3

    def test_speaker_leave(self, measured):
        """At most 2N + ceil(N/25) + 6 calls for the speaker's $disconnect (posts only
        to listeners), then one read per listener's own $disconnect."""
        leave = measured["speaker leave"]
        listeners_own = leave.invocations["websocket_disconnect"] - 1
        assert listeners_own == N
        assert leave.total_calls - listeners_own <= 2 * N + math.ceil(N / 25) + 6
        assert posts(leave) == N

    def test_publish_control_and_sweep(self, measured):
        """A publish to one language's N/L listeners: N/L + 1 once the listing stands,
        one Query more when read; a control N + 3; an idle session costs the sweep one
        query."""
        assert measured["translation"].total_calls == N // LANGUAGES + 1
        assert measured[LISTING].calls == {"publish": {"main": {"dynamodb.Query": 1}, "pool": {}}}
        control = measured["control"]
        assert control.total_calls == N + 3 and posts(control) == N + 1
        assert measured[SWEEP_SESSION].total_calls == 1
        assert measured[SWEEP_SESSION].count("dynamodb.Query") == 1


class TestDefaultProfile:
    def test_a_million_listeners_need_only_quotas_aws_raises(self, measured):
        """10,000 sessions x 100 listeners: nothing AWS cannot raise is exceeded, and
        every quota that must be raised is one docs/scaling.md names."""
        result = model.run(Profile(), measured)
        exceeded = result.exceeded()
        assert not [q for q in exceeded if q.quota.adjustable == "no"]
        assert {q.key for q in exceeded} <= RAISED_ON_REQUEST
        doc = DOC.read_text()
        for q in exceeded:
            assert q.quota.name.split(" (")[0] in doc, q.quota.name

    def test_no_partition_is_near_its_limit(self, measured):
        """The hottest key of any table or index, the old status index aside, takes a
        few percent of a partition at most; the old one would take more than all."""
        result = model.run(Profile(), measured)
        keys = {(k["index"], k["class"]): k["use"] for k in result.hot_keys}
        old = keys.pop(("status-expiresAt-index (before)", "status"))
        assert max(keys.values()) < 0.05 < 1 < old

    def test_the_sweep_fits_its_period(self, measured):
        """At 10,000 sessions a shard's run ends well inside the minute."""
        sweep = model.run(Profile(), measured).sweep
        assert sweep["calls_per_session"] == 1
        assert sweep["shard_run_seconds"] < 45


def test_the_simulation_sweeps_each_session_with_one_call(moto_server):
    """A small `make capacity-simulate`: the real sweep over 60 sessions in the moto
    server costs one query per session plus a listing and an invocation per shard;
    a fan-out costs N + 2 calls reading the listing and N + 1 reusing it."""
    numbers = simulate.run(sessions=60, listeners=2, fanout=30, shards=4, post_ms=1.0,
                           endpoint=moto_server)
    assert numbers["sweep_calls"] == 60 + 2 * 4
    assert numbers["sweep_calls_per_session"] == 1
    assert numbers["fanout_listing_read_calls"] == 32
    assert numbers["fanout_listing_reused_calls"] == 31
