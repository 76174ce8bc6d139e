"""The store's conditional writes, one by one: each says "I did it" exactly once,
however often or concurrently it is called."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import liveness
from tests.functional.conftest import join


@pytest.fixture
def backend():
    return "server"  # over HTTP, so concurrent calls really overlap


class TestOnce:
    def test_a_notice_is_claimed_once(self, gateway, speaker, store):
        """Of sixteen concurrent claims of one notice, exactly one succeeds, and a
        later claim fails too: the notice is sent once."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        with ThreadPoolExecutor(max_workers=16) as pool:
            claims = list(pool.map(
                lambda i: store.claim_notice(cid, liveness.REFRESH_NOTICE, 1000 + i), range(16)))
        assert claims.count(True) == 1
        assert store.claim_notice(cid, liveness.REFRESH_NOTICE, 5000) is False
        assert store.get_connection(cid).refresh_notified_at in range(1000, 1016)

    def test_a_released_notice_can_be_claimed_again(self, gateway, speaker, store):
        """After a failed send gives the claim back, the next try claims it."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        assert store.claim_notice(cid, liveness.WARNING_NOTICE, 1)
        store.release_notice(cid, liveness.WARNING_NOTICE)
        assert store.claim_notice(cid, liveness.WARNING_NOTICE, 2)

    def test_removing_a_listener_twice_uncounts_it_once(self, gateway, speaker, store):
        """The second removal of the same listener finds nothing and changes no count."""
        _, session_id = speaker
        _, _, first = join(gateway, session_id)
        join(gateway, session_id)
        listener = store.get_connection(first)
        assert store.remove_listener(listener, 1) is True
        assert store.remove_listener(listener, 2) is False
        assert store.get_session(session_id).listener_count == 1
        assert store.get_connection(first) is None

    def test_concurrent_removals_of_one_listener_uncount_it_once(self, gateway, speaker, store):
        """Eight racing removals (a $disconnect, the sweep, fan-outs finding it gone):
        one succeeds and the count drops by one."""
        _, session_id = speaker
        _, _, first = join(gateway, session_id)
        join(gateway, session_id)
        listener = store.get_connection(first)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda i: store.remove_listener(listener, i), range(8)))
        assert results.count(True) == 1
        assert store.get_session(session_id).listener_count == 1
