"""Races: the count must equal the number of listener rows, whatever the timing."""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.functional.conftest import join


@pytest.fixture
def backend():
    return "server"


def listener_rows(store, session_id):
    return list(store.listeners(session_id))


class TestConcurrency:
    def test_fifty_concurrent_joins_against_capacity_twenty(self, gateway, speaker, store, config):
        """50 simultaneous joins at capacity 20 admit exactly 20, and the count says 20."""
        assert config.max_listeners_per_session == 20
        _, session_id = speaker
        query = {"action": "joinSession", "sessionId": session_id, "targetLanguage": "es"}
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda _: gateway.connect(query, deliver=False), range(50)))
        statuses = sorted(status for status, _, _ in results)
        assert statuses.count(200) == 20
        assert statuses.count(503) == 30
        assert all(body["code"] == "SESSION_FULL" for status, body, _ in results if status == 503)
        assert store.get_session(session_id).listener_count == 20
        assert len(listener_rows(store, session_id)) == 20

    def test_joins_and_leaves_racing_keep_the_count_true(self, gateway, speaker, store):
        """Interleaved joins, leaves and duplicate leaves end with count == rows."""
        _, session_id = speaker
        seeded = [join(gateway, session_id)[2] for _ in range(10)]
        rng = random.Random(3)
        query = {"action": "joinSession", "sessionId": session_id, "targetLanguage": "fr"}

        def work(i):
            if i % 3 == 0:
                gateway.connect(query, deliver=False)
            else:
                victim = rng.choice(seeded)
                gateway.disconnect_event(victim)  # several threads may pick the same one

        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(work, range(60)))
        rows = listener_rows(store, session_id)
        assert store.get_session(session_id).listener_count == len(rows)
        assert not any(store.get_connection(cid) for cid in seeded)

    def test_concurrent_session_creation_never_shares_an_id(self, gateway, issuer, store, monkeypatch):
        """Speakers racing for the same candidate id each end up with their own session."""
        import chalicelib.admission as admission

        candidates = ["faithful-shepherd-%d" % n for n in range(100, 110)]
        monkeypatch.setattr(admission, "candidate_ids", lambda rng=None: iter(candidates))
        tokens = [issuer.token(f"user-{i}") for i in range(8)]
        query = {"action": "createSession", "sourceLanguage": "en"}
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda t: gateway.connect({**query, "token": t}, deliver=False), tokens))
        assert all(status == 200 for status, _, _ in results)
        owners = {store.get_session(sid).speaker_user_id for sid in candidates[:8]}
        assert owners == {f"user-{i}" for i in range(8)}
