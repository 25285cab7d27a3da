"""The wire shapes: the tracker's player batch (vendors.md 4.1 ingest contract), the raw events
the connector puts on the ingest queue, and the cached video metadata.

Bodies come from browsers, so every field is bounded: ids by pattern, numbers finite and in range,
lists and strings by length. A body that does not fit is a 400 (`BadRequest`), never a crash.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
)

__all__ = [
    "BATCH_EVENT",
    "DELETED_EVENT",
    "VIDEO_EVENT",
    "Learner",
    "PlayerBatch",
    "PlayerBatchPayload",
    "PlayerEvent",
    "PlayerInfo",
    "VideoMeta",
    "WebSubDeleted",
    "WebSubVideo",
]

BATCH_EVENT = "player.batch"
VIDEO_EVENT = "websub.video"
DELETED_EVENT = "websub.deleted"

VIDEO_ID = r"^[A-Za-z0-9_-]{11}$"
MAX_EVENTS = 500


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Seconds = Annotated[float, Field(ge=0, le=10_000_000), AfterValidator(_finite)]

EventType = Literal[
    "ready",
    "state",
    "heartbeat",
    "rate",
    "volume",
    "mute",
    "fullscreen",
    "quality",
    "captions",
    "error",
    "unload",
]


class _Wire(BaseModel):
    # Unknown keys from newer trackers are ignored; known ones are strictly bounded.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PlayerEvent(_Wire):
    """One observation of the player (see vendors.md 4.1 for the types)."""

    seq: int = Field(ge=0, le=10_000_000)
    type: EventType
    client_ts: AwareDatetime
    t: Seconds | None = None
    state: Literal[-1, 0, 1, 2, 3, 5] | None = None
    rate: float | None = Field(default=None, gt=0, le=16)
    duration: Seconds | None = None
    volume: int | None = Field(default=None, ge=0, le=100)
    muted: bool | None = None
    fullscreen: bool | None = None
    quality: str | None = Field(default=None, max_length=32)
    captions: bool | None = None
    captions_lang: str | None = Field(default=None, max_length=35)
    code: int | None = Field(default=None, ge=-1, le=100_000)


class PlayerInfo(_Wire):
    """What the page says about its player (informational; never identity)."""

    origin: str | None = Field(default=None, max_length=300)
    user_agent: str | None = Field(default=None, max_length=512)
    screen_size: str | None = Field(default=None, max_length=32, pattern=r"^\d{1,5}x\d{1,5}$")


class PlayerBatch(_Wire):
    """A tracker batch: one session of one video, events in any order, at least once."""

    session_id: str = Field(pattern=r"^[A-Za-z0-9-]{8,64}$")
    video_id: str = Field(pattern=VIDEO_ID)
    page_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://\S+$")
    player: PlayerInfo = Field(default_factory=PlayerInfo)
    sent_at: AwareDatetime | None = None
    events: list[PlayerEvent] = Field(min_length=1, max_length=MAX_EVENTS)


class Learner(_Wire):
    """The verified token claims that become the actor (copied by parse(), never from a body)."""

    sub: str
    email: str | None = None
    name: str | None = None


class PlayerBatchPayload(_Wire):
    """The payload of a `player.batch` raw event: the batch, who sent it and from where."""

    learner: Learner
    origin: str | None = None
    batch: PlayerBatch


class WebSubVideo(_Wire):
    """A WebSub upload or edit notification for one video (Y1)."""

    video_id: str = Field(pattern=VIDEO_ID)
    channel_id: str | None = None
    title: str | None = None
    published: datetime | None = None
    updated: datetime | None = None


class WebSubDeleted(_Wire):
    """A WebSub tombstone (Y2): the video is gone."""

    video_id: str = Field(pattern=VIDEO_ID)
    channel_id: str | None = None
    deleted_at: datetime | None = None


class VideoMeta(BaseModel):
    """Cached metadata of one video (from videos.list, or partially from WebSub)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    video_id: str
    title: str | None = None
    description: str | None = None
    channel_id: str | None = None
    channel_title: str | None = None
    language: str | None = None
    length: float | None = Field(default=None, description="seconds; None for live/upcoming")
    published_at: datetime | None = None
    live: bool = False
    source: Literal["videos.list", "websub"] = "videos.list"
