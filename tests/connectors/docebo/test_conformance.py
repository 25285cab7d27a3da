"""Docebo passes the hub's connector conformance kit (polling and webhook suites)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from connectors.docebo.connector import DoceboConnector
from hub.connector import Connector
from hub.events import SourceEvent, WebhookRequest
from hub.testing.fixtures import StrictRouter, json_response
from hub.testing.suite import PollingConformance, WebhookConformance

FIXTURES = Path(__file__).parent / "fixtures"
API = FIXTURES / "api"
BASE = "https://acme.docebosaas.com"
HOOK_USER, HOOK_PASS = "docebo-hook", "hook-pass"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TestDoceboConformance(PollingConformance, WebhookConformance):
    connector = DoceboConnector
    # The entry point is declared by the lead in pyproject.toml (see README); until the
    # distribution is reinstalled with it, the metadata check cannot pass.
    sample_settings: ClassVar[dict[str, Any]] = {
        "base_url": BASE,
        "grant": "password",
        "client_id": "hub-client",
        "client_secret": "test-client-secret",
        "username": "svc-lxhub",
        "password": "test-password",
        "webhook_auth": "basic",
        "webhook_username": HOOK_USER,
        "webhook_password": HOOK_PASS,
        # Golden files show the pure mapping; enrichment (HTTP) is tested in test_docebo.py.
        "enrich_completions": False,
    }
    fixtures = FIXTURES
    people: ClassVar[dict[str, str]] = {
        "12345": "john.doe@example.com",
        "23456": "ann.smith@example.com",
        "34567": "bo.wong@example.com",
        "9999": "my.user@example.com",
    }
    not_secret: ClassVar[dict[str, str]] = {
        "webhook_token_param": "the NAME of the query parameter, not its value"
    }
    signature_headers = ("authorization",)
    skip: ClassVar[dict[str, str]] = {
        "webhook.tampered": "Docebo signs nothing (vendors.md 2.7): Basic auth covers no body",
        "webhook.stale": "Docebo sends no timestamp; Basic auth has no replay window",
        "webhook.handshake": "Docebo has no URL-verification handshake",
    }

    # -- fixtures: webhook bodies, or polled SourceEvent lists ---------------------------------

    def events_from_fixture(self, connector: Connector[Any], path: Path) -> list[SourceEvent]:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, list):  # polled records (event types no webhook carries)
            return [
                SourceEvent.model_validate(
                    {"instance_id": self.instance_id, "received_at": self.now, "via": "poll", **i}
                )
                for i in raw
            ]
        return super().events_from_fixture(connector, path)

    def sample_body(self, h: Any) -> bytes:
        return (FIXTURES / "events" / "d1_enrollment_completed.json").read_bytes()

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            headers={
                "authorization": basic(HOOK_USER, HOOK_PASS),
                "content-type": "application/json",
            },
            body=body,
            received_at=at,
        )

    # -- check() ------------------------------------------------------------------------------

    def _token(self, router: StrictRouter) -> None:
        router.post(f"{BASE}/oauth2/token").mock(return_value=json_response(API / "token.json"))

    def mock_check_success(self, router: StrictRouter) -> None:
        self._token(router)
        router.get(f"{BASE}/manage/v1/user").mock(
            return_value=json_response(API / "user_list.json")
        )

    def mock_check_failure(self, router: StrictRouter, status: int) -> None:
        self._token(router)
        router.get(f"{BASE}/manage/v1/user").mock(return_value=httpx.Response(status, json={}))

    # -- polling ------------------------------------------------------------------------------

    def poll_routes(self, router: StrictRouter) -> None:
        self._token(router)
        url = f"{BASE}/learn/v1/enrollments"
        router.get(url, params={"page": "1"}).mock(
            return_value=json_response(API / "learn_enrollments_page1.json")
        )
        router.get(url, params={"page": "2", "cursor": "c2VhcmNoX2FmdGVyOjE="}).mock(
            return_value=json_response(API / "learn_enrollments_page2.json")
        )
        router.get(url, params={"page": "3", "cursor": "c2VhcmNoX2FmdGVyOjI="}).mock(
            return_value=json_response(API / "learn_enrollments_page3.json")
        )
        router.get(f"{BASE}/learningplan/v1/learningplans/enrollments").mock(
            return_value=json_response(API / "learningplan_enrollments.json")
        )

    def repeated_token_routes(self, router: StrictRouter) -> None:
        self._token(router)
        page = json.loads((API / "learn_enrollments_page1.json").read_text())
        page["data"]["total_page_count"] = 9
        router.get(f"{BASE}/learn/v1/enrollments").mock(
            side_effect=[httpx.Response(200, json=page), httpx.Response(200, json=page)]
        )

    def rate_limit_route(self, router: StrictRouter, retry_after: str) -> None:
        self._token(router)
        router.get(f"{BASE}/learn/v1/enrollments").mock(
            return_value=httpx.Response(429, headers={"Retry-After": retry_after})
        )

    def event_key(self, event: SourceEvent) -> str:
        return event.event_type + json.dumps(event.payload, sort_keys=True)
