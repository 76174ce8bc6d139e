"""What the local stack may log about a client (pure)."""
import json

from local_stack import logsafe
from tests.support.tokens import Issuer

TOKEN = Issuer().token("alice")


class TestLogRefs:
    def test_a_connection_is_a_stable_keyed_hash(self):
        """The same id hashes alike under one key, differently under another, and the
        raw id is not in it."""
        refs = logsafe.LogRefs("k1")
        ref = refs.connection("L0SM9cOFvHcCIhw=")
        assert ref.startswith("conn:") and "L0SM9cOFvHcCIhw" not in ref
        assert ref == refs.connection("L0SM9cOFvHcCIhw=")
        assert ref != logsafe.LogRefs("k2").connection("L0SM9cOFvHcCIhw=")
        assert logsafe.LogRefs(None).connection("x") != logsafe.LogRefs(None).connection("x")


class TestClientText:
    def test_nothing_from_token_on(self):
        """'...token=<JWT>' loses everything from 'token'."""
        assert TOKEN not in logsafe.client_text(f"bad value; token={TOKEN}")
        assert "token" not in logsafe.client_text(f"x token={TOKEN}")

    def test_a_jwt_is_redacted(self):
        """A JWT anywhere, even cut short past its header, is redacted."""
        assert logsafe.client_text(f"reason {TOKEN[:110]}") == "<redacted>"


class TestRefusalCode:
    def test_only_the_code_of_a_refusal_body(self):
        """The body's code, never its message (which may quote the query)."""
        body = json.dumps({"code": "INVALID_LANGUAGE", "message": f"got {TOKEN}"})
        assert logsafe.refusal_code(body) == "INVALID_LANGUAGE"

    def test_a_message_only_body_is_clipped(self):
        """API Gateway's own bodies ({"message": ...}) give their message, clipped."""
        assert logsafe.refusal_code('{"message": "Unauthorized"}') == "Unauthorized"
        assert TOKEN[:20] not in logsafe.refusal_code(json.dumps({"message": TOKEN}))

    def test_anything_else_is_a_dash(self):
        """Non-JSON, deep JSON or empty bodies are logged as '-'."""
        for body in ("", "not json", "[" * 5000, json.dumps({"code": {"x": 1}})):
            assert logsafe.refusal_code(body) == "-"
