"""Metrics and logs of the real handlers (issue 11): what each event records, that
routine refusals count as refusals and never as faults, that the sweep reports
itself, and that log lines are JSON with hashed connection ids. Metrics are read
from the EMF objects the functions emit (the harness keeps them: no stdout)."""

import io
import json
import logging

import pytest

from chalicelib.auth.tokens import JwksCache, TokenVerifier
from chalicelib.observability import logs
from tests.functional.conftest import LANG_QUERY, join
from tests.support.tokens import AUDIENCE, ISSUER


class TestConnectMetrics:
    def test_a_join_is_admitted_joined_and_welcomed(self, gateway, speaker):
        """A listener join: ConnectionsAdmitted{joinSession}, ListenersJoined, a first
        message delivered with its latency; every object in namespace Broadcast, Stage=dev."""
        _, session_id = speaker
        join(gateway, session_id)
        assert gateway.metric("ConnectionsAdmitted", Intent="joinSession") == 1
        assert gateway.metric("ConnectionsAdmitted", Intent="createSession") == 1
        assert gateway.metric("SessionsCreated") == gateway.metric("ListenersJoined") == 1
        assert gateway.metric("WelcomeDelivered") == 2 and gateway.metric("WelcomeFailed") == 0
        assert 0 <= gateway.metric("WelcomeLatency") < 60_000
        for document in gateway.emf:
            assert document["Stage"] == "dev"
            assert {d["Namespace"] for d in document["_aws"]["CloudWatchMetrics"]} == {"Broadcast"}

    def test_refusals_count_by_code_and_are_no_faults(self, gateway, speaker, issuer):
        """A bad token (401), an unknown session (404), a full session (503) and a bad
        query (400) are refusals by code: no Faults, no Lambda error."""
        _, session_id = speaker
        gateway.record_lambda_errors = True
        assert gateway.connect({**LANG_QUERY, "token": "not-a-token"})[0] == 401
        assert join(gateway, "faithful-shepherd-427")[0] == 404
        assert gateway.connect({"action": "joinSession", "sessionId": session_id})[0] == 400
        assert gateway.metric("ConnectRefusals", Code="UNAUTHORIZED") == 1
        assert gateway.metric("ConnectRefusals", Code="SESSION_NOT_FOUND") == 1
        assert gateway.metric("ConnectRefusals", Code="MISSING_PARAMETER") == 1
        assert gateway.metric("Faults") == 0 and gateway.lambda_errors == []

    def test_in_band_refusals_count_alike(self, gateway):
        """A browser's refusal=message handshake succeeds, and is still a refusal by code."""
        status, _, cid = gateway.connect(
            {"action": "joinSession", "sessionId": "faithful-shepherd-427", "targetLanguage": "es",
             "refusal": "message"})
        assert status == 200 and gateway.last(cid)["code"] == "SESSION_NOT_FOUND"
        assert gateway.metric("ConnectRefusals", Code="SESSION_NOT_FOUND") == 1

    def test_a_rate_limit_says_which(self, gateway, issuer):
        """Sessions over the per-user limit: RateLimitRefusals{sessionsPerUser}."""
        limit = gateway.runtime.config.rate_limit_sessions_per_hour
        for _ in range(limit + 1):
            status, _, _ = gateway.connect({**LANG_QUERY, "token": issuer.token("bob")})
        assert status == 429
        assert gateway.metric("RateLimitRefusals", Limit="sessionsPerUser") == 1
        assert gateway.metric("ConnectRefusals", Code="RATE_LIMITED") == 1

    def test_jwks_unreachable_is_its_own_metric(self, gateway, issuer):
        """Keys that cannot be fetched: speakers get 503, JwksFetchFailures counts the
        fetch, and it is not counted as a fault of $connect (its own alarm says so)."""
        def unreachable(url):
            raise OSError("connection refused")

        gateway.runtime.__dict__["verifier"] = TokenVerifier(
            issuer=ISSUER, audience=AUDIENCE, token_use="id",
            jwks=JwksCache("http://127.0.0.1:9/jwks.json", 300, fetch=unreachable,
                           on_failure=lambda: gateway.runtime.metrics.add("JwksFetchFailures")))
        status, body, _ = gateway.connect({**LANG_QUERY, "token": issuer.token("alice")})
        assert status == 503 and body["code"] == "SERVICE_UNAVAILABLE"
        assert gateway.metric("JwksFetchFailures") == 1 and gateway.metric("Faults") == 0

    def test_a_failed_dispatch_is_a_fault(self, gateway, speaker):
        """The first message cannot be handed to Lambda: 503, and Faults{websocket_connect}."""
        _, session_id = speaker
        gateway.runtime.fail_dispatch = True
        assert join(gateway, session_id)[0] == 503
        assert gateway.metric("Faults", Function="websocket_connect") == 1


class TestMessageMetrics:
    def test_a_bug_in_a_handler_is_a_fault_answered(self, gateway, speaker):
        """An unexpected exception: the client gets INTERNAL_ERROR, Faults{websocket_message}
        counts it, Lambda sees no error."""
        speaker_cid, _ = speaker

        def broken(*args):
            raise KeyError("bug")

        gateway.runtime.router.actions["heartbeat"] = broken
        gateway.record_lambda_errors = True
        gateway.send(speaker_cid, {"action": "heartbeat"})
        assert gateway.last(speaker_cid)["code"] == "INTERNAL_ERROR"
        assert gateway.metric("Faults", Function="websocket_message") == 1
        assert gateway.metric("MessageRefusals", Code="INTERNAL_ERROR") == 1
        assert gateway.lambda_errors == []

    def test_an_uncaught_error_is_a_fault_too(self, gateway, speaker, dynamodb):
        """$disconnect with the table gone: the invocation fails (a Lambda error) and
        Faults{websocket_disconnect} counts it as well."""
        speaker_cid, _ = speaker
        dynamodb.delete_table(TableName="Connections")
        gateway.record_lambda_errors = True
        gateway.close(speaker_cid)
        # Lambda is told the type's name only; the app's own log line has the rest.
        assert [error.split(": ", 1)[1] for error in gateway.lambda_errors] == \
            ["InvocationFailed: ServiceUnavailable"]
        assert gateway.metric("Faults", Function="websocket_disconnect") == 1

    def test_a_client_mistake_is_no_fault(self, gateway, speaker):
        """An unknown action is a refusal by code only."""
        speaker_cid, _ = speaker
        gateway.send(speaker_cid, {"action": "dance"})
        assert gateway.metric("MessageRefusals", Code="UNKNOWN_ACTION") == 1
        assert gateway.metric("MessagesReceived") == 1 and gateway.metric("Faults") == 0

    def test_fanout_and_endings(self, gateway, speaker):
        """A control reaches two listeners (FanoutDelivered); a listener that vanished is
        FanoutGone, never FanoutFailed; ending the session counts its reason."""
        speaker_cid, session_id = speaker
        listeners = [join(gateway, session_id)[2] for _ in range(2)]
        gateway.runtime.clock.advance(30)  # past the window where a 410 may mean "connecting"
        gateway.vanish(listeners[0])
        gateway.send(speaker_cid, {"action": "pauseBroadcast"})
        assert gateway.metric("FanoutDelivered") == 1 and gateway.metric("FanoutGone") == 1
        assert gateway.metric("FanoutFailed") == 0 and gateway.metric("ListenersLeft") == 1
        gateway.send(speaker_cid, {"action": "endSession"})
        assert gateway.metric("SessionsEnded", Reason="speakerEnded") == 1


    def test_a_listener_closed_by_the_end_is_counted_out_once(self, gateway, speaker, monkeypatch):
        """endSession closes each listener, and API Gateway may run a listener's
        $disconnect before the release has deleted its row: ListenersLeft still
        counts each listener once, and the ended session's count is left alone."""
        speaker_cid, session_id = speaker
        listeners = [join(gateway, session_id)[2] for _ in range(2)]
        store = gateway.runtime.store
        batch_delete = store.delete_connections

        def disconnects_first(ids):
            while gateway.pending_disconnects:  # the race: $disconnect lands first
                gateway.disconnect_event(*gateway.pending_disconnects.pop(0))
            return batch_delete(ids)

        monkeypatch.setattr(store, "delete_connections", disconnects_first)
        gateway.send(speaker_cid, {"action": "endSession"})
        gateway.pump()
        assert gateway.metric("ListenersLeft") == 2
        assert all(store.get_connection(cid) is None for cid in listeners)
        assert store.get_session(session_id).listener_count == 2  # as it was when it ended


class TestSweepMetrics:
    def test_every_shard_run_reports_itself(self, gateway, speaker, config):
        """Each sweep_shard run: SweepShardRuns and SweepCompleted (it finished in
        time), how many sessions and listeners it saw, its duration."""
        _, session_id = speaker
        join(gateway, session_id)
        gateway.sweep()
        assert gateway.metric("SweepShardRuns") == config.sweep_shards
        assert gateway.metric("SweepCompleted") == config.sweep_shards
        assert gateway.metric("ActiveSessions") == 1 and gateway.metric("ConnectedListeners") == 1
        assert gateway.metric("SweepDuration") >= 0

    def test_forced_closes_by_reason(self, gateway, speaker, config):
        """A silent listener closed by the sweep: ForcedCloses{heartbeatTimeout}."""
        _, session_id = speaker
        join(gateway, session_id)
        gateway.runtime.clock.advance(config.heartbeat_timeout_seconds + 1)
        gateway.sweep()
        assert gateway.metric("ForcedCloses", Reason="heartbeatTimeout") >= 1
        assert gateway.metric("SweepActions", Reason="closed") >= 1


class TestHealth:
    def test_ok_when_every_table_answers(self, gateway):
        """GET /health: 200 with every table ok."""
        status, body = gateway.http("GET", "/health")
        assert status == 200
        assert body == {"status": "ok", "checks": {"sessions": "ok", "connections": "ok", "rateLimits": "ok"}}

    def test_503_names_the_table_that_does_not_answer(self, gateway, dynamodb):
        """A missing table: 503, that table unavailable, the others ok."""
        dynamodb.delete_table(TableName="RateLimits")
        status, body = gateway.http("GET", "/health")
        assert status == 503 and body["status"] == "unavailable"
        assert body["checks"] == {"sessions": "ok", "connections": "ok", "rateLimits": "unavailable"}
        assert gateway.metric("Faults", Function="api_handler") == 1

    def test_a_bug_in_the_route_is_a_fault(self, gateway, monkeypatch):
        """An uncaught error in GET /health: Chalice answers 500 itself (Lambda sees no
        error), and Faults{api_handler} still counts it, so its alarm can fire."""
        def broken():
            raise RuntimeError("a bug")

        monkeypatch.setattr(gateway.runtime.health, "check", broken)
        status, _ = gateway.http("GET", "/health")
        assert status == 500
        assert gateway.metric("Faults", Function="api_handler") == 1


class TestLogs:
    @pytest.fixture
    def lines(self, gateway):
        stream = io.StringIO()
        logs.install(level="DEBUG", privacy_key="test-key", stream=stream)
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
        logs.install(level="INFO", privacy_key="test-key")

    def test_one_json_object_per_line_with_the_invocation(self, gateway, lines):
        """A refused connect logs one JSON line: level, function, request id, cold start,
        route, the connection's keyed hash, never its raw id."""
        status, _, cid = join(gateway, "faithful-shepherd-427")
        (line,) = [line for line in lines() if line["message"].startswith("connect refused")]
        assert line["level"] == "INFO" and line["function"] == "websocket_connect"
        assert line["route"] == "$connect" and line["requestId"] and "coldStart" in line
        assert line["connection"] == logs.ref(cid) and line["status"] == 404
        assert cid not in json.dumps(lines())

    def test_a_failed_send_names_its_target_by_hash(self, gateway, speaker, lines):
        """A post that fails (not gone) is logged with the target's hash only."""
        from botocore.exceptions import ClientError

        speaker_cid, session_id = speaker
        _, _, listener = join(gateway, session_id)
        from tests.support.harness import FakeManagementClient

        original = FakeManagementClient.post_to_connection

        def throttled(self, ConnectionId, Data):
            if ConnectionId == listener:
                raise ClientError({"Error": {"Code": "LimitExceededException"},
                                   "ResponseMetadata": {"HTTPStatusCode": 429}}, "PostToConnection")
            return original(self, ConnectionId=ConnectionId, Data=Data)

        FakeManagementClient.post_to_connection = throttled
        try:
            gateway.send(speaker_cid, {"action": "pauseBroadcast"})
        finally:
            FakeManagementClient.post_to_connection = original
        assert gateway.metric("FanoutFailed") == 1
        (line,) = [line for line in lines() if line["message"].startswith("send failed")]
        assert line["target"] == logs.ref(listener) and line["level"] == "WARN"
        text = json.dumps(lines())
        assert listener not in text and speaker_cid not in text

    def test_the_app_logger_does_not_propagate(self, gateway):
        """The app's lines are written once, by its own handler (not again by the root's)."""
        assert logging.getLogger("chalicelib").propagate is False
