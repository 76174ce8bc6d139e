"""``python -m broadcast_client``: the reference client, for people.

    python -m broadcast_client speak [--token JWT] [--source-language en]
    python -m broadcast_client listen SESSION_ID LANGUAGE

The URL defaults to the local stack (``ws://127.0.0.1:8000/dev``; ``--url`` or
``BROADCAST_URL``), the speaker's token comes from ``--token`` or
``BROADCAST_TOKEN``. What arrives is printed as ``< {json}`` lines; notes go
to stderr. Ctrl-C stops (a speaker ends its session first).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from typing import Dict, List, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .protocol import ClientProtocol, Close, Exit, Open, Print, Role, Send

DEFAULT_URL = "ws://127.0.0.1:8000/dev"


class Runner:
    """Performs a :class:`ClientProtocol`'s actions with real sockets."""

    def __init__(self, protocol: ClientProtocol, out=None, err=None):
        self.protocol = protocol
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.sockets: Dict[str, ClientConnection] = {}
        self.tasks: List[asyncio.Task] = []
        self.events: asyncio.Queue = asyncio.Queue()

    def print(self, text: str) -> None:
        stream = self.out if text.startswith("<") or text.startswith("session id") else self.err
        print(text, file=stream, flush=True)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, lambda: self.events.put_nowait(("stop",)))
            loop.add_signal_handler(signal.SIGTERM, lambda: self.events.put_nowait(("stop",)))
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread (tests)
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
            return self.protocol.stop()
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
            return self.protocol.failed(key, event[2], now)
        return []

    async def perform(self, actions) -> None:
        for action in actions:
            if isinstance(action, Print):
                self.print(action.text)
            elif isinstance(action, Open):
                self.tasks.append(asyncio.create_task(self.socket(action)))
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
            elif isinstance(action, Exit):
                return

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
        except (OSError, asyncio.TimeoutError, Exception) as exc:  # noqa: B014
            await self.events.put(("failed", key, f"{type(exc).__name__}: {exc}"))
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m broadcast_client",
                                     description="Reference client of docs/protocol.md.")
    parser.add_argument("--url", default=os.environ.get("BROADCAST_URL", DEFAULT_URL),
                        help=f"WebSocket endpoint with stage (default {DEFAULT_URL})")
    parser.add_argument("--heartbeat-interval", type=float, default=30.0,
                        help="seconds between heartbeats (default 30)")
    sub = parser.add_subparsers(dest="command", required=True)
    speak = sub.add_parser("speak", help="create a session and keep it alive")
    speak.add_argument("--token", default=os.environ.get("BROADCAST_TOKEN"),
                       help="speaker ID token (default $BROADCAST_TOKEN)")
    speak.add_argument("--source-language", default="en")
    speak.add_argument("--quality-tier", choices=("standard", "premium"))
    listen = sub.add_parser("listen", help="join a session in a language")
    listen.add_argument("session_id")
    listen.add_argument("language")
    listen.add_argument("--max-reconnects", type=int, default=8)
    return parser


def build_protocol(args) -> ClientProtocol:
    if args.command == "speak":
        return ClientProtocol(url=args.url, role=Role.SPEAKER, token=args.token,
                              source_language=args.source_language,
                              quality_tier=args.quality_tier,
                              heartbeat_interval=args.heartbeat_interval)
    return ClientProtocol(url=args.url, role=Role.LISTENER, session_id=args.session_id,
                          target_language=args.language,
                          heartbeat_interval=args.heartbeat_interval,
                          max_reconnects=args.max_reconnects)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(Runner(build_protocol(args)).run())
    except KeyboardInterrupt:
        return 130
