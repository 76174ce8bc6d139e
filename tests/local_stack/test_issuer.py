"""The local issuer: a Cognito-shaped ID token verifiable against its JWKS."""
import json
import time

import jwt
import pytest

from local_stack.issuer import KEY_FILE, LocalIssuer


@pytest.fixture
def issuer(tmp_path):
    return LocalIssuer(tmp_path / "state")


def verify(issuer, token):
    jwks = jwt.PyJWKSet.from_dict(issuer.jwks())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    return jwt.decode(token, key.key, algorithms=["RS256"], issuer=issuer.issuer,
                      audience=issuer.audience)


class TestLocalIssuer:
    def test_token_verifies_against_the_jwks(self, issuer):
        """An RS256 token whose kid is in the JWKS, with iss and aud checked."""
        claims = verify(issuer, issuer.token("alice"))
        assert claims["cognito:username"] == "alice"
        assert jwt.get_unverified_header(issuer.token("alice"))["alg"] == "RS256"

    def test_claims_are_those_of_a_cognito_id_token(self, issuer):
        """sub, iss, aud, token_use=id, auth_time, iat, exp, email, event_id, origin_jti, jti."""
        claims = issuer.claims("alice", now=1000, ttl=60)
        assert claims["token_use"] == "id"
        assert claims["iat"] == claims["auth_time"] == 1000 and claims["exp"] == 1060
        assert claims["email"] == "alice@example.com"
        for name in ("sub", "iss", "aud", "event_id", "origin_jti", "jti"):
            assert claims[name]

    def test_sub_is_stable_per_user(self, issuer):
        """A user keeps their sub across tokens; users differ."""
        assert issuer.claims("alice")["sub"] == issuer.claims("alice")["sub"]
        assert issuer.claims("alice")["sub"] != issuer.claims("bob")["sub"]
        assert issuer.claims("alice")["jti"] != issuer.claims("alice")["jti"]

    def test_key_is_created_once_and_shared(self, issuer, tmp_path):
        """A second issuer on the same folder (another process) uses the same key."""
        token = issuer.token("alice")
        other = LocalIssuer(tmp_path / "state")
        assert verify(other, token)["cognito:username"] == "alice"
        assert (tmp_path / "state" / KEY_FILE).stat().st_mode & 0o077 == 0
        assert json.dumps(issuer.jwks()) == json.dumps(other.jwks())
        assert "d" not in issuer.jwks()["keys"][0]  # public part only

    def test_expired_token_is_rejected(self, issuer):
        """exp is honoured by a verifier."""
        token = issuer.token("alice", now=time.time() - 7200, ttl=60)
        with pytest.raises(jwt.ExpiredSignatureError):
            verify(issuer, token)


class TestTokenLifetime:
    def test_tokens_live_one_hour_by_default_as_cognitos(self, issuer):
        """Cognito's default ID token lifetime is 1 hour; so is the local issuer's."""
        claims = verify(issuer, issuer.token("alice"))
        assert claims["exp"] - claims["iat"] == 3600

    def test_lifetime_is_configurable(self, tmp_path):
        """LOCAL_TOKEN_TTL_SECONDS sets the lifetime; an explicit ttl wins."""
        issuer = LocalIssuer.from_environ(tmp_path / "state", {"LOCAL_TOKEN_TTL_SECONDS": "120"})
        assert issuer.claims("alice", now=1000)["exp"] == 1120
        assert issuer.claims("alice", now=1000, ttl=30)["exp"] == 1030
        assert LocalIssuer.from_environ(tmp_path / "state", {}).ttl == 3600

    @pytest.mark.parametrize("value", ["soon", "0", "-5"])
    def test_invalid_lifetime_is_refused(self, tmp_path, value):
        with pytest.raises(ValueError, match="LOCAL_TOKEN_TTL_SECONDS"):
            LocalIssuer.from_environ(tmp_path / "state", {"LOCAL_TOKEN_TTL_SECONDS": value})

    def test_token_command_mints_with_the_configured_lifetime(self, tmp_path):
        """`python -m local_stack token --ttl 60` prints a token living 60 s."""
        import os
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "LOCAL_STATE_DIR": str(tmp_path / "state")}
        result = subprocess.run([sys.executable, "-m", "local_stack", "token", "alice", "--ttl", "60"],
                                cwd=root, env=env, capture_output=True, text=True, timeout=60, check=True)
        claims = verify(LocalIssuer(tmp_path / "state"), result.stdout.strip().splitlines()[-1])
        assert claims["exp"] - claims["iat"] == 60
