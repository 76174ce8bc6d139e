"""End to end: the local stack as a user runs it (tokens, timeouts, clients, Ctrl-C)."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def read_until(process, predicate, timeout=10.0):
    """Read the child's stdout lines until one satisfies ``predicate``."""
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline().decode()
            if not line:
                break
            lines.append(line)
            if predicate(line):
                return line, lines
    raise AssertionError(f"no matching line in {lines!r}")


def token_cli(state_dir, user="alice"):
    env = {**os.environ, "LOCAL_STATE_DIR": str(state_dir)}
    result = subprocess.run([sys.executable, "-m", "local_stack", "token", user], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def short_idle_stack(tmp_path, make_stack_process):
    """A stack whose gateway closes connections idle for 2 s. A token is minted
    with the CLI *before* it starts, on a fresh key folder."""
    state = tmp_path / "fresh-state"
    token = token_cli(state)
    process = make_stack_process(state, GATEWAY_IDLE_TIMEOUT_SECONDS="2")
    process.minted_before_start = token
    return process


class TestStack:
    def test_token_minted_before_the_stack_started_is_accepted(self, short_idle_stack):
        """`make token` works whether or not the stack is running: same key file."""
        stack = short_idle_stack
        with stack.connect(action="createSession", sourceLanguage="en",
                           token=stack.minted_before_start) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "sessionCreated"

    def test_token_minted_while_running_is_accepted(self, stack):
        """A token minted by the CLI against a running stack's key folder works."""
        token = token_cli(stack.state_dir, "carol")
        with stack.connect(action="createSession", sourceLanguage="en", token=token) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "sessionCreated"

    def test_idle_listener_is_closed_with_1001(self, short_idle_stack):
        """A listener silent for the idle timeout is closed with 1001 (the speaker heartbeats)."""
        stack = short_idle_stack
        with ExitStack() as sockets:
            speaker = sockets.enter_context(stack.connect(
                action="createSession", sourceLanguage="en", token=stack.token()))
            session_id = json.loads(speaker.recv(timeout=5))["sessionId"]
            listener = sockets.enter_context(stack.connect(
                action="joinSession", sessionId=session_id, targetLanguage="es"))
            assert json.loads(listener.recv(timeout=5))["type"] == "sessionJoined"
            deadline = time.monotonic() + 10
            with pytest.raises(ConnectionClosed) as info:
                while time.monotonic() < deadline:
                    speaker.send(json.dumps({"action": "heartbeat"}))
                    speaker.recv(timeout=5)
                    try:
                        listener.recv(timeout=0.3)
                    except TimeoutError:
                        pass
            assert info.value.rcvd.code == 1001
            speaker.send(json.dumps({"action": "heartbeat"}))
            assert json.loads(speaker.recv(timeout=5))["type"] == "heartbeatAck"

    def test_idle_speaker_is_closed_and_the_session_ends(self, short_idle_stack):
        """A silent speaker is closed with 1001, which ends its session."""
        stack = short_idle_stack
        with stack.connect(action="createSession", sourceLanguage="en", token=stack.token()) as speaker:
            session_id = json.loads(speaker.recv(timeout=5))["sessionId"]
            with pytest.raises(ConnectionClosed) as info:
                speaker.recv(timeout=10)
            assert info.value.rcvd.code == 1001
        deadline = time.monotonic() + 5
        while stack.status(action="joinSession", sessionId=session_id, targetLanguage="es") != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)

    def test_ctrl_c_stops_everything(self, make_stack_process):
        """SIGINT stops the stack with status 0, even with open sockets, and frees its ports."""
        process = make_stack_process()
        assert "embedded moto" in process.banner
        port = int(process.http.rsplit(":", 1)[1])
        aws_port = int(process.aws.rsplit(":", 1)[1])
        with process.connect(action="createSession", sourceLanguage="en",
                             token=process.token()) as speaker:
            assert json.loads(speaker.recv(timeout=5))["type"] == "sessionCreated"
            assert process.stop() == 0  # with a connection still open
            with pytest.raises(ConnectionClosed):
                speaker.recv(timeout=5)
        for p in (port, aws_port):
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", p)) != 0

    def test_second_ctrl_c_exits_at_once(self, make_stack_process):
        """While the first Ctrl-C waits for a handler that takes a minute, a second
        Ctrl-C exits at once with status 130, saying so."""
        fixture = ROOT / "tests" / "local_stack"
        process = make_stack_process(LOCAL_APP=str(fixture / "fixture_app.py"),
                                     LOCAL_APP_DIR=str(fixture))
        with process.connect() as ws:
            ws.send("sleep 120")
            wait_for_log(process, "connected")
            time.sleep(0.5)  # the handler is asleep in the thread pool
            process.process.send_signal(signal.SIGINT)
            wait_for_log(process, "Ctrl-C again")
            process.process.send_signal(signal.SIGINT)
            try:
                assert process.process.wait(20) == 130
            except subprocess.TimeoutExpired:
                pytest.fail("a second Ctrl-C did not stop the stack")
        assert "exiting at once" in process.log_path.read_text()


def wait_for_log(process, text, timeout=20.0):
    deadline = time.monotonic() + timeout
    while text not in process.log_path.read_text():
        assert time.monotonic() < deadline, f"{text!r} not logged: {process.log_path.read_text()[-2000:]}"
        time.sleep(0.05)


class TestClients:
    def test_speak_and_listen(self, stack):
        """`speak` prints a session id; `listen` joins it and ends cleanly when the speaker stops."""
        env = {**os.environ, "BROADCAST_URL": stack.ws, "BROADCAST_TOKEN": stack.token("alice")}
        command = [sys.executable, "-m", "broadcast_client", "--heartbeat-interval", "0.5"]
        speaker = subprocess.Popen(command + ["speak"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        listener = None
        try:
            line, _ = read_until(speaker, lambda l: l.startswith("session id:"))
            session_id = line.split(":", 1)[1].strip()
            listener = subprocess.Popen(command + ["listen", session_id, "es"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            read_until(listener, lambda l: '"sessionJoined"' in l)
            read_until(listener, lambda l: '"heartbeatAck"' in l)
            speaker.send_signal(signal.SIGINT)
            read_until(listener, lambda l: '"sessionEnded"' in l)
            assert listener.wait(10) == 0
            assert speaker.wait(10) == 0
        finally:
            for process in (speaker, listener):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
                if process is not None:
                    process.stdout.close()
                    process.stderr.close()

    def test_ctrl_c_on_speak_ends_the_session_even_with_a_reconnect_grace(self, make_stack_process):
        """With SPEAKER_RECONNECT_GRACE_SECONDS > 0, Ctrl-C on speak still ends the session
        (speakerEnded) at once: the client waits for sessionEnded before closing, so its
        $disconnect cannot start the grace first."""
        stack = make_stack_process(SPEAKER_RECONNECT_GRACE_SECONDS="30")
        env = {**os.environ, "BROADCAST_URL": stack.ws, "BROADCAST_TOKEN": stack.token("alice")}
        speaker = subprocess.Popen([sys.executable, "-m", "broadcast_client", "--heartbeat-interval", "0.5",
                                    "speak"], cwd=ROOT,
                                   env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            line, _ = read_until(speaker, lambda l: l.startswith("session id:"))
            session_id = line.split(":", 1)[1].strip()
            with stack.connect(action="joinSession", sessionId=session_id, targetLanguage="es") as listener:
                assert json.loads(listener.recv(timeout=5))["type"] == "sessionJoined"
                speaker.send_signal(signal.SIGINT)
                received = []
                with pytest.raises(ConnectionClosed):
                    while True:
                        received.append(json.loads(listener.recv(timeout=10)))
            types = [m["type"] for m in received]
            assert "speakerDisconnected" not in types, types
            assert [m["reason"] for m in received if m["type"] == "sessionEnded"] == ["speakerEnded"]
            read_until(speaker, lambda l: '"sessionEnded"' in l)
            assert speaker.wait(10) == 0
        finally:
            if speaker.poll() is None:
                speaker.kill()
                speaker.wait()
            speaker.stdout.close()
            speaker.stderr.close()

    def test_make_token_prints_the_token_last(self, tmp_path):
        """`make token USER=alice` prints a token alone on its last stdout line."""
        stamp = ROOT / ".venv" / ".installed"
        requirements = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]
        if not stamp.exists() or any(r.stat().st_mtime > stamp.stat().st_mtime for r in requirements):
            pytest.skip("the venv stamp is missing or stale; `make venv` first")
        env = {**os.environ, "LOCAL_STATE_DIR": str(tmp_path / "state")}
        result = subprocess.run(["make", "-s", "token", "USER=alice"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120, check=True)
        last = result.stdout.strip().splitlines()[-1]
        assert last.count(".") == 2 and " " not in last
