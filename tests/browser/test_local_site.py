"""The local stack serves the pages: routes, the generated config.js, and the
dev-only token endpoint that only the stack's own pages may use."""
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import jwt
import pytest

from local_stack.issuer import LocalIssuer

pytestmark = pytest.mark.e2e


def fetch(url, *, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def token_request(stack, *, origin, host=None, body=b'{"user": "alice"}', content_type="application/json"):
    headers = {"Content-Type": content_type}
    if origin:
        headers["Origin"] = origin
    if host:
        headers["Host"] = host
    return fetch(f"{stack.http}/_local/token", method="POST", body=body, headers=headers)


class TestRoutes:
    def test_pages_and_assets_are_served_and_nothing_outside_web(self, stack):
        for path, kind in (("/listen", "text/html"), ("/speak", "text/html"),
                           ("/assets/js/lib/client.js", "text/javascript"), ("/assets/css/site.css", "text/css")):
            status, headers, _ = fetch(stack.http + path)
            assert (status, headers["Content-Type"].split(";")[0]) == (200, kind), path
        status, headers, _ = fetch(stack.http + "/listen")
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        for path in ("/assets/../../app.py", "/assets/%2e%2e/%2e%2e/app.py", "/assets/nothing.js"):
            assert fetch(stack.http + path)[0] == 404, path

    def test_the_websocket_api_still_answers_on_its_stage(self, stack):
        """The pages' routes come before /{stage}: a plain GET of the stage is still the API's."""
        assert fetch(stack.http + "/dev")[0] == 426

    def test_config_js_names_this_gateway_and_the_apps_settings(self, stack):
        """The WebSocket URL is the address the browser used; heartbeat and languages are the app's."""
        status, _, text = fetch(stack.http + "/config.js")
        assert status == 200
        settings = json.loads(text.split("Object.freeze(", 1)[1].rsplit(");", 1)[0])
        port = urlsplit(stack.http).port
        assert settings["websocketUrl"] == f"ws://127.0.0.1:{port}/dev"
        assert settings["heartbeatIntervalSeconds"] == 30
        assert "es" in settings["languages"] and len(settings["languages"]) == 19
        assert settings["auth"] == {"localTokenUrl": "/_local/token"}
        _, _, text = fetch(stack.http + "/config.js", headers={"Host": f"localhost:{port}"})
        assert f'"ws://localhost:{port}/dev"' in text


class TestTokenEndpoint:
    def test_the_stacks_own_pages_get_a_token_the_stack_accepts(self, stack):
        status, headers, text = token_request(stack, origin=stack.http)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        token = json.loads(text)["token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["cognito:username"] == "alice"
        assert claims["iss"] == LocalIssuer(stack.state_dir).issuer
        assert stack.status(action="createSession", sourceLanguage="en", token=token) == 101

    @pytest.mark.parametrize("origin", [None, "http://evil.example", "null", "http://127.0.0.1:1"])
    def test_requests_from_anywhere_else_are_refused(self, stack, origin):
        """No Origin (a script), another site's page, a sandboxed frame, another port: 403."""
        status, _, text = token_request(stack, origin=origin, content_type="text/plain")
        assert status == 403, text
        assert "token" not in json.loads(text)

    def test_a_rebound_dns_name_is_refused_even_with_a_matching_origin(self, stack):
        """A page of evil.example whose name was re-pointed at 127.0.0.1 is same-origin with
        itself, not with the stack: the Host must be a loopback name."""
        port = urlsplit(stack.http).port
        status, _, _ = token_request(stack, origin=f"http://evil.example:{port}", host=f"evil.example:{port}")
        assert status == 403

    def test_a_bad_user_name_is_refused_in_words(self, stack):
        status, _, text = token_request(stack, origin=stack.http, body=b'{"user": "a b"}')
        assert status == 400 and json.loads(text)["code"] == "INVALID_PARAMETER"
