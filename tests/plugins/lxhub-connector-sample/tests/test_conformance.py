"""The sample third-party plugin against lxhub's conformance kit, exactly as a plugin author
would write it: a few lines of facts and hooks, every inherited test for free."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from lxhub_connector_sample.connector import TOKEN_HEADER, SampleCoachConnector

from hub import WebhookRequest
from hub.testing import WebhookConformance

TOKEN = "test-shared-token"  # a test value, never a real secret


class TestSampleCoach(WebhookConformance):
    connector = SampleCoachConnector
    entry_point = "sample-coach"
    sample_settings: ClassVar[dict[str, Any]] = {"tenant": "acme", "token": TOKEN}
    fixtures = Path(__file__).parent / "fixtures"
    signature_headers = (TOKEN_HEADER.lower(),)
    skip: ClassVar[dict[str, str]] = {
        "check": "SampleCoach has no API to probe; check() has nothing to call",
        "webhook.handshake": "SampleCoach sends no URL-verification challenge",
        "webhook.stale": "a static shared token carries no timestamp to go stale",
        "webhook.tampered": "a static shared token authenticates the sender, not the body",
    }

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            headers={"content-type": "application/json", TOKEN_HEADER.lower(): TOKEN},
            body=body,
            received_at=at,
        )
