"""Shared Teams test material: sample settings, respx routes for MSAL and Graph, a builder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import respx

from connectors.teams.connector import TeamsConnector
from connectors.teams.settings import TeamsSettings
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.testing import MemoryState, json_response

FIXTURES = Path(__file__).parent / "fixtures"
API = FIXTURES / "api"
KEYS = FIXTURES / "keys"

TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
CLIENT = "11111111-2222-3333-4444-555555555555"
TEAM1, CHAN1 = (
    "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b",
    "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2",
)
TEAM2, CHAN2 = (
    "d29828b8-c04d-4e2a-b2f6-07da6982f0f0",
    "19:f127a8c55ad949d1a238464d22f0f99e@thread.skype",
)
ORGANIZER, MEETING = "16664f75-11dc-4870-bec6-38c1aaa81431", "MSpkYzE3Njc0Yy04MWQ5LTRhZGItYmZ"
GRAPH = "https://graph.microsoft.com/v1.0"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
NOW = datetime(2025, 7, 1, 12, 0, 0, tzinfo=UTC)
# The key set the fixtures' validationTokens are signed with (make_fixtures.py). `build()` puts
# it in the instance state as if fetched, so tests need no route for it unless they test fetching.
SIGNING_KEYS: dict[str, Any] = json.loads((API / "signing-keys.json").read_text())

SAMPLE_SETTINGS: dict[str, Any] = {
    "tenant_id": TENANT,
    "client_id": CLIENT,
    "client_secret": "test-client-secret",
    "client_state_secret": "test-client-state-secret",
    "notification_url": "https://hub.example.com/webhooks/test",
    "channels": [
        {"team_id": TEAM1, "channel_id": CHAN1, "name": "General"},
        {"team_id": TEAM2, "channel_id": CHAN2},
    ],
    "encryption": {
        "certificate_id": "hub-2024-05",
        "certificate": (KEYS / "test-cert.pem").read_text(),
        "private_key": (KEYS / "test-key.pem").read_text(),
    },
    "live_sessions": [
        {"organizer_id": ORGANIZER, "meeting_id": MEETING, "subject": "SQL joins live session"}
    ],
}

PEOPLE = {
    "8ea0e38b-efb3-4757-924a-5f94061cf8c2": "robin.kline@contoso.example",
    "2b1c8a8f-1f4e-4b9a-9d1e-5f0c8f0e7a11": "ada@contoso.example",
    "dc17674c-81d9-4adb-bfb2-8f6a442e4623": "frederick.cormier@contoso.com",
    ORGANIZER: "organizer@contoso.example",
}


def mock_token(router: respx.MockRouter) -> respx.Route:
    """MSAL's authority metadata and token endpoint; returns the token route."""
    router.get(f"{LOGIN}/v2.0/.well-known/openid-configuration").mock(
        return_value=json_response(API / "openid-configuration.json")
    )
    return router.post(f"{LOGIN}/oauth2/v2.0/token").mock(
        return_value=json_response(API / "token.json")
    )


def delta_url(team: str, channel: str) -> str:
    return f"{GRAPH}/teams/{team}/channels/{channel}/messages/delta"


def build(
    router: respx.MockRouter | None = None,
    *,
    state: MemoryState | None = None,
    clock: FrozenClock | None = None,
    seed_signing_keys: bool = True,
    **overrides: Any,
) -> TeamsConnector:
    settings = TeamsSettings.model_validate({**SAMPLE_SETTINGS, **overrides})
    transport = httpx.MockTransport(router.handler) if router is not None else None
    http = httpx.Client(transport=transport)
    runtime = ConnectorRuntime(
        instance_id="teams-test",
        base_iri="https://lrs-hub.example.com/xapi",
        http=http,
        clock=clock or FrozenClock(NOW),
        state=state if state is not None else MemoryState(),
    )
    connector = TeamsConnector(settings, runtime=runtime)
    if seed_signing_keys:
        connector.signing_keys.remember(SIGNING_KEYS)
    return connector
