"""Test-only connectors and doubles for the webhook receiver tests (unit and integration).

Loaded by path (`load()` in the test modules), not imported as a package: tests have no
`__init__.py` and `tests/hub/conftest.py` belongs to nobody in particular.

* `ProbeConnector`: a Webhook connector with an HMAC-SHA256 header signature
  (`X-Test-Signature: sha256=<hex>` over `{timestamp}.{body}`, `X-Test-Timestamp`, 300 s window on
  the runtime clock), a Slack-style `url_verification` handshake and a WebSub-style GET
  `hub.challenge`, and batched bodies `{"items": [{"id": ..., "type": ...}, ...]}` where each
  item's `id` is its delivery id.
* `PolledProbeConnector`: polling only (no Webhook capability).
* `CrashingProbeConnector`: raises an unexpected exception in a chosen stage.
* `MemoryDedupeStore`: `mark_seen`/`unmark_seen`/`ping` in memory, with failure switches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, SecretStr

from hub.connector import Connector, ConnectorSettings, Polling, Webhook
from hub.cursor import TimeCursor
from hub.errors import BadRequest, InvalidSignature
from hub.events import PollResult, SourceEvent, WebhookRequest, WebhookResponse
from hub.testing import MemoryDedupeStore as BaseMemoryDedupeStore
from hub.webhooks import json_body, load_json

SIGNATURE_HEADER = "X-Test-Signature"
TIMESTAMP_HEADER = "X-Test-Timestamp"
TOLERANCE_SECONDS = 300


class ProbeSettings(ConnectorSettings):
    secret: SecretStr = SecretStr("s3cr3t-for-tests")
    # 2xx: acknowledge-and-drop on a bad signature (WebSub style) instead of 401.
    invalid_status: int = 401
    ack_status: int = 200
    crash_in: Literal["handshake", "verify", "parse", "acknowledge", "events"] | None = None


def sign(body: bytes, *, secret: str, timestamp: int) -> dict[str, str]:
    """The headers a legitimate sender puts on `body`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        SIGNATURE_HEADER: f"sha256={mac.hexdigest()}",
        TIMESTAMP_HEADER: str(timestamp),
        "Content-Type": "application/json",
    }


def batch(*ids: str | None, event_type: str = "probe.happened") -> bytes:
    """A body with one item per id (None: an item without id)."""
    items = [{"type": event_type, **({"id": i} if i is not None else {})} for i in ids]
    return json.dumps({"items": items}).encode()


class ProbeConnector(Connector[ProbeSettings], Webhook):
    name = "test-probe"
    source = "probe"
    platform = "Probe"
    settings_model: ClassVar[type[BaseModel]] = ProbeSettings

    @property
    def tenant(self) -> str:
        return "probe.example"

    def check(self) -> None:
        return None

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        if request.method == "GET":
            challenge = request.query("hub.challenge")
            return None if challenge is None else WebhookResponse(body=challenge.encode())
        if not request.body.startswith(b"{") or b"url_verification" not in request.body:
            return None  # cheap pre-check: most deliveries are not handshakes
        try:
            doc = load_json(request.body)
        except BadRequest:
            return None  # not a handshake; parse() will refuse it properly
        if isinstance(doc, dict) and doc.get("type") == "url_verification":
            answer = doc.get("challenge")
            if not isinstance(answer, str):
                raise BadRequest("url_verification without a challenge")
            return WebhookResponse(body=answer.encode(), content_type="text/plain")
        return None

    def verify(self, request: WebhookRequest) -> None:
        status = self.settings.invalid_status
        raw_ts = request.header(TIMESTAMP_HEADER)
        raw_sig = request.header(SIGNATURE_HEADER)
        if raw_ts is None or raw_sig is None:
            raise InvalidSignature("missing signature headers", status=status)
        try:
            timestamp = int(raw_ts)
        except ValueError:
            raise InvalidSignature("malformed timestamp", status=status) from None
        now = self.runtime.clock.now().timestamp()
        if abs(now - timestamp) > TOLERANCE_SECONDS:
            raise InvalidSignature("timestamp outside the replay window", status=status)
        if not raw_sig.startswith("sha256="):
            raise InvalidSignature("unknown signature scheme", status=status)
        expected = sign(
            request.body, secret=self.settings.secret.get_secret_value(), timestamp=timestamp
        )[SIGNATURE_HEADER]
        if not hmac.compare_digest(expected.encode(), raw_sig.encode()):
            raise InvalidSignature("signature mismatch", status=status)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        doc = json_body(request)
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise BadRequest("expected an object with items[]")
        events = []
        for item in items:
            if not isinstance(item, dict):
                raise BadRequest("every item must be an object")
            delivery_id = item.get("id")
            event_type = item.get("type", "probe.happened")
            events.append(
                SourceEvent(
                    instance_id=self.instance_id,
                    event_type=str(event_type),
                    payload=item,
                    delivery_id=str(delivery_id) if delivery_id is not None else None,
                    received_at=request.received_at,
                )
            )
        return events

    def acknowledge(
        self, request: WebhookRequest, events: Sequence[SourceEvent]
    ) -> WebhookResponse:
        body = json.dumps({"accepted": len(events)}).encode()
        return WebhookResponse(
            status=self.settings.ack_status, body=body, content_type="application/json"
        )


class CrashingProbeConnector(ProbeConnector):
    """Raises in the stage named by `settings.crash_in`; the message mimics leaked payload."""

    name = "test-crashing"
    LEAK = "payload-text-that-must-not-be-logged"

    def _maybe_crash(self, stage: str) -> None:
        if self.settings.crash_in == stage:
            raise RuntimeError(self.LEAK)

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        self._maybe_crash("handshake")
        return super().handshake(request)

    def verify(self, request: WebhookRequest) -> None:
        self._maybe_crash("verify")
        super().verify(request)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        self._maybe_crash("parse")
        events = super().parse(request)
        if self.settings.crash_in == "events":
            # A plugin bug: envelopes attributed to another instance.
            return [e.model_copy(update={"instance_id": "someone-else"}) for e in events]
        return events

    def acknowledge(
        self, request: WebhookRequest, events: Sequence[SourceEvent]
    ) -> WebhookResponse:
        self._maybe_crash("acknowledge")
        return super().acknowledge(request, events)


class PolledProbeConnector(Connector[ProbeSettings], Polling[TimeCursor]):
    name = "test-polled"
    source = "probe"
    platform = "Probe"
    settings_model: ClassVar[type[BaseModel]] = ProbeSettings

    @property
    def tenant(self) -> str:
        return "probe.example"

    def check(self) -> None:
        return None

    def poll(self, cursor: TimeCursor | None, *, until: datetime) -> PollResult[TimeCursor]:
        return PollResult[TimeCursor](events=[], next_cursor=cursor)

    def initial_cursor(self, since: datetime) -> TimeCursor:
        return TimeCursor(mark=since)


class StoreDown(ConnectionError):
    """What a store client raises when its server is gone (like redis.ConnectionError)."""


class MemoryDedupeStore(BaseMemoryDedupeStore):
    """hub.testing's in-memory dedupe store, with switches to simulate an outage."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_mark_after: int | None = None  # fail once this many marks succeeded
        self.fail_unmark = False
        self.marks = 0

    def mark_seen(self, namespace: str, key: str, *, ttl_seconds: float) -> bool:
        # mark_seen_many (inherited) marks one by one through here, so a simulated failure
        # leaves the earlier marks in place: the worst case the receiver must clean up after.
        if self.fail_mark_after is not None and self.marks >= self.fail_mark_after:
            raise StoreDown("store unreachable (simulated)")
        self.marks += 1
        return super().mark_seen(namespace, key, ttl_seconds=ttl_seconds)

    def unmark_seen(self, namespace: str, key: str) -> None:
        if self.fail_unmark:
            raise StoreDown("store unreachable (simulated)")
        super().unmark_seen(namespace, key)

    def ping(self) -> bool:
        return self.fail_mark_after is None
