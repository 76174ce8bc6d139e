"""The traffic profile the capacity model is run with: one frozen record, each
field with its default, its command-line flag (and make variable) and why."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict

import attrs

ROOT = Path(__file__).resolve().parents[2]
AUDIO_SINKS = ("kinesis", "relay", "none")


def _field(default: Any, doc: str, *, choices=None):
    return attrs.field(default=default, metadata={"doc": doc, "choices": choices})


def prod_memory_mb(config_path: Path = ROOT / ".chalice" / "config.json") -> int:
    """The functions' memory in the prod stage (.chalice/config.json), else 512."""
    try:
        stages = json.loads(config_path.read_text())["stages"]
        return int(stages["prod"]["lambda_memory_size"])
    except (OSError, KeyError, ValueError):
        return 512


@attrs.frozen(kw_only=True)
class Profile:
    sessions: int = _field(10_000, "concurrent sessions")
    listeners: int = _field(100, "listeners per session")
    languages: int = _field(5, "target languages per session (listeners spread evenly)")
    session_minutes: float = _field(120.0, "how long a session lasts (sessions start at an even rate)")
    heartbeat_seconds: float = _field(30.0, "client heartbeat interval (HEARTBEAT_INTERVAL_SECONDS)")
    refresh_minutes: float = _field(100.0, "connection refresh age (CONNECTION_REFRESH_MINUTES), "
                                           "listeners and speakers alike")
    churn_per_minute: float = _field(1.0, "listeners joining (and as many leaving) per session per "
                                          "minute, besides those present from the start")
    audio_sink: str = _field("kinesis", "where the speaker's audio goes (AUDIO_SINK)", choices=AUDIO_SINKS)
    audio_chunks_per_second: float = _field(4.0, "sendAudio messages per session per second")
    audio_chunk_bytes: int = _field(8000, "raw audio per chunk (250 ms of 16 kHz 16-bit mono)")
    translations_per_second: float = _field(0.5, "publish calls per session per language per second")
    translation_bytes: int = _field(12_000, "base64 audio in each translated message (~3 s of 32 kbit/s)")
    controls_per_hour: float = _field(6.0, "pause/resume/mute/volume per session per hour")
    sweep_seconds: float = _field(60.0, "sweep period (the EventBridge schedule)")
    sweep_shards: int = _field(16, "SWEEP_SHARDS")
    sweep_concurrency: int = _field(16, "SWEEP_CONCURRENCY")
    publish_concurrency: int = _field(16, "PUBLISH_CONCURRENCY")
    memory_mb: int = _field(prod_memory_mb(), "Lambda memory (prod stage of .chalice/config.json)")
    start_window_minutes: float = _field(0.0, "if > 0, every session starts within this many minutes "
                                              "(a Sunday 10:00): the peak connect rate is checked too")

    def __attrs_post_init__(self) -> None:
        if self.listeners < 4:
            raise ValueError("listeners must be at least 4")
        if not 1 <= self.languages <= self.listeners:
            raise ValueError("languages must be between 1 and listeners")
        if self.audio_sink not in AUDIO_SINKS:
            raise ValueError(f"audio_sink must be one of {AUDIO_SINKS}")

    @property
    def session_seconds(self) -> float:
        return self.session_minutes * 60

    @property
    def listener_hours(self) -> float:
        """Listener-hours served per hour."""
        return self.sessions * self.listeners

    def measured_shape(self) -> Dict[str, int]:
        """What the measurement depends on (a measurement is reused only for this)."""
        return {"listeners": self.listeners, "languages": self.languages,
                "audio_bytes": self.audio_chunk_bytes, "translation_bytes": self.translation_bytes,
                "sweep_shards": self.sweep_shards}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One --flag per field (--sessions, --audio-chunks-per-second...)."""
    for field in attrs.fields(Profile):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=type(field.default), default=field.default,
                            choices=field.metadata["choices"],
                            help=f"{field.metadata['doc']} (default {field.default})")


def from_arguments(args: argparse.Namespace) -> Profile:
    return Profile(**{f.name: getattr(args, f.name) for f in attrs.fields(Profile)})
