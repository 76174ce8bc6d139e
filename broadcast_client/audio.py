"""Audio helpers of the reference client: test tones, chunking, formats, decoding.

Pure functions; the protocol core decides when audio is sent or written.
"""
from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any, Dict, List, Optional

#: Raw bytes per sendAudio chunk: 21,848 base64 characters, so a chunk and its
#: envelope fit one 32 KB frame (docs/protocol.md, Limits) far below the
#: server's 129,024-character chunk limit.
AUDIO_CHUNK_BYTES = 16 * 1024
#: The largest ``audioData`` the server accepts (docs/protocol.md, Audio in).
MAX_AUDIO_BASE64_CHARS = 129_024
AUDIO_FORMAT = "pcm16/16000"
MAX_TONE_SECONDS = 60.0


def tone_pcm16(seconds: float, *, frequency: float = 440.0, rate: int = 16000,
               amplitude: float = 0.25) -> bytes:
    """A sine test tone as 16-bit little-endian mono PCM (``pcm16/16000``)."""
    count = int(round(seconds * rate))
    peak = amplitude * 32767
    return struct.pack(f"<{count}h", *(int(peak * math.sin(2 * math.pi * frequency * i / rate))
                                       for i in range(count)))


def audio_chunks(data: bytes, size: int = AUDIO_CHUNK_BYTES) -> List[bytes]:
    """``data`` cut into chunks of at most ``size`` raw bytes."""
    if size <= 0 or len(base64.b64encode(b"\0" * size)) > MAX_AUDIO_BASE64_CHARS:
        raise ValueError(f"chunk size must be 1..{MAX_AUDIO_BASE64_CHARS // 4 * 3} bytes, got {size}")
    return [data[i:i + size] for i in range(0, len(data), size)]


def send_audio_bodies(data: bytes, *, chunk_bytes: int, first_number: int,
                      audio_format: Optional[str]) -> List[Dict[str, Any]]:
    """``sendAudio`` messages carrying ``data``, numbered from ``first_number``
    (the listener's ``speakerSequenceNumber``)."""
    bodies = []
    for number, chunk in enumerate(audio_chunks(data, chunk_bytes), start=first_number):
        body: Dict[str, Any] = {"action": "sendAudio",
                                "audioData": base64.b64encode(chunk).decode("ascii"),
                                "sequenceNumber": number}
        if audio_format:
            body["format"] = audio_format
        bodies.append(body)
    return bodies


def guess_audio_format(path: str) -> Optional[str]:
    """The ``format`` to announce for a file, from its extension (None: unknown)."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix in ("pcm", "raw"):
        return AUDIO_FORMAT
    if suffix in ("wav", "mp3", "ogg", "opus", "flac", "webm", "m4a"):
        return suffix
    return None


def decode_audio_data(message: dict) -> Optional[bytes]:
    """The decoded ``audioData`` of a received audio message (None if it is not base64)."""
    try:
        return base64.b64decode(message.get("audioData") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        return None
