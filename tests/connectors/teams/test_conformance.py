"""The Teams connector against the hub's conformance kit: webhook and polling suites."""

from __future__ import annotations

import json
import re
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import httpx

from connectors.teams.connector import TeamsConnector
from hub.connector import Connector, ConnectorRuntime
from hub.events import SourceEvent, WebhookRequest
from hub.testing import (
    ConnectorConformance,
    PollingConformance,
    StrictRouter,
    WebhookConformance,
    json_response,
    mock_json_pages,
)
from tests.connectors.teams._graph import (
    API,
    CHAN1,
    CHAN2,
    FIXTURES,
    GRAPH,
    MEETING,
    ORGANIZER,
    PEOPLE,
    SAMPLE_SETTINGS,
    SIGNING_KEYS,
    TEAM1,
    TEAM2,
    delta_url,
    mock_token,
)

INSTALLED = any(ep.name == "teams" for ep in metadata.entry_points(group="lxhub.connectors"))
TOKEN = "Validation: Testing client application reachability for subscription Request-Id: 7f1e"


class _TeamsKit(ConnectorConformance):
    connector = TeamsConnector
    entry_point = "teams"
    # Checked as soon as the entry point is installed (pyproject.toml is owned elsewhere).
    check_entry_point = INSTALLED
    sample_settings: ClassVar[dict[str, Any]] = SAMPLE_SETTINGS
    fixtures = FIXTURES
    people: ClassVar[dict[str, str]] = PEOPLE
    not_secret: ClassVar[dict[str, str]] = {
        "client_certificate_thumbprint": "a public hash of the certificate, not a secret",
        "validate_tokens": "a switch",
        "signing_keys_url": "the public URL of Entra ID's public keys",
    }

    def build_connector(self, runtime: ConnectorRuntime) -> Connector[Any]:
        connector = super().build_connector(runtime)
        assert isinstance(connector, TeamsConnector)
        connector.signing_keys.remember(SIGNING_KEYS)  # the fixtures' validationTokens key set
        return connector

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        """Graph signs nothing: authenticity is each item's clientState, inside the body."""
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            headers={"content-type": "application/json"},
            body=body,
            received_at=at,
        )

    def events_from_fixture(self, connector: Connector[Any], path: Path) -> list[SourceEvent]:
        """`poll-*.json` are polled events (attendance reports only arrive by polling)."""
        if not path.name.startswith("poll-"):
            return super().events_from_fixture(connector, path)
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [
            SourceEvent.model_validate(
                {"instance_id": self.instance_id, "received_at": self.now, "via": "poll", **i}
            )
            for i in raw
        ]

    def mock_check_success(self, router: StrictRouter) -> None:
        mock_token(router)
        router.get(f"{GRAPH}/teams/{TEAM1}/channels/{CHAN1}").mock(
            return_value=json_response(API / "channel.json")
        )

    def mock_check_failure(self, router: StrictRouter, status: int) -> None:
        mock_token(router)
        router.get(f"{GRAPH}/teams/{TEAM1}/channels/{CHAN1}").mock(
            return_value=httpx.Response(status, json={"error": {"code": "x", "message": "y"}})
        )


class TestTeamsWebhook(_TeamsKit, WebhookConformance):
    expected_handshake_body = TOKEN.encode()
    skip: ClassVar[dict[str, str]] = {
        "webhook.stale": "Graph notifications carry no timestamp to check",
        "webhook.missing_header": "Graph sends no signature header; clientState is in the body",
        "webhook.malformed_header": "Graph sends no signature header; clientState is in the body",
    }

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        body = re.sub(rb'"clientState": "[^"]*"', b'"clientState": "forged"', request.body)
        return request.model_copy(update={"body": body})

    def handshake_request(self) -> WebhookRequest:
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            query_string=(
                "validationToken=Validation%3a+Testing+client+application+reachability+for+"
                "subscription+Request-Id%3a+7f1e"
            ),
            headers={"content-type": "text/plain"},
            body=b"",
            received_at=self.now,
        )

    def sample_body(self, h: Any) -> bytes:
        return (FIXTURES / "events" / "notification_batch_two.json").read_bytes()


class TestTeamsPolling(_TeamsKit, PollingConformance):
    skip: ClassVar[dict[str, str]] = {
        "plugin": "covered by TestTeamsWebhook (same class)",
        "check": "covered by TestTeamsWebhook (same class)",
        "mapping": "covered by TestTeamsWebhook (same fixtures)",
    }

    def poll_routes(self, router: StrictRouter) -> None:
        mock_token(router)
        router.get(delta_url(TEAM1, CHAN1), params={"$top": "50", "$expand": "replies"}).mock(
            return_value=json_response(API / "delta_channel1_page1.json")
        )
        router.get(delta_url(TEAM1, CHAN1), params={"$skiptoken": "page2token"}).mock(
            return_value=json_response(API / "delta_channel1_page2.json")
        )
        router.get(delta_url(TEAM2, CHAN2), params={"$top": "50"}).mock(
            return_value=json_response(API / "delta_channel2.json")
        )
        reports = f"{GRAPH}/users/{ORGANIZER}/onlineMeetings/{MEETING}/attendanceReports"
        router.get(reports).mock(return_value=json_response(API / "attendance_reports.json"))
        router.get(
            f"{reports}/c9b6db1c-d5eb-427d-a5c0-20088d9b22d7",
            params={"$expand": "attendanceRecords"},
        ).mock(return_value=json_response(API / "attendance_report.json"))

    def repeated_token_routes(self, router: StrictRouter) -> None:
        mock_token(router)
        page = json.loads((API / "delta_channel1_page1.json").read_text())
        mock_json_pages(router, "GET", delta_url(TEAM1, CHAN1), [page, page])

    def rate_limit_route(self, router: StrictRouter, retry_after: str) -> None:
        mock_token(router)
        router.get(delta_url(TEAM1, CHAN1)).mock(
            return_value=httpx.Response(429, headers={"Retry-After": retry_after})
        )

    def e2e_events(self, h: Any) -> list[SourceEvent]:
        self.poll_routes(h.router)
        return [e for page in self.drain(h) for e in page.events]
