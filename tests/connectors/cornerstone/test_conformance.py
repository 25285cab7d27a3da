"""Cornerstone passes the hub's connector conformance kit (polling and webhook suites)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from connectors.cornerstone.connector import CornerstoneConnector
from hub.connector import Connector
from hub.events import SourceEvent, WebhookRequest
from hub.testing.fixtures import StrictRouter, json_response
from hub.testing.suite import PollingConformance, WebhookConformance

FIXTURES = Path(__file__).parent / "fixtures"
API = FIXTURES / "api"
BASE = "https://acme.csod.com"
VIEWS = f"{BASE}/services/api/x/odata/api/views"
API_KEY = "test-x-api-key"


class TestCornerstoneConformance(PollingConformance, WebhookConformance):
    connector = CornerstoneConnector
    # The entry point is declared by the lead in pyproject.toml (see README).
    sample_settings: ClassVar[dict[str, Any]] = {
        "base_url": BASE,
        "client_id": "hub-client",
        "client_secret": "test-client-secret",
        "webhook_api_key": API_KEY,
        # Golden files show the pure mapping; the joins (HTTP) are tested in test_cornerstone.py.
        "enrich_webhooks": False,
    }
    fixtures = FIXTURES
    people: ClassVar[dict[str, str]] = {
        "6ebc7096-3d2a-4f5b-a1c9-7e8f9d0b1c2d": "jane.doe@example.com",
        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d": "rick.roe@example.com",
    }
    not_secret: ClassVar[dict[str, str]] = {
        "token_body": "how the token request is encoded, not a token"
    }
    signature_headers = ("x-api-key",)
    skip: ClassVar[dict[str, str]] = {
        "webhook.tampered": "x-api-key is a static header; the HMAC canonical string is [U]",
        "webhook.stale": "x-api-key carries no timestamp",
        "webhook.handshake": "the Edge endpoint verification format is unconfirmed [U]",
    }

    def events_from_fixture(self, connector: Connector[Any], path: Path) -> list[SourceEvent]:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, list):  # polled (joined) transcript rows
            return [
                SourceEvent.model_validate(
                    {"instance_id": self.instance_id, "received_at": self.now, "via": "poll", **i}
                )
                for i in raw
            ]
        return super().events_from_fixture(connector, path)

    def sample_body(self, h: Any) -> bytes:
        return (FIXTURES / "events" / "c1_training_completed.json").read_bytes()

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            headers={"x-api-key": API_KEY, "content-type": "application/json"},
            body=body,
            received_at=at,
        )

    def _token(self, router: StrictRouter) -> None:
        router.post(f"{BASE}/services/api/oauth2/token").mock(
            return_value=json_response(API / "token.json")
        )

    def mock_check_success(self, router: StrictRouter) -> None:
        self._token(router)
        router.get(f"{VIEWS}/vw_rpt_user").mock(return_value=json_response(API / "users.json"))

    def mock_check_failure(self, router: StrictRouter, status: int) -> None:
        self._token(router)
        router.get(f"{VIEWS}/vw_rpt_user").mock(return_value=httpx.Response(status, json={}))

    def _joins(self, router: StrictRouter) -> None:
        router.get(f"{VIEWS}/vw_rpt_user").mock(return_value=json_response(API / "users.json"))
        router.get(f"{VIEWS}/vw_rpt_training").mock(
            return_value=json_response(API / "trainings.json")
        )

    def poll_routes(self, router: StrictRouter) -> None:
        self._token(router)
        self._joins(router)
        url = f"{VIEWS}/vw_rpt_transcript"
        # Next links first: respx takes the first matching route.
        router.get(url, params={"$skiptoken": "cGFnZTI="}).mock(
            return_value=json_response(API / "transcript_page2.json")
        )
        router.get(url, params={"$skiptoken": "cGFnZTM="}).mock(
            return_value=json_response(API / "transcript_page3.json")
        )
        router.get(url).mock(return_value=json_response(API / "transcript_page1.json"))

    def repeated_token_routes(self, router: StrictRouter) -> None:
        self._token(router)
        self._joins(router)
        router.get(f"{VIEWS}/vw_rpt_transcript").mock(
            return_value=json_response(API / "transcript_page1.json")
        )

    def rate_limit_route(self, router: StrictRouter, retry_after: str) -> None:
        self._token(router)
        router.get(f"{VIEWS}/vw_rpt_transcript").mock(
            return_value=httpx.Response(429, headers={"Retry-After": retry_after})
        )

    def event_key(self, event: SourceEvent) -> str:
        return event.event_type + json.dumps(event.payload, sort_keys=True)


HMAC_TOKEN = b"csod-security-token"


class TestCornerstoneSignedWebhookConformance(TestCornerstoneConformance):
    """The same connector with the endpoint's Security Token set: x-api-key, the body digest,
    the Date window and the Authorization HMAC are all checked, so the kit's tampered-body and
    stale-request checks run instead of being opted out."""

    sample_settings: ClassVar[dict[str, Any]] = {
        **TestCornerstoneConformance.sample_settings,
        "webhook_hmac_secret": base64.b64encode(HMAC_TOKEN).decode(),
    }
    not_secret: ClassVar[dict[str, str]] = {
        **TestCornerstoneConformance.not_secret,
        "webhook_hmac_string": "the template of what is signed, not a secret",
    }
    signature_headers = ("x-api-key", "x-content-sha256", "date", "authorization")
    skip: ClassVar[dict[str, str]] = {
        "webhook.handshake": "the Edge endpoint verification format is unconfirmed [U]",
    }

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        date = format_datetime(at, usegmt=True)
        signed = f"POST\n/webhooks/test\n{digest}\n{date}".encode()
        signature = base64.b64encode(hmac.new(HMAC_TOKEN, signed, "sha256").digest()).decode()
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            headers={
                "x-api-key": API_KEY,
                "content-type": "application/json",
                "x-content-sha256": digest,
                "date": date,
                "authorization": signature,
            },
            body=body,
            received_at=at,
        )
