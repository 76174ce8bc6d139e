"""What the client tells a speaker refused with 401, from the token alone, and what it
tells anyone who finds no server at the URL."""
import time

import jwt
import pytest

from broadcast_client.actions import Exit, Open
from broadcast_client.protocol import ClientProtocol, Role
from broadcast_client.display import redact
from broadcast_client.token_hints import token_hints
from tests.support.tokens import AUDIENCE, ISSUER, Issuer

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


@pytest.fixture(scope="module")
def issuer():
    return Issuer()


class TestTokenHints:
    def test_an_expired_token_says_when_it_expired(self, issuer):
        """exp in the past: the time it expired (UTC), how long ago, and where to get a fresh one."""
        token = issuer.token(exp=int(NOW) - 12 * 60)
        hint = token_hints(token, NOW)
        assert "expired at 2027-01-15 07:48:00 UTC, 12 min ago" in hint
        assert "make token" in hint
        assert token not in hint

    def test_something_that_is_not_a_jwt_is_called_so(self):
        """Garbage (or a token cut short when pasted) is 'not a JWT', without being echoed."""
        for token in ("SECRET-not-a-jwt", "SECRET.abc", "eyJhbGciOiJSUzI1NiJ9.SECRET"):
            hint = token_hints(token, NOW)
            assert hint.startswith("the token is not a JWT"), hint
            assert "SECRET" not in hint
            assert redact(hint) == hint  # the display shows it whole ("TOKEN=***" garbled it)

    def test_a_well_formed_token_names_its_issuer_and_audience(self, issuer):
        """Nothing visibly wrong: the issuer and audience are shown to compare with the
        server's TOKEN_ISSUER / TOKEN_AUDIENCE / JWKS_URL (the client cannot know them)."""
        token = issuer.token(exp=int(NOW) + 3600)
        hint = token_hints(token, NOW)
        assert f"issuer {ISSUER}, audience {AUDIENCE}" in hint
        assert "looks well-formed" in hint and "TOKEN_ISSUER" in hint and "JWKS_URL" in hint
        assert "expired" not in hint and token not in hint

    def test_what_the_server_refuses_is_listed(self):
        """HS256, no kid, an access token, no sub: each is named."""
        token = jwt.encode({"exp": NOW + 60, "token_use": "access", "iss": "https://elsewhere"},
                           "k" * 32, algorithm="HS256")
        hint = token_hints(token, NOW)
        assert "issuer https://elsewhere" in hint
        assert "signed with HS256; the server accepts only RS256" in hint
        assert "no signing key (kid)" in hint
        assert "token_use is 'access'" in hint
        assert "names no user (sub)" in hint

    def test_no_expiry_and_not_yet_valid(self, issuer):
        """A token without exp, or with nbf in the future, says so."""
        assert "no expiry (exp)" in token_hints(issuer.token(exp=None), NOW)
        assert "not valid before 2027-01-15 09:00:00 UTC" in token_hints(
            issuer.token(exp=int(NOW) + 7200, nbf=int(NOW) + 3600), NOW)

    def test_no_token(self):
        assert token_hints(None, NOW) == "no token was sent"


class TestRefusedSpeaker:
    def test_a_401_at_start_explains_the_token(self, issuer):
        """The exit reason is the server's 401 plus what the token says; never the token."""
        token = issuer.token(exp=int(time.time()) - 120)
        protocol = ClientProtocol(url="ws://127.0.0.1:8000/dev", role=Role.SPEAKER, token=token)
        [action] = protocol.start()
        [done] = [a for a in protocol.refused(action.key, 401, '{"message": "Unauthorized"}', time.time())
                  if isinstance(a, Exit)]
        assert done.code == 1
        assert done.reason.startswith("connection refused: 401 Unauthorized; the token")
        assert "expired at" in done.reason and token not in done.reason

    def test_a_401_on_refresh_explains_the_token_too(self, issuer):
        """A refresh refused with 401 (a stale token) keeps the connection and says why."""
        protocol = ClientProtocol(url="ws://127.0.0.1:8000/dev", role=Role.SPEAKER,
                                  token=issuer.token(exp=int(NOW) - 60))
        [start] = protocol.start()
        protocol.opened(start.key, NOW)
        protocol.received(start.key, '{"type": "sessionCreated", "sessionId": "s-1"}', NOW)
        [refresh] = [a for a in protocol.received(start.key, '{"type": "connectionRefreshRequired"}', NOW)
                     if isinstance(a, Open)]
        [note] = protocol.refused(refresh.key, 401, '{"message": "Unauthorized"}', NOW)
        assert "keeping the current connection" in note.text and "60 s ago" in note.text

    def test_other_refusals_do_not_blame_the_token(self, issuer):
        """403 and 404 are about the session, not the token: no token hints."""
        for status, body in ((403, '{"code": "FORBIDDEN", "message": "not yours"}'),
                             (404, '{"code": "SESSION_NOT_FOUND", "message": "gone"}')):
            protocol = ClientProtocol(url="ws://127.0.0.1:8000/dev", role=Role.SPEAKER,
                                      token=issuer.token())
            [action] = protocol.start()
            done = protocol.refused(action.key, status, body, time.time())[-1]
            assert "token" not in done.reason, done.reason


class TestNothingListening:
    def test_a_local_url_suggests_make_run_and_names_the_url(self):
        """Nothing at 127.0.0.1: say so, with the URL tried, and suggest make run / PORT / WS_URL."""
        protocol = ClientProtocol(url="ws://127.0.0.1:8000/dev", role=Role.LISTENER,
                                  session_id="s-1", target_language="es")
        [action] = protocol.start()
        done = protocol.failed(action.key, "ConnectionRefusedError: [Errno 111] ...", 0.0,
                               nothing_listening=True)[-1]
        assert done.code == 1
        assert "nothing is listening at ws://127.0.0.1:8000/dev" in done.reason
        assert "make run" in done.reason and "PORT=" in done.reason and "WS_URL=" in done.reason
        assert "Errno" not in done.reason

    def test_a_remote_url_does_not_suggest_make_run(self):
        protocol = ClientProtocol(url="wss://abc.execute-api.eu-west-1.amazonaws.com/prod",
                                  role=Role.LISTENER, session_id="s-1", target_language="es")
        [action] = protocol.start()
        done = protocol.failed(action.key, "ConnectionRefusedError", 0.0, nothing_listening=True)[-1]
        assert "nothing is listening at wss://abc.execute-api" in done.reason
        assert "make run" not in done.reason

    def test_a_reconnect_still_retries_when_nothing_listens(self):
        """A stack restarting under a running listener: keep reconnecting with backoff."""
        protocol = ClientProtocol(url="ws://127.0.0.1:8000/dev", role=Role.LISTENER,
                                  session_id="s-1", target_language="es", rng=lambda: 0.0)
        [start] = protocol.start()
        protocol.opened(start.key, 0.0)
        [_, again] = protocol.closed(start.key, 1006, 1.0)
        actions = protocol.failed(again.key, "ConnectionRefusedError", 2.0, nothing_listening=True)
        assert isinstance(actions[-1], Open) and protocol.done is None
