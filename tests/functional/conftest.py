import boto3
import pytest
from moto import mock_aws

import app as app_module
from chalicelib.config import Config
from chalicelib.state.schema import ensure_tables
from chalicelib.auth.tokens import JwksCache, TokenVerifier
from tests.support.harness import Gateway
from tests.support.tokens import AUDIENCE, ISSUER, Issuer

LANG_QUERY = {"action": "createSession", "sourceLanguage": "en"}


@pytest.fixture(scope="session")
def issuer():
    return Issuer()


@pytest.fixture
def config_env():
    """Override per test by updating the dict before `gateway` is requested."""
    return {
        "TOKEN_ISSUER": ISSUER,
        "TOKEN_AUDIENCE": AUDIENCE,
        "MAX_LISTENERS_PER_SESSION": "20",
        "SUPPORTED_LANGUAGES": "en,es,fr,de",
        "MANAGEMENT_API_URL": "https://abcdef1234.execute-api.us-east-1.amazonaws.com/dev",
    }


@pytest.fixture
def config(config_env):
    return Config.from_environ(config_env)


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server over HTTP, the one `make run` starts (same process model,
    same patches): requests from many threads truly overlap, which the in-process
    mock (serialised by the GIL) does not show."""
    from local_stack.moto_server import MotoServer

    with MotoServer(0) as server:
        yield server.url


@pytest.fixture
def backend():
    """Which DynamoDB the test uses; tests about races override it with "server"."""
    return "mock"


@pytest.fixture
def dynamodb(request, backend, config, monkeypatch):
    if backend == "server":
        from local_stack.moto_server import reset

        endpoint = request.getfixturevalue("moto_server")
        reset(endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_tables(client, config)
        yield client
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_tables(client, config)
        yield client


@pytest.fixture
def gateway(dynamodb, config, issuer):
    gw = Gateway(app_module, config)
    gw.runtime.__dict__["verifier"] = TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        token_use="id",
        jwks=JwksCache("http://127.0.0.1:9/jwks.json", 300, fetch=lambda url: issuer.jwks()),
    )
    return gw


@pytest.fixture
def store(gateway):
    return gateway.runtime.store


@pytest.fixture
def speaker(gateway, issuer):
    """A speaker with a fresh session: (connection_id, session_id)."""
    status, body, cid = gateway.connect({**LANG_QUERY, "token": issuer.token("alice")})
    assert status == 200, body
    return cid, gateway.last(cid)["sessionId"]


def join(gateway, session_id, language="es"):
    return gateway.connect({"action": "joinSession", "sessionId": session_id, "targetLanguage": language})
