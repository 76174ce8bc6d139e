"""``python -m local_stack run``'s start-up: the gateway's and the embedded moto's ports and addresses."""
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from local_stack import runner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port():
    """A port of 127.0.0.1 some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        yield other.getsockname()[1]


def test_run_exits_with_a_message_when_the_moto_port_is_taken(taken_port, tmp_path):
    """`make run` with MOTO_PORT taken prints why and exits 1 instead of hanging."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "HOST")}
    env.update(PORT="0", MOTO_PORT=str(taken_port), LOCAL_STATE_DIR=str(tmp_path / "state"))
    try:
        result = subprocess.run([sys.executable, "-m", "local_stack", "run"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("python -m local_stack run hung with MOTO_PORT taken")
    assert result.returncode == 1
    assert "MOTO_PORT" in result.stderr and "AWS_ENDPOINT_URL" in result.stderr
    assert "local stack ready" not in result.stdout


def test_run_exits_with_a_message_when_the_gateway_port_is_taken(taken_port, tmp_path):
    """`make run` with PORT taken names the address, PORT and what to do, not a bare
    '[Errno 98] Address already in use'."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "HOST")}
    env.update(PORT=str(taken_port), MOTO_PORT="0", LOCAL_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run([sys.executable, "-m", "local_stack", "run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot start the gateway on 127.0.0.1:{taken_port} (Address already in use)" in result.stderr
    assert "set PORT to a free port (PORT=0 picks one)" in result.stderr
    assert "[Errno" not in result.stderr
    assert "local stack ready" not in result.stdout


def test_a_host_that_is_not_this_machines_is_named_with_the_variable_to_change(monkeypatch):
    """A bind refused for the address itself says to change HOST (no socket is bound)."""
    def refuse(self, address):
        raise OSError(99, "Cannot assign requested address")

    monkeypatch.setattr(runner.socket.socket, "bind", refuse)
    with pytest.raises(runner.GatewayAddressError) as info:
        runner.bind("192.0.2.10", 8000)
    assert "cannot start the gateway on 192.0.2.10:8000" in info.value.strerror
    assert "set HOST to an address of this machine" in info.value.strerror


class TestHost:
    @pytest.mark.parametrize("host,loopback", [
        ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
        ("0.0.0.0", False), ("::", False), ("192.0.2.10", False),
    ])
    def test_is_loopback(self, host, loopback):
        assert runner.is_loopback(host) is loopback

    def test_moto_stays_on_127_0_0_1_and_a_network_host_is_warned_about(
            self, make_stack, monkeypatch, caplog):
        """HOST=0.0.0.0: a warning names the exposure; the embedded moto still listens
        on 127.0.0.1 only. (The gateway's socket is bound to 127.0.0.1 here too, so the
        test exposes nothing.)"""
        real_bind = runner.bind
        monkeypatch.setattr(runner, "bind", lambda host, port: real_bind("127.0.0.1", port))
        caplog.set_level(logging.WARNING, logger="local_stack")
        stack = make_stack(host="0.0.0.0", aws_endpoint_url=None, moto_port=0)
        assert stack.stack.aws_url.startswith("http://127.0.0.1:")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("HOST=0.0.0.0" in w and "Lambda Invoke API" in w for w in warnings), warnings

    def test_no_warning_on_loopback(self, caplog, make_stack):
        caplog.set_level(logging.WARNING, logger="local_stack")
        make_stack(host="127.0.0.1")
        assert not [r for r in caplog.records
                    if r.levelno >= logging.WARNING and "HOST=" in r.getMessage()]
