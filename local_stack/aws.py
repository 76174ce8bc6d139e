"""The AWS endpoint of the local stack: an embedded moto server, and tables.

Clients are plain boto3 clients configured by the environment
(``AWS_ENDPOINT_URL``), exactly as the app's own clients are, so pointing the
stack at LocalStack instead of moto is only a matter of that variable.
"""
from __future__ import annotations

import importlib
import logging
import threading
from typing import List, Mapping, Optional

log = logging.getLogger("local_stack.aws")

_DYNAMODB_LOCK = threading.RLock()


def serialise_moto_dynamodb() -> None:
    """Make moto's DynamoDB handle one request at a time.

    moto's TransactWriteItems deep-copies the tables it touches and, when the
    transaction is cancelled, puts those copies back, undoing every write other
    requests made in between (seen: duplicated sequence numbers, lost counter
    increments). Real DynamoDB isolates transactions; one lock around each moto
    DynamoDB request restores that. Requests from different clients still
    interleave between each other, so races in the app's own read/write
    sequences stay visible.
    """
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_serialised_by_local_stack", False):
        return
    original = DynamoHandler.call_action

    def call_action(self):
        with _DYNAMODB_LOCK:
            return original(self)

    DynamoHandler.call_action = call_action
    DynamoHandler._serialised_by_local_stack = True


class EmbeddedMoto:
    """moto's server in a thread of this process, bound to 127.0.0.1 only."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566):
        from moto.server import ThreadedMotoServer

        serialise_moto_dynamodb()
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.url: Optional[str] = None

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self._server.stop()


def create_tables(environ: Mapping[str, str], schema_module: str = "chalicelib.schema",
                  config_module: str = "chalicelib.config") -> Optional[List[str]]:
    """Create the app's tables where missing, from the app's own schema.

    Uses ``chalicelib.schema.ensure_tables(dynamodb_client, config)``: the one
    definition of the key schemas. Returns None when the app has no schema
    module (a fixture app, say).
    """
    try:
        schema = importlib.import_module(schema_module)
    except ModuleNotFoundError as exc:
        if exc.name and schema_module.startswith(exc.name):
            log.info("no %s: not creating tables", schema_module)
            return None
        raise
    import boto3

    config_cls = importlib.import_module(config_module).Config
    config = config_cls.from_environ(dict(environ))
    client = boto3.session.Session().client("dynamodb")
    created = schema.ensure_tables(client, config)
    return list(created) if created else []
