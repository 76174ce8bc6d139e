"""End to end: the app's scheduled sweep and the clients' refresh, with shrunk timers.

The gateway runs ``@app.schedule`` functions every 0.5 s here
(GATEWAY_SCHEDULE_PERIOD_SECONDS), and the app's timers are shrunk through the
environment given to the stack, as a user would with ``make run``.
"""
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


@pytest.fixture
def fast_stack(make_stack_process):
    return make_stack_process(
        GATEWAY_SCHEDULE_PERIOD_SECONDS="0.5",
        CONNECTION_REFRESH_MINUTES="0.03",  # 1.8 s
        CONNECTION_WARNING_MINUTES="5",
        CONNECTION_MAX_DURATION_MINUTES="10",
        HEARTBEAT_INTERVAL_SECONDS="0.5",
        HEARTBEAT_TIMEOUT_SECONDS="3",
    )


def lines_until(process, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline().decode()
            if not line:
                break
            seen.append(line)
            if predicate(line):
                return seen
    raise AssertionError(f"no matching line in {seen!r}")


class TestScheduledSweep:
    def test_silent_listener_is_closed_by_the_sweep(self, fast_stack):
        """The scheduled sweep runs: a silent listener gets connectionClosed and close 1000."""
        stack = fast_stack
        with stack.connect(action="createSession", sourceLanguage="en", token=stack.token()) as speaker:
            session_id = json.loads(speaker.recv(timeout=5))["sessionId"]
            with stack.connect(action="joinSession", sessionId=session_id, targetLanguage="es") as listener:
                received = []
                deadline = time.monotonic() + 15
                with pytest.raises(ConnectionClosed) as info:
                    while time.monotonic() < deadline:
                        speaker.send(json.dumps({"action": "heartbeat"}))
                        try:
                            received.append(json.loads(listener.recv(timeout=0.3)))
                        except TimeoutError:
                            pass
                assert info.value.rcvd.code == 1000
                types = [m["type"] for m in received]
                assert "connectionClosed" in types, types
                closed = next(m for m in received if m["type"] == "connectionClosed")
                assert closed["reason"] == "heartbeatTimeout"


class TestClientRefresh:
    def test_speaker_and_listener_refresh_and_keep_the_session(self, fast_stack):
        """Both clients follow connectionRefreshRequired; the session survives the old sockets."""
        stack = fast_stack
        env = {**os.environ, "BROADCAST_URL": stack.ws, "BROADCAST_TOKEN": stack.token("alice")}
        command = [sys.executable, "-m", "broadcast_client", "--heartbeat-interval", "0.5"]
        processes = []
        try:
            speaker = subprocess.Popen(command + ["speak"], cwd=ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            processes.append(speaker)
            seen = lines_until(speaker, lambda l: l.startswith("session id:"))
            session_id = seen[-1].split(":", 1)[1].strip()
            listener = subprocess.Popen(command + ["listen", session_id, "es"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            processes.append(listener)
            lines_until(listener, lambda l: '"connectionRefreshComplete"' in l)
            lines_until(speaker, lambda l: '"connectionRefreshComplete"' in l)
            # Still alive on the new sockets: heartbeats keep being answered.
            lines_until(listener, lambda l: '"heartbeatAck"' in l)
            lines_until(speaker, lambda l: '"heartbeatAck"' in l)
            speaker.send_signal(signal.SIGINT)
            lines_until(listener, lambda l: '"sessionEnded"' in l)
            assert listener.wait(10) == 0
            assert speaker.wait(10) == 0
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                process.stdout.close()
                process.stderr.close()


@pytest.fixture
def slow_refresh_stack(make_stack_process):
    """Connections are asked to refresh at 7.2 s: past a 1 s token's expiry and the
    app's 5 s clock-skew leeway."""
    return make_stack_process(
        GATEWAY_SCHEDULE_PERIOD_SECONDS="0.5",
        CONNECTION_REFRESH_MINUTES="0.12",
        CONNECTION_WARNING_MINUTES="5",
        CONNECTION_MAX_DURATION_MINUTES="10",
        HEARTBEAT_INTERVAL_SECONDS="0.5",
    )


class TestTokenCommand:
    def test_speak_survives_a_refresh_after_its_first_token_expired(self, slow_refresh_stack, tmp_path):
        """`speak --token-command` mints a token for the first connection and a fresh one
        for the refresh: the refresh completes although the first token had expired, and
        the session carries on."""
        import shlex

        import jwt

        stack = slow_refresh_stack
        minted = tmp_path / "tokens.txt"
        token_command = (f"{shlex.quote(sys.executable)} -m local_stack token alice --ttl 1"
                         f" | tee -a {shlex.quote(str(minted))}")
        env = {k: v for k, v in os.environ.items() if k != "BROADCAST_TOKEN"}
        env.update(BROADCAST_URL=stack.ws, LOCAL_STATE_DIR=str(stack.state_dir))
        speaker = subprocess.Popen(
            [sys.executable, "-m", "broadcast_client", "--heartbeat-interval", "0.5", "speak",
             "--token-command", token_command],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lines_until(speaker, lambda l: l.startswith("session id:"))
            seen = lines_until(speaker, lambda l: '"connectionRefreshComplete"' in l, timeout=30)
            complete = json.loads(seen[-1][2:])
            lines_until(speaker, lambda l: '"heartbeatAck"' in l)  # alive on the new socket
            tokens = [t for t in minted.read_text().split() if t.count(".") == 2]
            assert len(tokens) >= 2, "no fresh token for the refresh"
            first_exp = jwt.decode(tokens[0], options={"verify_signature": False})["exp"]
            # The first token was no longer valid, leeway included, when the refresh completed.
            assert (first_exp + 5) * 1000 < complete["timestamp"]
            speaker.send_signal(signal.SIGINT)
            lines_until(speaker, lambda l: '"sessionEnded"' in l)
            assert speaker.wait(10) == 0
        finally:
            if speaker.poll() is None:
                speaker.kill()
                speaker.wait()
            speaker.stdout.close()
            speaker.stderr.close()
