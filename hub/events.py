"""The values that cross the connector boundary: raw events, webhook requests and answers.

A `SourceEvent` is the raw envelope that travels on the ingest queue. It carries the source's item
exactly as received (JSON), never a secret, and enough identity (instance, type, delivery id) for
the normalizer to find the connector and for the receiver to drop duplicate deliveries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Generic, TypeVar
from urllib.parse import parse_qs

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from hub.cursor import Cursor

CursorT = TypeVar("CursorT", bound=Cursor)


class SourceEvent(BaseModel):
    """One raw item from a source, as received, plus routing facts.

    Attributes:
        instance_id: the connector instance (config `id`) that produced it.
        event_type: the source's own event name (e.g. `course.completed`), used by the mapper.
        payload: the item exactly as the source sent it.
        delivery_id: the source's delivery or message id, for inbound de-duplication only
            (never part of a statement id).
        received_at: when the hub received or fetched it (UTC).
        via: `webhook`, `poll` or `replay`, for metrics and lineage.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: str
    event_type: str
    payload: JsonValue
    delivery_id: str | None = None
    received_at: AwareDatetime
    via: str = "webhook"
    attempt: int = Field(default=0, ge=0, description="replays of this envelope so far")


def not_of_instance(events: Iterable[object], instance_id: str) -> list[object]:
    """The items of `events` that are not `SourceEvent`s of instance `instance_id`.

    Wherever a connector hands events back to the hub (`parse()`, `maintain()`), any such item is
    a plugin bug: the caller refuses the whole lot rather than queue mis-attributed envelopes.
    """
    return [e for e in events if not isinstance(e, SourceEvent) or e.instance_id != instance_id]


class WebhookRequest(BaseModel):
    """An inbound HTTP request as the connector sees it: raw bytes, lower-cased headers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = Field(default_factory=dict)
    body: bytes = b""
    received_at: AwareDatetime
    client_host: str | None = None

    def header(self, name: str) -> str | None:
        """Return a header value by case-insensitive name, or None."""
        return self.headers.get(name.lower())

    def query(self, name: str) -> str | None:
        """Return the first value of a query parameter (URL-decoded), or None."""
        values = parse_qs(self.query_string, keep_blank_values=True).get(name)
        return values[0] if values else None


class WebhookResponse(BaseModel):
    """What the receiver answers synchronously (handshakes, custom acks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = Field(default_factory=dict)


class PollResult(BaseModel, Generic[CursorT]):
    """One page of a poll: its events, the cursor to save after they are enqueued, and whether
    another page is waiting."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    events: list[SourceEvent]
    next_cursor: CursorT | None
    has_more: bool = False
    total_hint: int | None = Field(
        default=None, description="records expected in this sync, when the source says (progress)"
    )


def utc(dt: datetime) -> datetime:
    """Reject naive datetimes at the boundary instead of guessing their zone."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime; the hub works in timezone-aware UTC")
    return dt
