"""Helpers of the poll-mode tests: poll-mode instances on a frozen clock and a memory state
store, the recorded API responses, and golden-file comparison. Handed to tests as the
``pk`` fixture (test modules cannot import conftest under --import-mode=importlib)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.webhook.connector import GenericWebhookConnector
from connectors.webhook.settings import GenericWebhookSettings
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.testing.fixtures import MemoryState, assert_golden

BASE_IRI = "https://lrs-hub.example.com/xapi"
NOW = datetime(2026, 2, 1, 12, 0, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
TOGETHER_API = "https://api.togetherplatform.example"
SPARKWISE_API = "https://api.sparkwise.example/v1"

SETTINGS: dict[str, dict[str, Any]] = {
    "together": {
        "tenant": "acme",
        "secrets": {"client_id": SecretStr("client-1"), "api_key": SecretStr("together-key")},
        "poll": {
            "base_url": TOGETHER_API,
            "variables": {"organization_id": "org_42", "emit_mentored": "true"},
        },
    },
    "sparkwise": {
        "tenant": "acme",
        "actor_home_page": "https://learn.acme.example",
        "secrets": {"api_key": SecretStr("sparkwise-key")},
        "poll": {"base_url": SPARKWISE_API, "start": "2026-01-01T00:00:00Z"},
    },
}


class PollKit:
    """Builders and fixture access for poll-mode tests."""

    base_iri = BASE_IRI
    now = NOW
    fixtures = FIXTURES
    together_api = TOGETHER_API
    sparkwise_api = SPARKWISE_API

    @staticmethod
    def build(
        preset: str,
        *,
        clock: FrozenClock | None = None,
        state: MemoryState | None = None,
        **overrides: Any,
    ) -> GenericWebhookConnector:
        values: dict[str, Any] = {**SETTINGS[preset], "preset": preset}
        for key, value in overrides.items():
            if key == "poll":
                values["poll"] = {**values["poll"], **value}
            else:
                values[key] = value
        runtime = ConnectorRuntime(
            instance_id=f"test-{preset}",
            base_iri=BASE_IRI,
            http=httpx.Client(),
            clock=clock or FrozenClock(NOW),
            state=state if state is not None else MemoryState(),
        )
        return GenericWebhookConnector(GenericWebhookSettings(**values), runtime=runtime)

    @staticmethod
    def api(name: str) -> Any:
        return json.loads((FIXTURES / "api" / name).read_text("utf-8"))

    @staticmethod
    def api_bytes(name: str) -> bytes:
        return (FIXTURES / "api" / name).read_bytes()

    @staticmethod
    def golden(actual: Any, name: str) -> None:
        assert_golden(actual, FIXTURES / "expected" / name, what="statements")


@pytest.fixture
def pk() -> type[PollKit]:
    return PollKit
