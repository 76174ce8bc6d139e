"""$connect: every row of the contract's intent table and every refusal status."""

import time

import pytest

from chalicelib.wire.ids import is_valid_session_id
from tests.functional.conftest import LANG_QUERY, join


class TestCreate:
    def test_speaker_gets_session_created_after_connect(self, gateway, issuer, store):
        """createSession records the session and the speaker receives sessionCreated first."""
        status, body, cid = gateway.connect({**LANG_QUERY, "qualityTier": "premium", "token": issuer.token("alice")})
        assert status == 200
        [created] = gateway.received(cid)
        assert created["type"] == "sessionCreated"
        assert is_valid_session_id(created["sessionId"])
        assert created["sourceLanguage"] == "en" and created["qualityTier"] == "premium"
        assert created["connectionId"] == cid
        assert created["expiresAt"] == pytest.approx(time.time() + 2 * 3600, abs=5)
        assert isinstance(created["timestamp"], int)
        session = store.get_session(created["sessionId"])
        assert session.status == "active" and session.listener_count == 0
        assert session.speaker_user_id == "alice" and session.speaker_connection_id == cid

    def test_quality_tier_defaults_to_standard(self, gateway, speaker):
        """Without qualityTier the session is standard."""
        cid, _ = speaker
        assert gateway.last(cid)["qualityTier"] == "standard"

    def test_taken_ids_are_skipped(self, gateway, issuer, store, monkeypatch):
        """When a candidate id is taken, the next candidate is claimed, not overwritten."""
        status, _, first = gateway.connect({**LANG_QUERY, "token": issuer.token("alice")})
        taken = gateway.last(first)["sessionId"]
        import chalicelib.admission as admission

        monkeypatch.setattr(admission, "candidate_ids", lambda rng=None: iter([taken, "gracious-temple-777"]))
        status, _, second = gateway.connect({**LANG_QUERY, "token": issuer.token("bob")})
        assert status == 200
        assert gateway.last(second)["sessionId"] == "gracious-temple-777"
        assert store.get_session(taken).speaker_user_id == "alice"

    def test_exhausted_ids_give_503_and_leave_nothing(self, gateway, issuer, store, monkeypatch):
        """Ten taken candidates: 503, and no connection row is left behind."""
        status, _, first = gateway.connect({**LANG_QUERY, "token": issuer.token("alice")})
        taken = gateway.last(first)["sessionId"]
        import chalicelib.admission as admission

        monkeypatch.setattr(admission, "candidate_ids", lambda rng=None: iter([taken] * 10))
        status, body, cid = gateway.connect({**LANG_QUERY, "token": issuer.token("bob")})
        assert status == 503 and body["code"] == "SERVICE_UNAVAILABLE"
        assert store.get_connection(cid) is None


class TestJoin:
    def test_listener_gets_session_joined(self, gateway, speaker, store):
        """joinSession counts the listener and sends sessionJoined first."""
        _, session_id = speaker
        status, _, cid = join(gateway, session_id, "es")
        assert status == 200
        [joined] = gateway.received(cid)
        assert joined == {
            "type": "sessionJoined",
            "timestamp": joined["timestamp"],
            "sessionId": session_id,
            "targetLanguage": "es",
            "sourceLanguage": "en",
            "connectionId": cid,
            "broadcastState": {
                "isPaused": False, "isMuted": False, "volume": 1.0,
                "lastStateChange": joined["broadcastState"]["lastStateChange"],
            },
            "sequenceNumber": 0,
        }
        assert store.get_session(session_id).listener_count == 1
        assert store.get_connection(cid).target_language == "es"

    def test_action_may_be_omitted_and_tokens_are_ignored(self, gateway, speaker):
        """sessionId + targetLanguage alone join; a stray token changes nothing."""
        _, session_id = speaker
        status, _, cid = gateway.connect({"sessionId": session_id, "targetLanguage": "fr", "token": "garbage"})
        assert status == 200 and gateway.last(cid)["type"] == "sessionJoined"

    def test_two_languages(self, gateway, speaker, store):
        """Listeners in two languages are both counted and indexed by language."""
        _, session_id = speaker
        join(gateway, session_id, "es")
        join(gateway, session_id, "fr")
        assert store.get_session(session_id).listener_count == 2
        assert [c.target_language for c in store.listeners(session_id, "fr")] == ["fr"]


class TestRefusals:
    @pytest.mark.parametrize(
        "query,code",
        [
            ({}, "MISSING_PARAMETER"),
            ({"action": "fly"}, "INVALID_ACTION"),
            ({"action": "joinSession", "sessionId": "not-an-id", "targetLanguage": "es"}, "INVALID_SESSION_ID"),
            ({"action": "joinSession", "sessionId": "faithful-shepherd-427", "targetLanguage": "spanish"}, "INVALID_LANGUAGE"),
            ({"action": "joinSession", "sessionId": "faithful-shepherd-427", "targetLanguage": "ja"}, "UNSUPPORTED_LANGUAGE"),
        ],
    )
    def test_bad_parameters_are_400(self, gateway, query, code, store):
        """Malformed queries are refused in the handshake with 400 and a code."""
        status, body, cid = gateway.connect(query)
        assert (status, body["code"]) == (400, code)
        assert body["message"]
        assert store.get_connection(cid) is None

    def test_bad_quality_tier_is_400(self, gateway, issuer):
        """An unknown qualityTier is INVALID_QUALITY_TIER."""
        status, body, _ = gateway.connect({**LANG_QUERY, "qualityTier": "gold", "token": issuer.token()})
        assert (status, body["code"]) == (400, "INVALID_QUALITY_TIER")

    @pytest.mark.parametrize("token_kind", ["missing", "expired", "garbage"])
    def test_speaker_without_valid_token_is_401(self, gateway, issuer, token_kind):
        """createSession needs a valid token: otherwise 401 from the authorizer."""
        query = dict(LANG_QUERY)
        if token_kind == "expired":
            query["token"] = issuer.token(exp=int(time.time()) - 100)
        elif token_kind == "garbage":
            query["token"] = "abc.def.ghi"
        status, _, _ = gateway.connect(query)
        assert status == 401

    def test_unknown_session_is_404(self, gateway):
        """Joining an id nobody created is SESSION_NOT_FOUND."""
        status, body, _ = join(gateway, "faithful-shepherd-427")
        assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")

    def test_full_session_is_503_and_count_unchanged(self, gateway, speaker, store, config):
        """Past MAX_LISTENERS_PER_SESSION joins are SESSION_FULL and leave nothing."""
        _, session_id = speaker
        for _ in range(config.max_listeners_per_session):
            assert join(gateway, session_id)[0] == 200
        status, body, cid = join(gateway, session_id)
        assert (status, body["code"]) == (503, "SESSION_FULL")
        assert store.get_connection(cid) is None
        assert store.get_session(session_id).listener_count == config.max_listeners_per_session

    def test_speaker_refresh_by_another_user_is_403(self, gateway, speaker, issuer, store):
        """Only the session's owner can refresh as its speaker."""
        speaker_cid, session_id = speaker
        status, body, cid = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("mallory")}
        )
        assert (status, body["code"]) == (403, "FORBIDDEN")
        assert store.get_session(session_id).speaker_connection_id == speaker_cid
        assert store.get_connection(cid) is None

    def test_state_store_unavailable_is_503(self, gateway, speaker, dynamodb, config):
        """When DynamoDB fails, connects are refused with 503, never a stack trace."""
        _, session_id = speaker
        dynamodb.delete_table(TableName=config.connections_table)
        status, body, _ = join(gateway, session_id)
        assert (status, body["code"]) == (503, "SERVICE_UNAVAILABLE")
        assert "Traceback" not in body["message"]

    def test_failed_welcome_dispatch_undoes_the_join(self, gateway, speaker, store):
        """If the first message cannot be dispatched, the join is rolled back (503)."""
        _, session_id = speaker
        gateway.runtime.fail_dispatch = True
        status, body, cid = join(gateway, session_id)
        assert (status, body["code"]) == (503, "SERVICE_UNAVAILABLE")
        assert store.get_connection(cid) is None
        assert store.get_session(session_id).listener_count == 0

    def test_failed_welcome_dispatch_undoes_a_speaker_refresh(self, gateway, speaker, issuer, store):
        """A speaker refresh that cannot complete leaves the old connection in charge."""
        speaker_cid, session_id = speaker
        gateway.runtime.fail_dispatch = True
        status, _, cid = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")}
        )
        assert status == 503
        assert store.get_session(session_id).speaker_connection_id == speaker_cid
        assert store.get_connection(cid) is None


class TestDuplicates:
    def test_duplicate_connect_of_a_listener_counts_once(self, gateway, speaker, store):
        """A redelivered $connect for the same connection id changes nothing."""
        _, session_id = speaker
        status, _, cid = join(gateway, session_id)
        status2, _, _ = gateway.connect(
            {"action": "joinSession", "sessionId": session_id, "targetLanguage": "es"}, connection_id=cid
        )
        assert (status, status2) == (200, 200)
        assert store.get_session(session_id).listener_count == 1

    def test_duplicate_connect_of_a_speaker_creates_one_session(self, gateway, issuer, store):
        """A redelivered createSession answers with the same session."""
        token = issuer.token("alice")
        _, _, cid = gateway.connect({**LANG_QUERY, "token": token})
        first = gateway.last(cid)["sessionId"]
        gateway.connect({**LANG_QUERY, "token": token}, connection_id=cid)
        assert [m["sessionId"] for m in gateway.received(cid, "sessionCreated")] == [first, first]


class TestRecovery:
    def test_duplicate_refresh_connect_repeats_refresh_complete(self, gateway, speaker, issuer):
        """A redelivered refresh $connect answers connectionRefreshComplete again."""
        _, session_id = speaker
        query = {"action": "refreshConnection", "sessionId": session_id, "role": "listener", "targetLanguage": "es"}
        _, _, cid = gateway.connect(query)
        gateway.connect(query, connection_id=cid)
        assert [m["type"] for m in gateway.received(cid)] == ["connectionRefreshComplete"] * 2

    def test_store_failure_before_the_join_writes_nothing(self, gateway, speaker, store, monkeypatch):
        """If the join's read fails, the join is refused with 503 and nothing is
        written or counted (tests/functional/test_faults.py tries every call)."""
        from chalicelib import errors

        _, session_id = speaker

        def failing_read(*args):
            raise errors.ServiceUnavailable()

        monkeypatch.setattr(store, "read_with", failing_read)
        status, body, cid = join(gateway, session_id)
        monkeypatch.undo()
        assert (status, body["code"]) == (503, "SERVICE_UNAVAILABLE")
        assert store.get_connection(cid) is None
        assert store.get_session(session_id).listener_count == 0

    def test_transaction_conflicts_are_retried(self, gateway, store, monkeypatch):
        """A TransactionConflict cancellation is retried, not turned into a 503."""
        from botocore.exceptions import ClientError

        client = gateway.runtime.clients.dynamodb()  # the store's client
        real = client.transact_write_items
        failures = {"left": 2}

        def conflicted(**kwargs):
            if failures["left"]:
                failures["left"] -= 1
                raise ClientError(
                    {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                     "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}]},
                    "TransactWriteItems",
                )
            return real(**kwargs)

        monkeypatch.setattr(client, "transact_write_items", conflicted)
        from chalicelib.state.records import Connection, Session

        session = Session(session_id="gracious-temple-777", speaker_user_id="u", speaker_connection_id="s=",
                          source_language="en", quality_tier="standard", status="active", listener_count=0,
                          created_at=0, expires_at=4102444800)
        speaker = Connection(connection_id="s=", session_id="gracious-temple-777", role="speaker",
                             connected_at=0, last_seen_at=0, ttl=4102444800)
        store.create_session(session, speaker)
        assert failures["left"] == 0
        assert store.get_session("gracious-temple-777").speaker_connection_id == "s="


class TestRefresh:
    def test_speaker_refresh_swaps_connection_and_extends_expiry(self, gateway, speaker, issuer, store):
        """A speaker refresh points the session at the new connection and extends expiresAt."""
        old_cid, session_id = speaker
        before = store.get_session(session_id)
        gateway.runtime.clock.advance(60)
        status, _, new_cid = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")}
        )
        assert status == 200
        complete = gateway.last(new_cid)
        assert complete["type"] == "connectionRefreshComplete"
        assert complete["role"] == "speaker" and complete["sessionId"] == session_id
        assert complete["sourceLanguage"] == "en" and "targetLanguage" not in complete
        after = store.get_session(session_id)
        assert after.speaker_connection_id == new_cid
        assert after.expires_at >= before.expires_at + 60

    def test_closing_the_replaced_speaker_connection_ends_nothing(self, gateway, speaker, issuer, store):
        """After a refresh, the old speaker socket closing leaves the session active."""
        old_cid, session_id = speaker
        _, _, listener = join(gateway, session_id)
        gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")}
        )
        gateway.close(old_cid)
        assert store.get_session(session_id).status == "active"
        assert not gateway.received(listener, "sessionEnded")
        assert store.get_connection(old_cid) is None

    def test_listener_refresh_takes_over_its_place_at_capacity(self, gateway, speaker, store, config):
        """A refresh naming its current connection gets in while the session is full;
        the count stays, and the old connection leaving does not uncount the new one."""
        _, session_id = speaker
        cids = [join(gateway, session_id)[2] for _ in range(config.max_listeners_per_session)]
        status, _, new_cid = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "listener",
             "targetLanguage": "fr", "previousConnectionId": cids[0]}
        )
        assert status == 200
        complete = gateway.last(new_cid)
        assert complete["type"] == "connectionRefreshComplete"
        assert complete["role"] == "listener" and complete["targetLanguage"] == "fr"
        assert store.get_session(session_id).listener_count == config.max_listeners_per_session
        assert store.get_connection(cids[0]).replaced_by == new_cid
        gateway.close(cids[0])
        assert store.get_connection(cids[0]) is None
        assert store.get_session(session_id).listener_count == config.max_listeners_per_session
        gateway.close(new_cid)
        assert store.get_session(session_id).listener_count == config.max_listeners_per_session - 1

    def test_listener_refresh_without_a_connection_counts_like_a_join(self, gateway, speaker, store, config):
        """A refresh that names no connection is admitted while there is room and
        refused with SESSION_FULL when there is none."""
        _, session_id = speaker
        query = {"action": "refreshConnection", "sessionId": session_id, "role": "listener",
                 "targetLanguage": "es"}
        for _ in range(config.max_listeners_per_session - 1):
            join(gateway, session_id)
        assert gateway.connect(query)[0] == 200
        status, body, cid = gateway.connect(query)
        assert (status, body["code"]) == (503, "SESSION_FULL")
        assert store.get_connection(cid) is None
        assert store.get_session(session_id).listener_count == config.max_listeners_per_session

    def test_a_place_is_taken_over_once(self, gateway, speaker, store, config):
        """Naming the same connection twice: the second refresh is admitted like a join,
        so it is refused when the session is full."""
        _, session_id = speaker
        cids = [join(gateway, session_id)[2] for _ in range(config.max_listeners_per_session)]
        query = {"action": "refreshConnection", "sessionId": session_id, "role": "listener",
                 "targetLanguage": "es", "previousConnectionId": cids[0]}
        assert gateway.connect(query)[0] == 200
        status, body, _ = gateway.connect(query)
        assert (status, body["code"]) == (503, "SESSION_FULL")
        assert store.get_session(session_id).listener_count == config.max_listeners_per_session

    def test_only_a_listener_of_the_same_session_can_be_taken_over(self, gateway, speaker, store, issuer, config):
        """Naming the speaker or another session's listener takes nothing over."""
        speaker_cid, session_id = speaker
        _, _, other_speaker = gateway.connect({**LANG_QUERY, "token": issuer.token("bob")})
        other_session = gateway.last(other_speaker)["sessionId"]
        _, _, stranger = join(gateway, other_session)
        for _ in range(config.max_listeners_per_session):
            join(gateway, session_id)
        for previous in (speaker_cid, stranger, "nosuchconnection="):
            status, body, _ = gateway.connect(
                {"action": "refreshConnection", "sessionId": session_id, "role": "listener",
                 "targetLanguage": "es", "previousConnectionId": previous})
            assert (status, body["code"]) == (503, "SESSION_FULL"), previous
        assert store.get_connection(stranger).replaced_by is None
        assert store.get_session(other_session).listener_count == 1

    def test_a_malformed_previous_connection_id_is_400(self, gateway, speaker):
        """previousConnectionId must look like a connection id."""
        _, session_id = speaker
        status, body, _ = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "listener",
             "targetLanguage": "es", "previousConnectionId": "not an id!"})
        assert (status, body["code"]) == (400, "INVALID_PARAMETER")

    def test_refresh_into_an_ended_session_is_404(self, gateway, speaker):
        """Refreshing into a session that ended is SESSION_NOT_FOUND."""
        speaker_cid, session_id = speaker
        gateway.close(speaker_cid)
        status, body, _ = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "listener", "targetLanguage": "es"}
        )
        assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")


class TestRateLimits:
    @pytest.fixture
    def backend(self):
        return "server"  # real concurrency for the race test

    @pytest.fixture
    def config_env(self, config_env):
        config_env.update(RATE_LIMIT_CONNECTS_PER_MINUTE="5", RATE_LIMIT_SESSIONS_PER_HOUR="2")
        return config_env

    def test_connects_per_address_are_limited(self, gateway, speaker, store):
        """Past the per-address limit connects get 429 RATE_LIMITED and write nothing."""
        _, session_id = speaker  # the speaker's connect was the first of 5
        statuses = [join(gateway, session_id)[0] for _ in range(4)]
        status, body, cid = join(gateway, session_id)
        assert statuses == [200] * 4
        assert (status, body["code"]) == (429, "RATE_LIMITED")
        assert store.get_connection(cid) is None
        assert store.get_session(session_id).listener_count == 4

    def test_sessions_per_user_are_limited(self, gateway, issuer):
        """A user creating sessions past the hourly limit gets 429."""
        token = issuer.token("alice")
        results = [gateway.connect({**LANG_QUERY, "token": token})[0] for _ in range(3)]
        assert results == [200, 200, 429]
        assert gateway.connect({**LANG_QUERY, "token": issuer.token("bob")})[0] == 200

    def test_limits_are_exact_under_concurrency(self, gateway, speaker, config):
        """Concurrent connects from one address never exceed the limit."""
        from concurrent.futures import ThreadPoolExecutor

        _, session_id = speaker
        query = {"action": "joinSession", "sessionId": session_id, "targetLanguage": "es"}
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: gateway.connect(query, deliver=False)[0], range(12)))
        assert statuses.count(200) == 4 and statuses.count(429) == 8


class TestInBandRefusals:
    """Browsers see nothing of a refused handshake; ``refusal=message`` asks for the
    refusal as the first message instead (docs/protocol.md, Refusals)."""

    @pytest.fixture
    def config_env(self, config_env):
        config_env.update(MAX_LISTENERS_PER_SESSION="1")
        return config_env

    def refused(self, gateway, store, query):
        status, _, cid = gateway.connect({**query, "refusal": "message"})
        assert status == 200  # the handshake completes...
        [error] = gateway.received(cid)  # ...its one message says why...
        assert error["type"] == "error" and "action" not in error
        assert cid in gateway.server_closed and cid not in gateway.open  # ...and it is closed
        assert store.get_connection(cid) is None
        return error["code"]

    def test_each_refusal_arrives_with_its_code(self, gateway, speaker, store, issuer):
        """Unknown session, full session, bad language, bad token: the exact code."""
        _, session_id = speaker
        join(gateway, session_id)  # capacity 1: now full
        assert self.refused(gateway, store, {"action": "joinSession", "sessionId": "faithful-shepherd-999",
                                             "targetLanguage": "es"}) == "SESSION_NOT_FOUND"
        assert self.refused(gateway, store, {"action": "joinSession", "sessionId": session_id,
                                             "targetLanguage": "es"}) == "SESSION_FULL"
        assert self.refused(gateway, store, {"action": "joinSession", "sessionId": session_id,
                                             "targetLanguage": "xx"}) == "UNSUPPORTED_LANGUAGE"
        assert self.refused(gateway, store, {**LANG_QUERY, "token": issuer.token(exp=1)}) == "UNAUTHORIZED"
        assert store.get_session(session_id).listener_count == 1

    def test_without_asking_the_handshake_is_refused(self, gateway, speaker):
        """Other clients keep the HTTP refusal."""
        status, body, cid = gateway.connect({"action": "joinSession", "sessionId": "faithful-shepherd-999",
                                             "targetLanguage": "es"})
        assert (status, body["code"]) == (404, "SESSION_NOT_FOUND") and cid not in gateway.open

    def test_a_refusal_that_cannot_be_delivered_stays_a_status(self, gateway, speaker):
        """When the first message cannot be dispatched, the handshake is refused as usual."""
        gateway.runtime.fail_dispatch = True
        status, body, _ = gateway.connect({"action": "joinSession", "sessionId": "faithful-shepherd-999",
                                           "targetLanguage": "es", "refusal": "message"})
        assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")
