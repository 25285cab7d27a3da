"""Shared helpers of the generic webhook connector tests: instances per preset, a simple actor
resolver, request builders and the map-a-body pipeline used by the golden tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.webhook.connector import GenericWebhookConnector
from connectors.webhook.dryrun import mapping_context
from connectors.webhook.settings import GenericWebhookSettings
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime, Person
from hub.errors import UnresolvedActor
from hub.events import SourceEvent, WebhookRequest
from hub.mapping import MappingContext, Unmapped
from hub.xapi import Account, Agent, Statement, StatementJson

BASE_IRI = "https://lrs-hub.example.com/xapi"
RECEIVED_AT = datetime(2026, 2, 1, 12, 0, 0, tzinfo=UTC)
"""Receipt time of every test request: after all fixture times, as in real life."""
FIXTURES = Path(__file__).parent / "fixtures"

# Test settings per shipped preset (no real secrets).
PRESET_SETTINGS: dict[str, dict[str, Any]] = {
    "example-coaching": {
        "tenant": "acme",
        "secrets": {
            "ACMECOACH_SECRET": SecretStr("acme-current"),
            "env:ACMECOACH_SECRET_PREVIOUS": SecretStr("acme-previous"),
        },
    },
    "coachaccountable": {
        "tenant": "acme",
        "secrets": {"current": SecretStr("ca-token-1"), "previous": SecretStr("ca-token-0")},
    },
    "sparkwise": {"tenant": "acme", "actor_home_page": "https://learn.acme.example"},
}


class EmailOrAccountResolver:
    """mbox agents from emails, account agents from source user ids, else UnresolvedActor."""

    def agent(self, person: Person, *, source: str, home_page: str) -> Agent:
        if person.email:
            return Agent(name=person.name, mbox=f"mailto:{person.email.strip().lower()}")
        if person.source_user_id:
            return Agent(
                name=person.name, account=Account(home_page=home_page, name=person.source_user_id)
            )
        raise UnresolvedActor(source, person.name or "?")


def build(
    preset: str | None = None,
    *,
    clock: FrozenClock | None = None,
    **overrides: Any,
) -> GenericWebhookConnector:
    """A connector instance for a preset (or for an inline ``mapping=`` override)."""
    values: dict[str, Any] = dict(PRESET_SETTINGS.get(preset or "", {"tenant": "acme"}))
    if preset is not None and "mapping" not in overrides:
        values["preset"] = preset
    values.update(overrides)
    runtime = ConnectorRuntime(
        instance_id=f"test-{preset or 'inline'}",
        base_iri=BASE_IRI,
        clock=clock or FrozenClock(RECEIVED_AT),
    )
    return GenericWebhookConnector(GenericWebhookSettings(**values), runtime=runtime)


def request(
    body: bytes = b"",
    *,
    method: str = "POST",
    content_type: str | None = "application/json",
    headers: Mapping[str, str] | None = None,
    query: str = "",
    client_host: str | None = None,
) -> WebhookRequest:
    all_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if content_type is not None:
        all_headers["content-type"] = content_type
    return WebhookRequest(
        method=method,
        path="/webhooks/test",
        query_string=query,
        headers=all_headers,
        body=body,
        received_at=RECEIVED_AT,
        client_host=client_host,
    )


def context(conn: GenericWebhookConnector, event: SourceEvent) -> MappingContext:
    """A real MappingContext, built from the connector as the pipeline does."""
    return mapping_context(conn, event, base_iri=BASE_IRI, actors=EmailOrAccountResolver())


def map_events(
    conn: GenericWebhookConnector, events: list[SourceEvent]
) -> list[Statement | StatementJson]:
    out: list[Statement | StatementJson] = []
    for event in events:
        result = conn.map(event, context(conn, event))
        assert not isinstance(result, Unmapped), f"unmapped event type {result.event_type}"
        out.extend(result)
    return out


def map_body(
    conn: GenericWebhookConnector, body: bytes, *, content_type: str = "application/json"
) -> list[dict[str, Any]]:
    """parse() then map() a raw body; the statements as xAPI JSON."""
    events = conn.parse(request(body, content_type=content_type))
    return [s.to_json() for s in map_events(conn, events)]


class Kit:
    """The helpers above, handed to tests as the ``kit`` fixture (test modules cannot import
    conftest under --import-mode=importlib)."""

    base_iri = BASE_IRI
    received_at = RECEIVED_AT
    fixtures = FIXTURES
    preset_settings = PRESET_SETTINGS
    resolver = EmailOrAccountResolver
    build = staticmethod(build)
    request = staticmethod(request)
    context = staticmethod(context)
    map_events = staticmethod(map_events)
    map_body = staticmethod(map_body)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
