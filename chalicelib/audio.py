"""Audio in: validation of ``sendAudio`` chunks (pure) and the sinks they go to.

A chunk must fit API Gateway's 128 KB message limit *after* it is wrapped for
listeners (the relay sink re-sends it), so its base64 text is capped a little lower.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Optional

import attrs

from chalicelib import errors

MAX_AUDIO_BASE64_CHARS = 128 * 1024 - 2048  # about 94 KB of audio per chunk
_MAX_FORMAT_CHARS = 64


@attrs.frozen
class AudioChunk:
    audio_data: str  # base64, validated
    size: int  # decoded bytes
    sequence_number: Optional[int] = None
    format: Optional[str] = None


def parse_chunk(body: dict) -> AudioChunk:
    data = body.get("audioData")
    if not isinstance(data, str) or not data:
        raise errors.InvalidAudio("audioData must be a non-empty base64 string")
    if len(data) > MAX_AUDIO_BASE64_CHARS:
        raise errors.AudioTooLarge(
            f"audioData is {len(data)} base64 characters; at most "
            f"{MAX_AUDIO_BASE64_CHARS} fit in one message, send smaller chunks"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidAudio("audioData is not valid base64") from None
    sequence = body.get("sequenceNumber")
    if sequence is not None and (
        isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0
    ):
        raise errors.InvalidAudio("sequenceNumber must be a non-negative integer")
    audio_format = body.get("format")
    if audio_format is not None and (
        not isinstance(audio_format, str) or len(audio_format) > _MAX_FORMAT_CHARS
    ):
        raise errors.InvalidAudio("format must be a short string, e.g. 'pcm16/16000'")
    return AudioChunk(data, len(raw), sequence, audio_format)


class NoSink:
    """AUDIO_SINK=none: chunks are validated and dropped."""

    def accept(self, session, chunk: AudioChunk, api) -> None:
        return None


class RelaySink:
    """AUDIO_SINK=relay: chunks go, untranslated, to every listener (local default)."""

    def __init__(self, publisher) -> None:
        self._publisher = publisher

    def accept(self, session, chunk: AudioChunk, api) -> None:
        payload = {"audioData": chunk.audio_data, "sourceLanguage": session.source_language}
        if chunk.sequence_number is not None:
            payload["speakerSequenceNumber"] = chunk.sequence_number
        if chunk.format:
            payload["format"] = chunk.format
        self._publisher.publish(session.session_id, "audio", payload, api)


class KinesisSink:
    """AUDIO_SINK=kinesis: one record per chunk, partitioned by session, for the
    translation pipeline."""

    def __init__(self, client, stream_name: str, clock) -> None:
        self._client = client
        self._stream = stream_name
        self._clock = clock

    def accept(self, session, chunk: AudioChunk, api) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        record = {
            "sessionId": session.session_id,
            "sourceLanguage": session.source_language,
            "qualityTier": session.quality_tier,
            "sequenceNumber": chunk.sequence_number,
            "format": chunk.format,
            "audioData": chunk.audio_data,
            "timestamp": int(self._clock() * 1000),
        }
        try:
            self._client.put_record(
                StreamName=self._stream,
                Data=json.dumps(record, separators=(",", ":")).encode("utf-8"),
                PartitionKey=session.session_id,
            )
        except (BotoCoreError, ClientError):
            raise errors.ServiceUnavailable("the audio stream is unavailable, retry") from None
