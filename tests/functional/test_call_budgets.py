"""AWS calls per event, counted on the real handlers (tests/support/calls.py), held
to their budgets (docs/scaling.md): a change that adds a call fails here.

Calls are DynamoDB, Lambda and @connections requests alike: each is a request that
costs money and time, and each counts against a quota.
"""

import math

import pytest

from tests.functional.conftest import LANG_QUERY, join
from tests.support.calls import counting


@pytest.fixture
def calls(gateway):
    return counting(gateway)


def dynamodb(snapshot):
    return sum(n for name, n in snapshot.items() if name.startswith("dynamodb."))


def posts(snapshot):
    return snapshot.get("apigatewaymanagementapi.PostToConnection", 0)


class TestBudgets:
    @pytest.fixture
    def config_env(self, config_env):
        config_env.update(MAX_LISTENERS_PER_SESSION="40")
        return config_env

    def test_a_join_costs_four_calls_and_one_presence_post(self, gateway, speaker, calls):
        """A listener join: one read (session and rate counter together), one
        transaction, the welcome's invocation and post; plus the one post that tells
        the speaker (listenerPresence)."""
        speaker_cid, session_id = speaker
        calls.reset()
        status, _, cid = join(gateway, session_id)
        assert status == 200
        snapshot = calls.snapshot()
        assert snapshot == {
            "dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 1, "lambda.Invoke": 1,
            "apigatewaymanagementapi.PostToConnection": 2,
        }, snapshot
        assert gateway.received(speaker_cid, "listenerPresence")[-1]["joined"] == "es"

    def test_a_heartbeat_costs_two(self, gateway, speaker, calls):
        """touch and the acknowledgement."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        calls.reset()
        gateway.send(cid, {"action": "heartbeat"})
        assert calls.total() == 2, calls.snapshot()

    def test_a_leave_costs_two_and_one_presence_post(self, gateway, speaker, calls):
        """The row read and the leave transaction; plus the post telling the speaker."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id, "fr")
        calls.reset()
        gateway.close(cid)
        snapshot = calls.snapshot()
        assert dynamodb(snapshot) == 2 and posts(snapshot) == 1, snapshot
        assert gateway.received(speaker_cid, "listenerPresence")[-1]["left"] == "fr"

    @pytest.mark.parametrize("listeners", [3, 30])
    def test_a_speaker_leave_costs_at_most_2n_plus_batches_plus_6(self, gateway, issuer, calls, listeners):
        """The speaker's $disconnect with N listeners: at most 2N + ceil(N/25) + 6
        calls (a post and a close per listener, rows deleted 25 to a call, nothing
        posted to the speaker's own closed socket). Each listener's own $disconnect
        that follows finds nothing left and costs one read."""
        status, _, speaker_cid = gateway.connect({**LANG_QUERY, "token": issuer.token("alice")})
        session_id = gateway.last(speaker_cid)["sessionId"]
        cids = [join(gateway, session_id, ("es", "fr")[i % 2])[2] for i in range(listeners)]
        calls.reset()
        gateway.open.discard(speaker_cid)
        gateway.disconnect_event(speaker_cid, 1001, "Going away")  # the speaker's $disconnect alone
        budget = 2 * listeners + math.ceil(listeners / 25) + 6
        assert calls.total() <= budget, (calls.total(), budget, calls.snapshot())
        assert posts(calls.snapshot()) == listeners  # none to the speaker's closed socket
        calls.reset()
        gateway.pump()  # the listeners' $disconnects
        assert calls.snapshot() == {"dynamodb.GetItem": listeners}
        assert all(gateway.received(cid, "sessionEnded") for cid in cids)

    def test_a_publish_costs_n_plus_one_once_the_listing_stands(self, gateway, speaker, calls, clock_offset):
        """publish to N listeners: N posts and one call that takes the sequence
        numbers; the listeners' listing is read again only after the roster changed."""
        from tests.support.harness import Context

        _, session_id = speaker
        for language in ("es", "es", "fr", "de"):
            join(gateway, session_id, language)
        clock_offset(2)  # the members index has settled on the last join
        event = {"sessionId": session_id, "type": "translation", "data": {"text": "hola"}}
        calls.reset()
        first = gateway.app.publish(event, Context())
        assert first["delivered"] == 4 and calls.total() == 4 + 2, calls.snapshot()
        calls.reset()
        second = gateway.app.publish(event, Context())
        assert second["delivered"] == 4 and calls.snapshot() == {
            "dynamodb.UpdateItem": 1, "apigatewaymanagementapi.PostToConnection": 4}
        join(gateway, session_id, "fr")  # the roster moves: the listing is read again
        calls.reset()
        third = gateway.app.publish(event, Context())
        assert third["delivered"] == 5 and calls.snapshot()["dynamodb.Query"] == 1

    def test_a_listing_read_before_the_index_settled_is_not_kept(self, gateway, speaker, calls):
        """Right after a join the members index may not show it yet (it is eventually
        consistent): a publish then reads the listing, and the next one reads it again."""
        from tests.support.harness import Context

        _, session_id = speaker
        join(gateway, session_id)
        event = {"sessionId": session_id, "type": "translation", "data": {"text": "hola"}}
        for _ in range(2):
            calls.reset()
            gateway.app.publish(event, Context())
            assert calls.snapshot()["dynamodb.Query"] == 1

    def test_a_control_costs_n_plus_four(self, gateway, speaker, calls, clock_offset):
        """pauseBroadcast with N listeners: touch, one write for the state and the
        sequence numbers, N posts and the acknowledgement (and the listing, once)."""
        speaker_cid, session_id = speaker
        for language in ("es", "fr"):
            join(gateway, session_id, language)
        clock_offset(2)
        gateway.send(speaker_cid, {"action": "muteBroadcast"})  # reads the listing
        calls.reset()
        gateway.send(speaker_cid, {"action": "pauseBroadcast"})
        assert calls.snapshot() == {"dynamodb.UpdateItem": 2,
                                    "apigatewaymanagementapi.PostToConnection": 3}

    def test_audio_chunks_cost_no_read_or_write_while_recent(self, gateway, speaker, calls, clock_offset):
        """A speaker's chunks: the first records its activity and reads the session
        (2 calls); the next ones within a second cost nothing of DynamoDB; the session
        is read again after a second, the activity recorded again after ten."""
        speaker_cid, _ = speaker
        chunk = {"action": "sendAudio", "audioData": "AAAA", "format": "pcm16/16000"}
        counts = []
        for step in (0, 0.2, 0.2, 0.2, 1.0, 9.0):
            clock_offset(step)
            calls.reset()
            gateway.send(speaker_cid, chunk)
            counts.append(dynamodb(calls.snapshot()))
        assert counts == [2, 0, 0, 0, 1, 2]

    def test_an_idle_session_costs_the_sweep_one_call(self, gateway, issuer, calls, config):
        """The sweep of S idle sessions: one query per session, plus one listing query
        per shard and one invocation per shard, whatever S."""
        sessions = []
        for i in range(5):
            status, _, cid = gateway.connect({**LANG_QUERY, "token": issuer.token(f"user{i}")})
            sessions.append(gateway.last(cid)["sessionId"])
            join(gateway, sessions[-1])
        calls.reset()
        report = gateway.sweep()
        shards = config.sweep_shards
        assert report["sessions"] == 5 and report["closed"] == report["ended"] == 0
        assert calls.snapshot() == {"dynamodb.Query": 5 + shards, "lambda.Invoke": shards}


@pytest.fixture
def clock_offset(gateway):
    return gateway.runtime.clock.advance
