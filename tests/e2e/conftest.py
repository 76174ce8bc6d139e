"""The real app behind the real local stack: ``python -m local_stack run`` in a
child process on free ports of 127.0.0.1, stopped (SIGINT) at the end.

The stack is started exactly as ``make run`` starts it, with the environment a
user would give it (``MAX_LISTENERS_PER_SESSION=2`` reaches the app).
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local_stack.issuer import LocalIssuer

ROOT = Path(__file__).resolve().parents[2]
BANNER = re.compile(r"ws=(?P<ws>\S+) http=(?P<http>\S+) aws=(?P<aws>\S+)")
# Variables the stack sets for the app: never inherit them from the test run.
_STACK_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_LAMBDA",
                    "MANAGEMENT_API_URL", "JWKS_URL", "TOKEN_ISSUER", "TOKEN_AUDIENCE",
                    "HOST", "PORT", "MOTO_PORT", "LOCAL_STATE_DIR")


#: Every stack log file of this run and every token the tests minted: what the
#: log-privacy test (test_log_privacy.py, run last) greps.
STACK_LOGS: List[Path] = []
ISSUED_TOKENS: List[str] = []


class StackProcess:
    """``python -m local_stack run`` as a child process."""

    def __init__(self, state_dir: Path, log_path: Path, command=None, **env):
        self.state_dir = Path(state_dir)
        self.log_path = log_path
        STACK_LOGS.append(Path(log_path))
        self.command = command or [sys.executable, "-m", "local_stack", "run"]
        self.env = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
        self.env.update({"PORT": "0", "MOTO_PORT": "0", "LOCAL_STATE_DIR": str(self.state_dir),
                         "PYTHONUNBUFFERED": "1"})
        self.env.update(env)
        self.process = None
        self.ws = self.http = self.aws = None
        self.banner = None

    def start(self, timeout: float = 60) -> "StackProcess":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=self._log,
        )
        line = {}
        reader = threading.Thread(target=lambda: line.setdefault("text", self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        text = line.get("text", b"").decode()
        match = BANNER.search(text)
        if not match:
            self.stop()
            raise RuntimeError(f"stack did not start: {text!r}\n{self.log_path.read_text()[-3000:]}")
        self.banner = text.strip()
        self.ws, self.http, self.aws = match["ws"], match["http"], match["aws"]
        return self

    def stop(self, timeout: float = 20) -> int:
        """Ctrl-C, as a user would; returns the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._log.close()
        return self.process.returncode

    # -- helpers for tests -------------------------------------------------

    def token(self, user: str = "alice") -> str:
        token = LocalIssuer(self.state_dir).token(user)
        ISSUED_TOKENS.append(token)
        return token

    def url(self, **query) -> str:
        from urllib.parse import urlencode

        return f"{self.ws}?{urlencode(query)}"

    def connect(self, **query):
        return connect(self.url(**query), open_timeout=10, close_timeout=2)

    def status(self, **query) -> int:
        """The handshake's HTTP status: 101 if accepted (then closed), else the refusal's."""
        try:
            with connect(self.url(**query), open_timeout=10):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    def refusal(self, **query):
        """(status, body) of a refused handshake."""
        with pytest.raises(InvalidStatus) as info:
            with connect(self.url(**query), open_timeout=10):
                pass
        response = info.value.response
        body = bytes(response.body or b"").decode()
        try:
            body = json.loads(body)
        except ValueError:
            pass
        return response.status_code, body


@pytest.fixture
def make_stack_process(tmp_path):
    """Start more stacks (extra environment as keyword arguments); all stopped at the end."""
    started = []

    def make(state_dir=None, **env):
        index = len(started)
        process = StackProcess(state_dir or tmp_path / f"state{index}",
                               tmp_path / f"stack{index}.log", **env)
        started.append(process)
        return process.start()

    yield make
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """One stack for the e2e tests: capacity 2 listeners per session."""
    base = tmp_path_factory.mktemp("stack")
    process = StackProcess(base / "state", base / "stack.log",
                           MAX_LISTENERS_PER_SESSION="2").start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def stack_logs():
    """(log files, tokens): everything the stacks of this run logged so far, and every
    token the tests minted, for the log-privacy grep."""
    return STACK_LOGS, ISSUED_TOKENS
