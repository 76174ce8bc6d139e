"""``python -m broadcast_client``: the reference client, for people.

    python -m broadcast_client speak [--token JWT | --token-command CMD] [--source-language en]
    python -m broadcast_client listen SESSION_ID LANGUAGE [--audio-out FILE [--audio-hold SECONDS]]

The URL defaults to the local stack (``ws://127.0.0.1:8000/dev``; ``--url`` or
``BROADCAST_URL``), the speaker's token comes from ``--token`` or
``BROADCAST_TOKEN``, or from ``--token-command``, run again before every
refresh and reconnect (ID tokens expire: Cognito's after an hour by default).
Token values are never printed. What arrives is printed on stdout as ``< ...`` lines:
readable text on a terminal, the JSON itself otherwise (``--output``); broadcast
messages in ``sequenceNumber`` order, each once (docs/protocol.md, Ordering and
duplicates). Notes (gaps, reconnects) go to stderr. Commands are read from stdin while the client runs (``help`` lists
them; end of input just stops reading). Ctrl-C stops (a speaker ends its
session first).
"""
from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, Dict, List, Optional, TextIO

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .actions import Close, Exit, FetchToken, Open, Print, ReadAudio, Send, WriteAudio
from .commands import LISTENER_HELP, SPEAKER_HELP
from .display import redact
from .ordering import AUDIO_HOLD
from .protocol import ClientProtocol, Role

DEFAULT_URL = "ws://127.0.0.1:8000/dev"
#: How long a --token-command may run.
TOKEN_COMMAND_TIMEOUT = 60.0


async def run_token_command(command: str, timeout: float = TOKEN_COMMAND_TIMEOUT) -> str:
    """Run ``command`` through the shell; its last non-empty stdout line is the token.

    Raises :class:`RuntimeError` saying why when it fails, times out or prints nothing.
    stdin is not passed on: it carries the user's commands.
    """
    try:
        process = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)  # its own group: killable whole
    except OSError as exc:
        raise RuntimeError(f"cannot run it: {exc}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"no token after {timeout:g} s") from None
    finally:
        if process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the shell and what it started
            except ProcessLookupError:
                pass
            await process.wait()
    lines = [line.strip() for line in out.decode("utf-8", "replace").splitlines() if line.strip()]
    if process.returncode != 0 or not lines:
        errors = [line.strip() for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        why = f"exit status {process.returncode}" if process.returncode else "it printed nothing"
        raise RuntimeError(why + (f": {errors[-1]}" if errors else ""))
    return lines[-1]


class Runner:
    """Performs a :class:`ClientProtocol`'s actions with real sockets."""

    def __init__(self, protocol: ClientProtocol, out=None, err=None, *,
                 commands: Optional[TextIO] = None, audio_out: Optional[BinaryIO] = None,
                 token_command: Optional[str] = None):
        self.protocol = protocol
        self.token_command = token_command  # run for every FetchToken
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.commands = commands  # where typed commands come from (stdin)
        self.audio_out = audio_out  # where received audio is written
        self.sockets: Dict[str, ClientConnection] = {}
        self.tasks: List[asyncio.Task] = []
        self.events: asyncio.Queue = asyncio.Queue()

    def read_commands(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand every line of :attr:`commands` to the loop as a command event (a
        daemon thread: blocking reads of a terminal or a pipe cannot be cancelled).
        The end of input only ends the reading; Ctrl-C or ``end`` stop the client."""
        try:
            for line in self.commands:
                loop.call_soon_threadsafe(self.events.put_nowait, ("command", line))
        except (OSError, ValueError, RuntimeError):
            pass  # stdin closed, or the loop is gone: nothing more to read

    def print(self, text: str) -> None:
        stream = self.out if text.startswith("<") or text.startswith("session id") else self.err
        print(redact(text), file=stream, flush=True)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, lambda: self.events.put_nowait(("stop",)))
            loop.add_signal_handler(signal.SIGTERM, lambda: self.events.put_nowait(("stop",)))
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread (tests)
        if self.commands is not None:
            threading.Thread(target=self.read_commands, args=(loop,), daemon=True,
                             name="commands").start()
        try:
            await self.perform(self.protocol.start())
            while self.protocol.done is None:
                wakeup = self.protocol.next_wakeup()
                timeout = None if wakeup is None else max(0.0, wakeup - time.time())
                try:
                    event = await asyncio.wait_for(self.events.get(), timeout)
                except asyncio.TimeoutError:
                    await self.perform(self.protocol.tick(time.time()))
                    continue
                await self.perform(self.dispatch(event))
                await self.perform(self.protocol.tick(time.time()))
        finally:
            for ws in list(self.sockets.values()):
                await ws.close()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        done = self.protocol.done
        self.print(f"{'' if done.code == 0 else '! '}{done.reason}")
        return done.code

    def dispatch(self, event) -> list:
        now = time.time()
        kind = event[0]
        if kind == "stop":
            return self.protocol.stop(now)
        if kind == "command":
            return self.protocol.command(event[1], now)
        key = event[1]
        if kind == "opened":
            return self.protocol.opened(key, now)
        if kind == "message":
            return self.protocol.received(key, event[2], now)
        if kind == "closed":
            self.sockets.pop(key, None)
            return self.protocol.closed(key, event[2], now)
        if kind == "refused":
            return self.protocol.refused(key, event[2], event[3], now)
        if kind == "failed":
            return self.protocol.failed(key, event[2], now, nothing_listening=event[3])
        if kind == "token":
            return self.protocol.token_ready(key, event[2], now)
        if kind == "token_failed":
            return self.protocol.token_failed(key, event[2], now)
        return []

    async def perform(self, actions) -> None:
        for action in actions:
            if isinstance(action, Print):
                self.print(action.text)
            elif isinstance(action, Open):
                self.tasks.append(asyncio.create_task(self.socket(action)))
            elif isinstance(action, FetchToken):
                self.tasks.append(asyncio.create_task(self.fetch_token(action)))
            elif isinstance(action, Send):
                ws = self.sockets.get(action.key)
                if ws is not None:
                    try:
                        await ws.send(action.text)
                    except ConnectionClosed:
                        pass  # the close event follows
            elif isinstance(action, Close):
                ws = self.sockets.get(action.key)
                if ws is not None:
                    await ws.close(action.code)
            elif isinstance(action, ReadAudio):
                try:
                    data = Path(action.path).expanduser().read_bytes()
                except OSError as exc:
                    await self.perform(self.protocol.audio_unreadable(action.path, exc.strerror or str(exc)))
                    continue
                await self.perform(self.protocol.audio(data, time.time(), audio_format=action.format,
                                                       what=action.path))
            elif isinstance(action, WriteAudio):
                if self.audio_out is not None:
                    self.audio_out.write(action.data)
                    self.audio_out.flush()
            elif isinstance(action, Exit):
                return

    async def fetch_token(self, action: FetchToken) -> None:
        """Run the token command for ``action`` and report the token as an event."""
        if action.delay:
            await asyncio.sleep(action.delay)
        if not self.token_command:
            await self.events.put(("token_failed", action.key, "no --token-command given"))
            return
        try:
            token = await run_token_command(self.token_command)
        except RuntimeError as exc:
            await self.events.put(("token_failed", action.key, str(exc)))
            return
        await self.events.put(("token", action.key, token))

    async def socket(self, action: Open) -> None:
        """Open one socket and report what happens to it as events."""
        if action.delay:
            await asyncio.sleep(action.delay)
        key = action.key
        try:
            ws = await connect(action.url, open_timeout=10, max_size=None)
        except InvalidStatus as exc:
            response = exc.response
            body = bytes(response.body or b"").decode("utf-8", "replace")
            await self.events.put(("refused", key, response.status_code, body))
            return
        except ConnectionRefusedError as exc:
            await self.events.put(("failed", key, f"{type(exc).__name__}: {exc}", True))
            return
        except (OSError, asyncio.TimeoutError, Exception) as exc:  # noqa: B014
            await self.events.put(("failed", key, f"{type(exc).__name__}: {exc}", False))
            return
        self.sockets[key] = ws
        await self.events.put(("opened", key))
        code = None
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                await self.events.put(("message", key, text))
        except ConnectionClosed:
            pass
        finally:
            if ws.close_code is not None:
                code = ws.close_code
            await self.events.put(("closed", key, code))


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, 0 or more: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m broadcast_client", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reference client of docs/protocol.md: speak (create a session and broadcast) "
                    "or listen (join one in a language). Type commands while it runs.",
        epilog=f"speak {SPEAKER_HELP}\n\nlisten {LISTENER_HELP}")
    parser.add_argument("--url", default=os.environ.get("BROADCAST_URL", DEFAULT_URL),
                        help=f"WebSocket endpoint with stage (default {DEFAULT_URL})")
    parser.add_argument("--heartbeat-interval", type=float, default=30.0,
                        help="seconds between heartbeats (default 30)")
    parser.add_argument("--output", choices=("auto", "text", "json"), default="auto",
                        help="how received messages are printed: readable text, or each JSON "
                             "message as is (default auto: text on a terminal, json otherwise)")
    sub = parser.add_subparsers(dest="command", required=True)
    speak = sub.add_parser("speak", help="create a session, then type commands (help lists them)",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SPEAKER_HELP)
    speak.add_argument("--token", default=os.environ.get("BROADCAST_TOKEN") or None,
                       help="speaker ID token (default $BROADCAST_TOKEN); used as is for every "
                            "connection unless --token-command is given")
    speak.add_argument("--token-command", metavar="CMD",
                       help="shell command printing a fresh speaker ID token on its last stdout "
                            "line; run before every connection refresh and reconnect (tokens "
                            "expire, Cognito's after 1 hour by default), and for the first "
                            "connection when no --token is given. E.g. "
                            "'.venv/bin/python -m local_stack token alice'")
    speak.add_argument("--source-language", default="en")
    speak.add_argument("--quality-tier", choices=("standard", "premium"))
    listen = sub.add_parser("listen", help="join a session in a language and print what arrives",
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=LISTENER_HELP)
    listen.add_argument("session_id")
    listen.add_argument("language")
    listen.add_argument("--max-reconnects", type=int, default=8)
    listen.add_argument("--audio-out", metavar="FILE",
                        help="write the audio received (decoded, in the speaker's chunk order) to FILE")
    listen.add_argument("--audio-hold", metavar="SECONDS", type=_seconds, default=AUDIO_HOLD,
                        help=f"how long received audio waits for an earlier chunk that is missing "
                             f"(concurrent sendAudio calls can deliver chunks out of order) before "
                             f"skipping it; a skipped chunk is not written if it comes later "
                             f"(default {AUDIO_HOLD:g}, as the browser player). A recording favours "
                             f"completeness over latency: give it a few seconds, e.g. 5")
    return parser


def _output(args, stream) -> str:
    if args.output != "auto":
        return args.output
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def build_protocol(args, output: str = "json") -> ClientProtocol:
    if args.command == "speak":
        return ClientProtocol(url=args.url, role=Role.SPEAKER, token=args.token,
                              fresh_tokens=bool(args.token_command),
                              source_language=args.source_language,
                              quality_tier=args.quality_tier,
                              heartbeat_interval=args.heartbeat_interval, output=output)
    return ClientProtocol(url=args.url, role=Role.LISTENER, session_id=args.session_id,
                          target_language=args.language,
                          heartbeat_interval=args.heartbeat_interval,
                          max_reconnects=args.max_reconnects, output=output,
                          audio_out=bool(getattr(args, "audio_out", None)),
                          audio_hold=args.audio_hold)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    audio_out = None
    if getattr(args, "audio_out", None):
        try:
            audio_out = open(args.audio_out, "wb")
        except OSError as exc:
            print(f"! cannot write {args.audio_out}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        runner = Runner(build_protocol(args, _output(args, sys.stdout)),
                        commands=sys.stdin, audio_out=audio_out,
                        token_command=getattr(args, "token_command", None))
        return asyncio.run(runner.run())
    except KeyboardInterrupt:
        return 130
    finally:
        if audio_out is not None:
            audio_out.close()
