"""The reference client's command line: token command, redaction, `make speak`/`listen`."""
import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from broadcast_client.cli import _parser, build_protocol, run_token_command
from broadcast_client.ordering import AUDIO_HOLD

ROOT = Path(__file__).resolve().parents[2]


def client(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "broadcast_client", *args], cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if k != "BROADCAST_TOKEN"},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


class TestRedaction:
    def test_a_malformed_url_is_reported_without_the_token(self):
        """The error quotes the URL it could not use, with token=*** instead of the JWT."""
        result = client("--url", "http://127.0.0.1:1/dev", "speak", "--token", "SECRET.JWT.VALUE")
        assert result.returncode == 1
        assert "SECRET" not in result.stdout + result.stderr
        assert "token=***" in result.stderr

    def test_a_failing_token_command_is_reported_without_the_token(self):
        """The token command's own complaint reaches the user, but never a token= value."""
        result = client("--url", "ws://127.0.0.1:1/dev", "speak", "--token-command",
                        "echo 'bad: token=SECRET.A.B' >&2; exit 3")
        assert result.returncode == 1
        assert "token command failed: exit status 3" in result.stderr
        assert "SECRET" not in result.stdout + result.stderr


class TestTokenCommand:
    def test_help_documents_it(self, capsys):
        with pytest.raises(SystemExit):
            _parser().parse_args(["speak", "--help"])
        text = capsys.readouterr().out
        assert "--token-command CMD" in text and "refresh" in text and "reconnect" in text

    def test_the_last_stdout_line_is_the_token(self):
        assert asyncio.run(run_token_command("echo '# note'; echo; echo ' a.b.c '; echo")) == "a.b.c"

    @pytest.mark.parametrize("command,why", [
        ("echo oops >&2; exit 2", "exit status 2: oops"),
        ("true", "it printed nothing"),
    ])
    def test_failures_say_why(self, command, why):
        with pytest.raises(RuntimeError, match=why):
            asyncio.run(run_token_command(command))

    def test_a_hanging_command_times_out(self):
        with pytest.raises(RuntimeError, match="no token after"):
            asyncio.run(run_token_command("sleep 30", timeout=0.5))


class TestAudioHold:
    def test_default_is_the_browser_players_hold(self):
        args = _parser().parse_args(["listen", "faithful-shepherd-427", "es", "--audio-out", "x.pcm"])
        assert args.audio_hold == AUDIO_HOLD == 0.3
        assert build_protocol(args).audio_hold == AUDIO_HOLD

    def test_the_option_sets_how_long_audio_waits_for_an_earlier_chunk(self):
        """--audio-hold 5 reaches the protocol: the first chunk written waits 5 s for
        earlier ones (a recording favours completeness over latency)."""
        args = _parser().parse_args(["listen", "faithful-shepherd-427", "es", "--audio-out", "x.pcm",
                                     "--audio-hold", "5"])
        assert args.audio_hold == 5.0
        protocol = build_protocol(args)
        assert protocol.audio_hold == 5.0
        [action] = protocol.start()
        key = action.key
        protocol.opened(key, 100.0)
        protocol.received(key, '{"type": "sessionJoined", "sessionId": "faithful-shepherd-427", '
                               '"targetLanguage": "es", "sequenceNumber": 0}', 100.0)
        protocol.received(key, '{"type": "audio", "sequenceNumber": 1, "targetLanguage": "es", '
                               '"speakerSequenceNumber": 2, "audioData": "AQA="}', 100.0)
        assert protocol.next_wakeup() == pytest.approx(105.0)  # before the heartbeat (130)

    @pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
    def test_a_bad_value_is_refused_with_a_clear_error(self, value, capsys):
        with pytest.raises(SystemExit) as exc:
            _parser().parse_args(["listen", "faithful-shepherd-427", "es", "--audio-hold", value])
        assert exc.value.code == 2
        assert "argument --audio-hold:" in capsys.readouterr().err

    def test_help_documents_it(self, capsys):
        with pytest.raises(SystemExit):
            _parser().parse_args(["listen", "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--audio-hold SECONDS" in text and "(default 0.3" in text
        assert "completeness over latency" in text


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
class TestMakeSpeak:
    def dry_run(self, *args):
        # Run as a user would, not as a sub-make of `make test` (which would print
        # "Entering/Leaving directory" lines and pass down its own flags).
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        result = subprocess.run(["make", "--no-print-directory", "-n", "speak", *args], cwd=ROOT,
                                capture_output=True, text=True, timeout=60, check=True, env=env)
        return result.stdout.strip().splitlines()[-1]

    def test_without_token_speak_mints_its_own_for_every_connection(self):
        line = self.dry_run("USER=bob")
        assert "--token-command" in line and "-m local_stack token bob" in line
        assert "BROADCAST_TOKEN= " in line  # a stale exported token does not win

    def test_a_given_token_is_used(self):
        line = self.dry_run("TOKEN=abc.def.ghi")
        assert 'BROADCAST_TOKEN="abc.def.ghi"' in line and "--token-command" not in line


def free_port():
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
class TestMakeWithoutAStack:
    @pytest.mark.parametrize("target", [["listen", "SESSION=faithful-shepherd-427", "LANG=es"],
                                        ["speak", "TOKEN=a.b.c"]])
    def test_says_nothing_listens_at_the_url_and_suggests_make_run(self, target):
        """`make listen`/`make speak` with no stack: the URL tried, `make run`, PORT/WS_URL;
        not a bare ConnectionRefusedError, and never the token."""
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "WS_URL", "HOST", "BROADCAST_TOKEN")}
        result = subprocess.run(["make", "--no-print-directory", *target, f"PORT={port}"], cwd=ROOT,
                                env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode != 0
        assert f"! cannot connect: nothing is listening at ws://127.0.0.1:{port}/dev" in result.stderr
        assert "Start it with `make run`" in result.stderr and "WS_URL=" in result.stderr
        assert "Errno" not in result.stderr and "a.b.c" not in result.stderr
