"""Pydantic models of the Slack Events API (vendors.md 6.3, 6.4) and the mapper's payloads.

The envelope models are lenient (Slack adds fields freely); the payload models are what the
mapper receives: one `EventPayload` per inner event type, each the whole envelope as received.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from hub import EventPayload

__all__ = [
    "AppMentionEvent",
    "AppMentionPayload",
    "Envelope",
    "InnerEvent",
    "MemberJoinedEvent",
    "MemberJoinedPayload",
    "MessageEvent",
    "MessagePayload",
    "ReactionAddedEvent",
    "ReactionAddedPayload",
    "ReactionItem",
    "UrlVerification",
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UrlVerification(_Lenient):
    """The Events API URL-verification challenge (S5)."""

    type: str
    challenge: str = Field(max_length=4096)


class InnerEvent(_Lenient):
    """The fields every inner event shares; the rest is per type."""

    type: str
    channel: str | None = None


class Envelope(_Lenient):
    """An ``event_callback`` envelope (or another top-level type, e.g. app_rate_limited)."""

    type: str
    team_id: str | None = None
    event_id: str | None = None
    event_time: int | None = None
    event: InnerEvent | None = None


class MessageEvent(_Lenient):
    """A ``message`` event: plain messages have no subtype; replies carry thread_ts != ts."""

    type: str
    channel: str
    ts: str
    user: str | None = None
    text: str | None = None
    subtype: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None
    team: str | None = None
    channel_type: str | None = None


class AppMentionEvent(_Lenient):
    """An ``app_mention``: the same message also arrives as ``message``."""

    type: str
    channel: str
    ts: str
    user: str | None = None
    text: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None
    team: str | None = None


class ReactionItem(_Lenient):
    type: str
    channel: str | None = None
    ts: str | None = None


class ReactionAddedEvent(_Lenient):
    type: str
    user: str
    reaction: str
    item: ReactionItem
    item_user: str | None = None
    event_ts: str


class MemberJoinedEvent(_Lenient):
    """``member_joined_channel``: no ts; the envelope's event_time is the time."""

    type: str
    user: str
    channel: str
    channel_type: str | None = None
    team: str | None = None
    inviter: str | None = None


class _Payload(EventPayload):
    team_id: str
    event_id: str
    event_time: int


class MessagePayload(_Payload):
    event_types: ClassVar[tuple[str, ...]] = ("message",)
    event: MessageEvent


class AppMentionPayload(_Payload):
    event_types: ClassVar[tuple[str, ...]] = ("app_mention",)
    event: AppMentionEvent


class ReactionAddedPayload(_Payload):
    event_types: ClassVar[tuple[str, ...]] = ("reaction_added",)
    event: ReactionAddedEvent


class MemberJoinedPayload(_Payload):
    event_types: ClassVar[tuple[str, ...]] = ("member_joined_channel",)
    event: MemberJoinedEvent
