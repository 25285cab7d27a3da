"""The hub's conformance kit, run against the generic connector's POLL mode with the Sparkwise
preset (watermark windows). The class also has the Webhook capability (used by webhook-mode
mappings), so the hooks that would take the webhook path are pointed at the poll path here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from connectors.webhook.connector import GenericWebhookConnector
from hub.connector import Connector
from hub.events import SourceEvent
from hub.testing.fixtures import StrictRouter
from hub.testing.suite import Harness, PollingConformance

API = "https://api.sparkwise.example/v1"
FIXTURES = Path(__file__).parent / "fixtures"


def _record(n: int, day: str) -> dict[str, Any]:
    return {
        "id": f"cmp_{n}",
        "remoteUserId": f"ext-user-{n}",
        "clusterId": "cl_789",
        "moduleId": "mod_456",
        "moduleName": "Team Collaboration",
        "duration": 60,
        "attended": True,
        "sessionScheduledStartAt": day,
    }


class TestGenericWebhookPollSparkwise(PollingConformance):
    connector = GenericWebhookConnector
    entry_point = "webhook"
    sample_settings = {
        "preset": "sparkwise",
        "tenant": "acme",
        "actor_home_page": "https://learn.acme.example",
        "secrets": {"api_key": "test-key"},
        "poll": {"base_url": API, "start": "2025-06-20T00:00:00Z"},
    }
    fixtures = FIXTURES / "sparkwise"
    skip = {
        "check": "check() sends no request: every request spends the vendor's rate limit; the "
        "templates, variables and secrets are checked when the instance is built",
        "polling.repeated_token": "no page tokens: windows are computed from the cursor's mark, "
        "which always advances, so a source cannot make the poller loop",
        "plugin.descriptions": "the nested mapping format is documented key by key in "
        "connectors/webhook/README.md, not yet as Field descriptions",
    }
    _name = "names a secret held in settings.secrets; the mapping never holds values"
    not_secret = {
        "secrets": "dict[str, SecretStr]: every value is a SecretStr",
        "mapping.auth.secrets": _name,
        "mapping.auth.username_secret": _name,
        "mapping.handshakes.secret": _name,
        "mapping.auth.secret_encoding": "an encoding name (raw, base64, hex)",
        "mapping.handshakes.token": "a JMESPath to the challenge token in the body",
        "mapping.routes.statements.verb.key": "the verb's natural-key token",
        "mapping.routes.statements.natural_key": "expressions naming the fact's key fields",
    }

    # --- hooks -----------------------------------------------------------------------------

    def poll_routes(self, router: StrictRouter) -> None:
        # now = 2025-07-01T12:00Z, until = now - 5 min; 7-day windows from 2025-06-20, 1-day
        # overlap: two pages.
        pages = [
            ("2025-06-19T00:00:00Z", "2025-06-27T00:00:00Z", [_record(1, "2025-06-22T14:00:00Z")]),
            ("2025-06-26T00:00:00Z", "2025-07-01T11:55:00Z", [_record(2, "2025-06-30T09:00:00Z")]),
        ]
        for start, end, body in pages:
            router.get(f"{API}/completions", params={"from": start, "to": end}).mock(
                return_value=httpx.Response(200, json=body)
            )

    def rate_limit_route(self, router: StrictRouter, retry_after: str) -> None:
        router.get(f"{API}/completions").mock(
            return_value=httpx.Response(429, headers={"Retry-After": retry_after})
        )

    def events_from_fixture(self, connector: Connector[Any], path: Path) -> list[SourceEvent]:
        """A fixture is a recorded completions response, decoded as poll() decodes it."""
        assert isinstance(connector, GenericWebhookConnector)
        assert connector.poller is not None
        return connector.poller.events_from_response(
            "completions", path.read_bytes(), received_at=self.now
        )

    def e2e_events(self, h: Harness) -> list[SourceEvent]:
        # Polling path (the base class would take the webhook path for a Webhook class). The
        # kit calls this twice per test; the routes are registered once.
        if not getattr(h, "_poll_routes", False):
            self.poll_routes(h.router)
            h._poll_routes = True  # type: ignore[attr-defined]
        return [e for page in self.drain(h) for e in page.events]
