import base64
import json
import time

import jwt
import pytest

from chalicelib.auth.authorizer import BAD_TOKEN, KEYS_UNAVAILABLE, authorize
from chalicelib.auth.tokens import InvalidToken, JwksCache, KeysUnavailable, TokenVerifier
from tests.support.tokens import AUDIENCE, ISSUER, Issuer


@pytest.fixture(scope="module")
def issuer():
    return Issuer()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def fetches(issuer):
    calls = []

    def fetch(url):
        calls.append(url)
        return issuer.jwks()

    fetch.calls = calls
    return fetch


@pytest.fixture
def verifier(fetches):
    jwks = JwksCache("http://127.0.0.1:9/jwks.json", cooldown=300, fetch=fetches, clock=Clock())
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, token_use="id", jwks=jwks)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestTokenVerifier:
    def test_valid_id_token(self, verifier, issuer):
        """A Cognito-shaped ID token verifies and yields its subject."""
        assert verifier.verify(issuer.token("alice")).user_id == "alice"

    def test_tampered_payload(self, verifier, issuer):
        """Changing the payload breaks the signature."""
        header, _payload, signature = issuer.token("alice").split(".")
        forged = ".".join([header, _b64(issuer.claims("mallory")), signature])
        with pytest.raises(InvalidToken):
            verifier.verify(forged)

    def test_expired(self, verifier, issuer):
        """An expired token is refused."""
        with pytest.raises(InvalidToken, match="expired"):
            verifier.verify(issuer.token(exp=int(time.time()) - 60))

    def test_alg_none(self, verifier, issuer):
        """An unsigned token (alg=none) is refused before any key lookup."""
        unsigned = _b64({"alg": "none", "kid": issuer.kid}) + "." + _b64(issuer.claims()) + "."
        with pytest.raises(InvalidToken, match="algorithm"):
            verifier.verify(unsigned)

    def test_hs256_with_public_key_as_secret(self, verifier, issuer):
        """Key confusion (HS256 signed with the public key) is refused."""
        public_pem = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.private_key.public_key())
        header = _b64({"alg": "HS256", "kid": issuer.kid, "typ": "JWT"})
        body = _b64(issuer.claims())
        import hashlib
        import hmac

        sig = hmac.new(public_pem.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        forged = f"{header}.{body}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
        with pytest.raises(InvalidToken, match="algorithm"):
            verifier.verify(forged)

    def test_wrong_issuer(self, verifier, issuer):
        """A token from another issuer is refused."""
        with pytest.raises(InvalidToken):
            verifier.verify(issuer.token(iss="https://cognito-idp.us-east-1.amazonaws.com/other"))

    def test_wrong_audience(self, verifier, issuer):
        """A token for another app client is refused."""
        with pytest.raises(InvalidToken):
            verifier.verify(issuer.token(aud="another-client"))

    def test_access_token_where_id_token_expected(self, verifier, issuer):
        """token_use must match the configured kind."""
        with pytest.raises(InvalidToken, match="token_use"):
            verifier.verify(issuer.token(token_use="access"))

    def test_signed_by_another_key_with_our_kid(self, verifier, issuer):
        """A token signed by a stranger's key, claiming our kid, is refused."""
        stranger = Issuer(kid=issuer.kid)
        with pytest.raises(InvalidToken):
            verifier.verify(stranger.token())

    @pytest.mark.parametrize("token", [None, "", "abc", "a.b.c"])
    def test_garbage(self, verifier, token):
        """Missing or malformed tokens are refused, not crashed on."""
        with pytest.raises(InvalidToken):
            verifier.verify(token)

    def test_access_tokens_are_checked_by_client_id(self, issuer, fetches):
        """With TOKEN_USE=access, client_id stands in for aud."""
        jwks = JwksCache("u", cooldown=300, fetch=fetches, clock=Clock())
        access = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, token_use="access", jwks=jwks)
        assert access.verify(issuer.token(token_use="access", aud=None, client_id=AUDIENCE)).user_id
        with pytest.raises(InvalidToken, match="client_id"):
            access.verify(issuer.token(token_use="access", aud=None, client_id="other"))


class TestJwksCache:
    def test_keys_are_cached_across_verifications(self, verifier, issuer, fetches):
        """The JWKS is fetched once for many tokens."""
        for _ in range(5):
            verifier.verify(issuer.token())
        assert len(fetches.calls) == 1

    def test_unknown_kids_refetch_at_most_once_per_cooldown(self, issuer, fetches):
        """Forged kids cannot make us hammer the JWKS endpoint."""
        clock = Clock()
        jwks = JwksCache("u", cooldown=300, fetch=fetches, clock=clock)
        verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, token_use="id", jwks=jwks)
        verifier.verify(issuer.token())
        for i in range(20):
            with pytest.raises(InvalidToken, match="unknown signing key"):
                verifier.verify(issuer.token(headers={"kid": f"forged-{i}"}))
        assert len(fetches.calls) == 1
        clock.now += 301
        with pytest.raises(InvalidToken):
            verifier.verify(issuer.token(headers={"kid": "forged-late"}))
        assert len(fetches.calls) == 2

    def test_rotated_key_is_picked_up_after_cooldown(self, issuer):
        """A new signing key becomes usable once the cooldown allows a refetch."""
        rotated = Issuer(kid="test-key-2")
        published = {"document": issuer.jwks()}
        clock = Clock()
        jwks = JwksCache("u", cooldown=60, fetch=lambda url: published["document"], clock=clock)
        verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, token_use="id", jwks=jwks)
        verifier.verify(issuer.token())
        published["document"] = rotated.jwks()
        with pytest.raises(InvalidToken):
            verifier.verify(rotated.token("bob"))  # inside the cooldown
        clock.now += 61
        assert verifier.verify(rotated.token("bob")).user_id == "bob"

    def test_failed_fetch_is_retried_soon(self, issuer):
        """A JWKS outage locks speakers out for seconds, not for the whole cooldown."""
        state = {"up": False}

        def fetch(url):
            if not state["up"]:
                raise OSError("connection refused")
            return issuer.jwks()

        clock = Clock()
        verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, token_use="id",
                                 jwks=JwksCache("u", cooldown=300, fetch=fetch, clock=clock))
        with pytest.raises(KeysUnavailable):
            verifier.verify(issuer.token())
        clock.now += 1  # waiting to retry: still "unavailable" (503), never "bad token" (401)
        with pytest.raises(KeysUnavailable):
            verifier.verify(issuer.token())
        state["up"] = True
        clock.now += 5
        assert verifier.verify(issuer.token("carol")).user_id == "carol"

    def test_unreachable_jwks_refuses_instead_of_crashing(self, issuer):
        """A JWKS outage makes tokens invalid (401), never a 500."""
        def broken(url):
            raise OSError("connection refused")

        verifier = TokenVerifier(
            issuer=ISSUER, audience=AUDIENCE, token_use="id",
            jwks=JwksCache("u", cooldown=300, fetch=broken, clock=Clock()),
        )
        with pytest.raises(InvalidToken, match="unavailable"):
            verifier.verify(issuer.token())


METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/$connect"


class TestAuthorizer:
    def test_listener_is_allowed_anonymously(self, verifier):
        """Listener intents get an Allow policy for the requested methodArn, no token."""
        result = authorize(
            {"methodArn": METHOD_ARN, "queryStringParameters": {"sessionId": "faithful-shepherd-427", "targetLanguage": "es"}},
            verifier,
        )
        statement = result["policyDocument"]["Statement"][0]
        assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}
        assert "userId" not in result["context"]

    def test_speaker_without_token_carries_a_refusal(self, verifier):
        """createSession without a token is not refused here (a raised Unauthorized
        would be a Lambda error): $connect gets the refusal and answers 401."""
        result = authorize({"methodArn": METHOD_ARN, "queryStringParameters": {"action": "createSession"}}, verifier)
        assert result["context"] == {"role": "speaker", "refusal": BAD_TOKEN}
        assert result["principalId"] == "anonymous"

    def test_speaker_refresh_with_bad_token_carries_a_refusal(self, verifier, issuer):
        """A speaker refresh with an expired token gets no user id, only a refusal."""
        query = {"action": "refreshConnection", "role": "speaker", "token": issuer.token(exp=1)}
        result = authorize({"methodArn": METHOD_ARN, "queryStringParameters": query}, verifier)
        assert result["context"] == {"role": "speaker", "refusal": BAD_TOKEN}

    def test_unreachable_keys_are_told_apart(self, issuer):
        """When the signing keys cannot be fetched the refusal says so ($connect: 503)."""
        def broken(url):
            raise OSError("connection refused")

        verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, token_use="id",
                                 jwks=JwksCache("u", cooldown=300, fetch=broken, clock=Clock()))
        query = {"action": "createSession", "token": issuer.token("alice")}
        result = authorize({"methodArn": METHOD_ARN, "queryStringParameters": query}, verifier)
        assert result["context"] == {"role": "speaker", "refusal": KEYS_UNAVAILABLE}

    def test_speaker_with_token_gets_user_id(self, verifier, issuer, caplog):
        """A valid token allows and passes the token's sub as userId; the token is never logged."""
        token = issuer.token("alice")
        result = authorize(
            {"methodArn": METHOD_ARN, "queryStringParameters": {"action": "createSession", "token": token}}, verifier
        )
        assert result["principalId"] == "alice"
        assert result["context"] == {"role": "speaker", "userId": "alice"}
        forged = authorize({"methodArn": METHOD_ARN, "queryStringParameters": {"action": "createSession", "token": token + "x"}}, verifier)
        assert "userId" not in forged["context"]
        assert token not in caplog.text
