"""Helpers for the YouTube connector tests, importable as `_youtube_kit` (conftest.py registers
it; tests have no __init__.py and run with --import-mode=importlib)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from connectors.youtube.connector import YouTubeConnector
from connectors.youtube.settings import YouTubeSettings
from connectors.youtube.token import issue_learner_token
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.events import SourceEvent, WebhookRequest, WebhookResponse
from hub.mapping import Unmapped
from hub.queue import ListEnqueuer
from hub.testing import (
    BASE_IRI,
    MemoryDedupeStore,
    MemoryState,
    StaticActorResolver,
    context_factory,
)
from hub.webhooks import Receiver, ReceiverInstance
from hub.xapi import Statement

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-learner-token-secret-0123456789abcdef"
WEBSUB_SECRET = "websub-secret"
ORIGIN = "https://learn.example.com"
INSTANCE = "test"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
Y5_RECEIVED = datetime(2024, 5, 3, 14, 35, 41, tzinfo=UTC)
VIDEO = "https://w3id.org/xapi/video/extensions/"

BASE_SETTINGS: dict[str, Any] = {
    "tenant": "learn.example.com",
    "token_secret": SECRET,
    "allowed_origins": [ORIGIN],
    "completion_threshold": 0.9,
}


def y5_body() -> dict[str, Any]:
    """The Y5 batch (vendors.md 4.1) as a dict."""
    data: dict[str, Any] = json.loads((FIXTURES / "events" / "y5_player_batch.json").read_text())
    return data


@dataclass
class Kit:
    """Builds connectors, signed requests and mapped statements for one test."""

    clock: FrozenClock = field(default_factory=lambda: FrozenClock(Y5_RECEIVED))
    state: MemoryState = field(default_factory=MemoryState)
    resolver: StaticActorResolver = field(default_factory=lambda: StaticActorResolver("mbox"))
    http: httpx.Client = field(default_factory=httpx.Client)  # respx patches it; sockets blocked

    def connector(self, **overrides: Any) -> YouTubeConnector:
        settings = YouTubeSettings.model_validate({**BASE_SETTINGS, **overrides})
        runtime = ConnectorRuntime(
            instance_id=INSTANCE, base_iri=BASE_IRI, http=self.http, clock=self.clock,
            state=self.state,
        )  # fmt: skip
        return YouTubeConnector(settings, runtime=runtime)

    def token(self, *, sub: str = "u-1001", at: datetime | None = None, **kw: Any) -> str:
        kw.setdefault("audience", INSTANCE)
        kw.setdefault("email", "ada@example.com")
        kw.setdefault("name", "Ada Lovelace")
        return issue_learner_token(SECRET, sub=sub, now=at or self.clock.now(), **kw)

    def request(
        self,
        body: Mapping[str, Any] | bytes,
        *,
        token: str | None = None,
        origin: str | None = ORIGIN,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        query: str = "",
        content_type: str = "application/json",
    ) -> WebhookRequest:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = {"content-type": content_type}
        if origin is not None:
            hdrs["origin"] = origin
        if token is not None:
            hdrs["authorization"] = f"Bearer {token}"
        hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
        return WebhookRequest(
            method=method, path=f"/webhooks/{INSTANCE}", query_string=query, headers=hdrs,
            body=raw, received_at=self.clock.now(),
        )  # fmt: skip

    def events(
        self, conn: YouTubeConnector, body: Mapping[str, Any], **kw: Any
    ) -> list[SourceEvent]:
        request = self.request(body, token=kw.pop("token", None) or self.token(), **kw)
        assert conn.handshake(request) is None
        conn.verify(request)
        return conn.parse(request)

    def map(self, conn: YouTubeConnector, events: Sequence[SourceEvent]) -> list[Statement]:
        make = context_factory(conn, actors=self.resolver, base_iri=BASE_IRI, instance_id=INSTANCE)
        out: list[Statement] = []
        for event in events:
            result = conn.map(event, make(event))
            assert not isinstance(result, Unmapped)
            out.extend(result)
        return out

    def send(self, conn: YouTubeConnector, body: Mapping[str, Any], **kw: Any) -> list[Statement]:
        """verify + parse + map one batch."""
        return self.map(conn, self.events(conn, body, **kw))


def verbs(statements: Sequence[Statement]) -> list[str]:
    """The verbs' last path segments, in order."""
    return [s.verb.id.rsplit("/", 1)[-1] for s in statements]


def result_ext(statement: Statement, name: str) -> Any:
    assert statement.result is not None
    assert statement.result.extensions is not None
    return statement.result.extensions.get(VIDEO + name)


def context_ext(statement: Statement, name: str) -> Any:
    assert statement.context is not None
    assert statement.context.extensions is not None
    return statement.context.extensions.get(VIDEO + name)


@dataclass
class ReceiverKit:
    """The hub's real receive algorithm over one youtube connector, with an in-memory queue."""

    receiver: Receiver
    enqueuer: ListEnqueuer

    def receive(self, request: WebhookRequest) -> WebhookResponse:
        return self.receiver.receive(INSTANCE, request)


def receiver_for(conn: YouTubeConnector, clock: FrozenClock) -> ReceiverKit:
    enqueuer = ListEnqueuer()
    receiver = Receiver(
        {INSTANCE: ReceiverInstance(connector=conn)}, store=MemoryDedupeStore(), enqueuer=enqueuer,
        clock=clock,
    )  # fmt: skip
    return ReceiverKit(receiver, enqueuer)
