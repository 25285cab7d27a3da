"""WebSub (PubSubHubbub) for channel uploads: subscribe/renew, intent verification, signatures,
and the Atom notification parser (vendors.md 4.3, 4.4 Y1/Y2, 4.7 pitfall 7).

* The callback is ``{public_url}/webhooks/{instance_id}?key={subscription_key(topic)}``: the key
  is an HMAC of the topic under the WebSub secret, so only the hub we asked knows the URL.
* Intent verification (GET): ``hub.topic`` must be one we asked for: ``subscribe`` needs a
  configured channel's topic and its key; ``unsubscribe`` needs a pending unsubscribe we sent.
  Anything else is 404, and the hub treats that as "not confirmed". A confirmed subscription
  stores its ``lease_seconds``; `SubscriptionState.renew_due` renews at 80 % of the lease.
* Notifications (POST): ``X-Hub-Signature: sha1=<hex>`` (Google) or sha256/384/512 over the raw
  body with the secret. A bad or missing signature is acknowledged with 2xx and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Literal
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict

from connectors.youtube.models import WebSubDeleted, WebSubVideo
from hub import BadRequest
from hub.xapi import parse_timestamp

__all__ = [
    "SubscriptionState",
    "check_signature",
    "parse_feed",
    "subscription_key",
    "topic_for",
]

TOPIC_PREFIX = "https://www.youtube.com/xml/feeds/videos.xml?channel_id="
PENDING_RETRY = timedelta(hours=1)
RENEW_AT = 0.8
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
               "sha512": hashlib.sha512}  # fmt: skip
_SIGNATURE = re.compile(r"^(sha1|sha256|sha384|sha512)=([0-9a-fA-F]+)$")
_NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "yt": "http://www.youtube.com/xml/schemas/2015",
    "at": "http://purl.org/atompub/tombstones/1.0",
}
_VIDEO_REF = re.compile(r"^yt:video:([A-Za-z0-9_-]{11})$")
_CHANNEL_URI = re.compile(r"/channel/(UC[A-Za-z0-9_-]{22})/?$")


def topic_for(channel_id: str) -> str:
    """The WebSub topic of a channel's uploads feed."""
    return TOPIC_PREFIX + channel_id


def subscription_key(secret: bytes, topic: str) -> str:
    """The callback's ``key`` for a topic: unguessable without the WebSub secret."""
    return hmac.new(secret, b"lxhub-websub|" + topic.encode(), hashlib.sha256).hexdigest()[:32]


def check_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when ``X-Hub-Signature`` is a valid ``method=hex`` HMAC of the raw body."""
    if not header:
        return False
    match = _SIGNATURE.match(header.strip())
    if match is None:
        return False
    method, given = match.group(1), match.group(2).lower()
    expected = hmac.new(secret, body, _ALGORITHMS[method]).hexdigest()
    return hmac.compare_digest(given, expected)


class SubscriptionState(BaseModel):
    """What the hub knows about one topic's subscription (kept in ``websub:{topic}``)."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    status: Literal["pending", "active", "unsubscribing", "denied"] = "pending"
    requested_at: datetime | None = None
    verified_at: datetime | None = None
    lease_seconds: int | None = None

    @property
    def expires_at(self) -> datetime | None:
        if self.verified_at is None or self.lease_seconds is None:
            return None
        return self.verified_at + timedelta(seconds=self.lease_seconds)

    def renew_due(self, now: datetime) -> bool:
        """Subscribe (again) now? Never verified, lapsed, at 80 % of the lease, or a request
        that was never verified within an hour."""
        waiting = (
            self.requested_at is not None
            and (self.verified_at is None or self.requested_at > self.verified_at)
            and now - self.requested_at < PENDING_RETRY
        )
        if waiting:
            return False
        if self.status != "active" or self.verified_at is None or self.lease_seconds is None:
            return True
        return now >= self.verified_at + timedelta(seconds=self.lease_seconds * RENEW_AT)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_timestamp(text.strip())  # truncates nanoseconds (Y1's 9 digits)
    except ValueError:
        return None


def parse_feed(body: bytes) -> list[WebSubVideo | WebSubDeleted]:
    """The videos an Atom notification announces (uploads/edits) or retracts (tombstones)."""
    head = body[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in body.lower():
        # No DTDs at all: entity expansion is the classic XML attack and Atom needs none.
        raise BadRequest("WebSub body has a DTD")
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - DTDs are refused above
    except ElementTree.ParseError:
        raise BadRequest("WebSub body is not XML") from None
    out: list[WebSubVideo | WebSubDeleted] = []
    for entry in root.findall("atom:entry", _NS):
        video_id = entry.findtext("yt:videoId", namespaces=_NS)
        if not video_id:
            ref = _VIDEO_REF.match((entry.findtext("atom:id", namespaces=_NS) or "").strip())
            video_id = ref.group(1) if ref else None
        if not video_id:
            continue
        out.append(
            WebSubVideo(
                video_id=video_id.strip(),
                channel_id=(entry.findtext("yt:channelId", namespaces=_NS) or "").strip() or None,
                title=entry.findtext("atom:title", namespaces=_NS),
                published=_time(entry.findtext("atom:published", namespaces=_NS)),
                updated=_time(entry.findtext("atom:updated", namespaces=_NS)),
            )
        )
    for gone in root.findall("at:deleted-entry", _NS):
        ref = _VIDEO_REF.match((gone.get("ref") or "").strip())
        if ref is None:
            continue
        uri = (gone.findtext("at:by/atom:uri", namespaces=_NS) or "").strip()
        channel = _CHANNEL_URI.search(uri)
        out.append(
            WebSubDeleted(
                video_id=ref.group(1),
                channel_id=channel.group(1) if channel else None,  # tombstones lack yt:channelId
                deleted_at=_time(gone.get("when")),
            )
        )
    return out
