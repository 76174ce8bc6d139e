"""The AWS endpoint of the local stack: an embedded moto server, and tables.

Clients are plain boto3 clients configured by the environment
(``AWS_ENDPOINT_URL``), exactly as the app's own clients are, so pointing the
stack at LocalStack instead of moto is only a matter of that variable.
"""
from __future__ import annotations

import importlib
import logging
import socket
import threading
import time
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


def _untracked_new(cls, *args, **kwargs):
    return object.__new__(cls)


def untrack_moto_dynamodb_models() -> None:
    """Stop moto from keeping every DynamoDB object it ever created.

    moto's ``BaseModel.__new__`` appends each new model object to its class's
    ``instances_tracked`` list (for the ``/moto-api/data.json`` dashboard) and
    nothing ever removes it, so no ``Item``, ``Table`` or index moto creates is
    ever freed. ``TransactWriteItems`` deep-copies every table it touches, every
    item and index in it, to roll back on failure (moto 5.2.5,
    ``DynamoDBBackend.transact_write_items``): each copy is retained this way,
    as is every item ever written and deleted. A join and a leave (two
    transactions over the Sessions and Connections tables) kept about 40 KB for
    good; ``make run`` grew by 60 MiB per 1,500 joins (``make bench`` measures
    it). DynamoDB's model classes get a ``__new__`` that does not track:
    nothing else in moto reads these lists, the objects are freed once moto
    drops them, and the dashboard no longer lists DynamoDB objects.
    """
    import moto.dynamodb.models  # noqa: F401  (defines and registers the classes)
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import model_data

    for cls in list(model_data["dynamodb"].values()):
        if cls.__new__ is BaseModel.__new__:
            cls.__new__ = staticmethod(_untracked_new)
        cls.instances_tracked.clear()


#: The embedded moto listens here only: it holds the app's state and accepts
#: any credentials, so it is never exposed, whatever HOST the gateway uses.
MOTO_HOST = "127.0.0.1"
#: How long :meth:`EmbeddedMoto.start` waits for moto's thread to serve.
MOTO_START_TIMEOUT = 30.0


class MotoPortInUse(OSError):
    """The embedded moto's port cannot be bound."""


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` and let it go again; raise :class:`MotoPortInUse` if taken.

    Port 0 (any free port) always passes. Binds as the server will
    (``SO_REUSEADDR``), so a port in TIME_WAIT counts as free.
    """
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise MotoPortInUse(
            exc.errno,
            f"cannot start the embedded moto on {host}:{port} ({exc.strerror or exc}): "
            f"set MOTO_PORT to a free port (0 picks one), or AWS_ENDPOINT_URL to an AWS "
            f"endpoint that is already running (LocalStack, say) instead",
        ) from None
    finally:
        probe.close()


class EmbeddedMoto:
    """moto's server in a thread of this process, bound to 127.0.0.1 only."""

    def __init__(self, port: int = 4566, *, start_timeout: float = MOTO_START_TIMEOUT):
        from moto.server import ThreadedMotoServer

        serialise_moto_dynamodb()
        untrack_moto_dynamodb_models()
        self.port = port
        self.start_timeout = start_timeout
        self._server = ThreadedMotoServer(ip_address=MOTO_HOST, port=port, verbose=False)
        self.url: Optional[str] = None

    def start(self) -> str:
        """Serve, or raise :class:`OSError` (never wait without limit).

        ``ThreadedMotoServer.start()`` waits forever when the bind fails in its
        thread; so the port is checked first, and the server's thread is
        started here and watched: dead, or not serving after
        :attr:`start_timeout` seconds, is an error.
        """
        check_port_free(MOTO_HOST, self.port)
        server = self._server
        thread = threading.Thread(target=self._serve, daemon=True, name="moto")
        server._thread = thread
        thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not server._server_ready_event.wait(0.05):
            if not thread.is_alive():
                raise MotoPortInUse(
                    self._failure.errno if isinstance(self._failure, OSError) else None,
                    f"the embedded moto could not start on {MOTO_HOST}:{self.port} "
                    f"({self._failure}): set MOTO_PORT to a free port (0 picks one), or "
                    f"AWS_ENDPOINT_URL to an AWS endpoint that is already running instead")
            if time.monotonic() > deadline:
                raise OSError(f"the embedded moto did not start within {self.start_timeout:g} s")
        host, port = server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    _failure: Optional[BaseException] = None

    def _serve(self) -> None:
        try:
            self._server._server_entry()
        except BaseException as exc:  # reported by start()
            self._failure = exc

    def stop(self) -> None:
        server = self._server
        if server._server is not None:
            server._server.shutdown()
        if server._thread is not None:
            server._thread.join(10)


def create_tables(environ: Mapping[str, str], schema_module: str = "chalicelib.state.schema",
                  config_module: str = "chalicelib.config") -> Optional[List[str]]:
    """Create the app's tables where missing, from the app's own schema.

    Uses ``chalicelib.state.schema.ensure_tables(dynamodb_client, config)``: the one
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
