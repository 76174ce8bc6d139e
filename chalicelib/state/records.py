"""Records stored in DynamoDB, as frozen attrs classes.

``from_item`` / ``to_item`` are the only places that know attribute names; items are
plain Python values (the store does the DynamoDB type (de)serialisation).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

import attrs

from chalicelib.state.schema import SPEAKER_MEMBER

ACTIVE, ENDED = "active", "ended"
SPEAKER, LISTENER = "speaker", "listener"


def _int(value) -> int:
    return int(value) if isinstance(value, (int, Decimal, float)) else int(str(value))


def _optional_int(value) -> Optional[int]:
    return None if value is None else _int(value)


@attrs.frozen(kw_only=True)
class BroadcastState:
    is_paused: bool = False
    is_muted: bool = False
    volume: float = 1.0
    last_state_change: int = 0  # epoch ms

    @classmethod
    def from_item(cls, item: Optional[dict], default_time: int = 0) -> "BroadcastState":
        item = item or {}
        return cls(
            is_paused=bool(item.get("isPaused", False)),
            is_muted=bool(item.get("isMuted", False)),
            volume=float(item.get("volume", 1)),
            last_state_change=_int(item.get("lastStateChange", default_time)),
        )

    def to_item(self) -> dict:
        return {
            "isPaused": self.is_paused,
            "isMuted": self.is_muted,
            "volume": Decimal(str(self.volume)),
            "lastStateChange": self.last_state_change,
        }

    def to_wire(self) -> dict:
        return {
            "isPaused": self.is_paused,
            "isMuted": self.is_muted,
            "volume": self.volume,
            "lastStateChange": self.last_state_change,
        }


@attrs.frozen(kw_only=True)
class Session:
    session_id: str
    speaker_user_id: str
    speaker_connection_id: str
    source_language: str
    quality_tier: str
    status: str
    listener_count: int
    created_at: int
    expires_at: int
    # Which partition of the sweep index lists the session (absent once it ended and
    # its connections were released).
    sweep_shard: Optional[int] = None
    ended_reason: Optional[str] = None
    ended_at: Optional[int] = None
    speaker_disconnected_at: Optional[int] = None
    # The speaker connection the last refresh replaced, and when (epoch ms): audio
    # already in flight on it during the handover is still taken.
    previous_speaker_connection_id: Optional[str] = None
    speaker_replaced_at: Optional[int] = None
    broadcast_state: BroadcastState = BroadcastState()
    # Last sequence number published per target language.
    sequence_numbers: dict = attrs.field(factory=dict)
    # Moves on every change of who listens in which language (join, leave, takeover,
    # language change), with the time of the last one: a fan-out may reuse a listing
    # of the listeners read after that time for as long as the version stands.
    roster_version: int = 0
    roster_changed_at: int = 0

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @classmethod
    def from_item(cls, item: dict) -> "Session":
        return cls(
            session_id=item["sessionId"],
            speaker_user_id=item["speakerUserId"],
            speaker_connection_id=item["speakerConnectionId"],
            source_language=item["sourceLanguage"],
            quality_tier=item["qualityTier"],
            status=item["status"],
            listener_count=_int(item.get("listenerCount", 0)),
            created_at=_int(item["createdAt"]),
            expires_at=_int(item["expiresAt"]),
            sweep_shard=_optional_int(item.get("sweepShard")),
            ended_reason=item.get("endedReason"),
            ended_at=_optional_int(item.get("endedAt")),
            speaker_disconnected_at=_optional_int(item.get("speakerDisconnectedAt")),
            previous_speaker_connection_id=item.get("previousSpeakerConnectionId"),
            speaker_replaced_at=_optional_int(item.get("speakerReplacedAt")),
            broadcast_state=BroadcastState.from_item(
                item.get("broadcastState"), _int(item["createdAt"])
            ),
            sequence_numbers={
                k: _int(v) for k, v in (item.get("sequenceNumbers") or {}).items()
            },
            roster_version=_int(item.get("rosterVersion", 0)),
            roster_changed_at=_int(item.get("rosterChangedAt", 0)),
        )

    def to_item(self) -> dict:
        item = {
            "sessionId": self.session_id,
            "speakerUserId": self.speaker_user_id,
            "speakerConnectionId": self.speaker_connection_id,
            "sourceLanguage": self.source_language,
            "qualityTier": self.quality_tier,
            "status": self.status,
            "listenerCount": self.listener_count,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "broadcastState": self.broadcast_state.to_item(),
            "sequenceNumbers": dict(self.sequence_numbers),
            "rosterVersion": self.roster_version,
            "rosterChangedAt": self.roster_changed_at,
        }
        if self.sweep_shard is not None:
            item["sweepShard"] = self.sweep_shard
        if self.ended_reason:
            item["endedReason"] = self.ended_reason
        if self.ended_at is not None:
            item["endedAt"] = self.ended_at
        if self.speaker_disconnected_at is not None:
            item["speakerDisconnectedAt"] = self.speaker_disconnected_at
        if self.previous_speaker_connection_id is not None:
            item["previousSpeakerConnectionId"] = self.previous_speaker_connection_id
        if self.speaker_replaced_at is not None:
            item["speakerReplacedAt"] = self.speaker_replaced_at
        return item


@attrs.frozen(kw_only=True)
class SweepEntry:
    """A session as the sweep index shows it: just what the sweep decides on."""

    session_id: str
    sweep_shard: int
    status: str
    expires_at: int
    speaker_connection_id: str
    speaker_disconnected_at: Optional[int] = None
    ended_reason: Optional[str] = None

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @classmethod
    def from_item(cls, item: dict) -> "SweepEntry":
        return cls(
            session_id=item["sessionId"],
            sweep_shard=_int(item["sweepShard"]),
            status=item["status"],
            expires_at=_int(item["expiresAt"]),
            speaker_connection_id=item["speakerConnectionId"],
            speaker_disconnected_at=_optional_int(item.get("speakerDisconnectedAt")),
            ended_reason=item.get("endedReason"),
        )


@attrs.frozen(kw_only=True)
class Connection:
    connection_id: str
    session_id: str
    role: str
    connected_at: int
    last_seen_at: int
    ttl: int
    target_language: Optional[str] = None
    user_id: Optional[str] = None
    refresh_notified_at: Optional[int] = None
    warned_at: Optional[int] = None
    # A listener refresh took this connection's place (and its count): the id of
    # the connection that did. Its departure then uncounts nothing.
    replaced_by: Optional[str] = None
    # A listener's: the speaker connection when it joined, so that its departure
    # can tell the speaker without reading the session (see Departures).
    speaker_connection_id: Optional[str] = None

    @property
    def is_speaker(self) -> bool:
        return self.role == SPEAKER

    @property
    def member(self) -> str:
        """Its sort key in the session's members index."""
        return SPEAKER_MEMBER if self.is_speaker else self.target_language

    @classmethod
    def from_item(cls, item: dict) -> "Connection":
        return cls(
            connection_id=item["connectionId"],
            session_id=item["sessionId"],
            role=item["role"],
            connected_at=_int(item["connectedAt"]),
            last_seen_at=_int(item.get("lastSeenAt", item["connectedAt"])),
            ttl=_int(item["ttl"]),
            target_language=item.get("targetLanguage"),
            user_id=item.get("userId"),
            refresh_notified_at=_optional_int(item.get("refreshNotifiedAt")),
            warned_at=_optional_int(item.get("warnedAt")),
            replaced_by=item.get("replacedBy"),
            speaker_connection_id=item.get("speakerConnectionId"),
        )

    def to_item(self) -> dict:
        item = {
            "connectionId": self.connection_id,
            "sessionId": self.session_id,
            "role": self.role,
            "member": self.member,
            "connectedAt": self.connected_at,
            "lastSeenAt": self.last_seen_at,
            "ttl": self.ttl,
        }
        if self.target_language is not None:
            item["targetLanguage"] = self.target_language
        if self.user_id is not None:
            item["userId"] = self.user_id
        if self.refresh_notified_at is not None:
            item["refreshNotifiedAt"] = self.refresh_notified_at
        if self.warned_at is not None:
            item["warnedAt"] = self.warned_at
        if self.replaced_by is not None:
            item["replacedBy"] = self.replaced_by
        if self.speaker_connection_id is not None:
            item["speakerConnectionId"] = self.speaker_connection_id
        return item
