"""Poll mode and webhook mode side by side on the one generic connector class."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connectors.webhook.connector import GenericWebhookConnector
from connectors.webhook.settings import GenericWebhookSettings
from connectors.webhook.spec import MappingSpec
from hub.clock import FrozenClock
from hub.connector import Capability, ConnectorRuntime
from hub.errors import BadRequest, ConfigError
from hub.testing.fixtures import MemoryState, strict_router


def test_capabilities(pk: Any, kit: Any) -> None:
    assert pk.build("together").active_capabilities() == {Capability.POLLING}
    assert kit.build("example-coaching").active_capabilities() == {Capability.WEBHOOK}
    assert type(pk.build("together")).capabilities() == {
        Capability.POLLING,
        Capability.WEBHOOK,
    }


def test_webhook_endpoint_of_a_poll_instance_answers_404(pk: Any, kit: Any) -> None:
    conn = pk.build("together")
    for method in ("GET", "POST"):
        with pytest.raises(BadRequest) as info:
            conn.handshake(kit.request(b"{}", method=method))
        assert info.value.status == 404
        assert "polls" in info.value.reason


def test_webhook_mode_poll_is_a_no_op(kit: Any) -> None:
    conn = kit.build("example-coaching")
    with strict_router() as router:  # any request would fail: none is mocked
        result = conn.poll(None, until=kit.received_at)
        assert not router.calls
    assert result.events == []
    assert result.next_cursor is None
    assert not result.has_more
    assert conn.default_interval == timedelta(days=1)


def test_poll_interval_comes_from_the_mapping(pk: Any) -> None:
    assert pk.build("together").default_interval == timedelta(days=1)
    assert pk.build("sparkwise").default_interval == timedelta(hours=1)


def test_poll_mode_without_poll_settings_raises_config_error_on_poll(kit: Any) -> None:
    conn = kit.build("sparkwise")  # parse()/map() still work: golden W2 uses them
    with pytest.raises(ConfigError, match="settings.poll"):
        conn.poll(None, until=kit.received_at)


def _poll_mapping(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "vendor": "inline",
        "mapping_version": 1,
        "platform": "Inline",
        "mode": "poll",
        "request": {"url": "{base_url}/rows", "format": "csv"},
        "items": "@",
        "snapshot": {"row_id": "id"},
        "routes": [
            {
                "when": "`true`",
                "statements": [
                    {
                        "verb": {
                            "key": "completed",
                            "id": "http://adlnet.gov/expapi/verbs/completed",
                            "display": "completed",
                        },
                        "actor": {"account_name": "user"},
                        "object": {"id": "activity_id('thing', id)"},
                        "timestamp": "to_datetime(at)",
                        "natural_key": ["id"],
                    }
                ],
            }
        ],
    }
    spec.update(overrides)
    return spec


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"request": None}, "needs request"),
        ({"request": {"url": "{base_url}/x", "params": {"from": "{watermark}"}}}, "watermark mode"),
        ({"request": {"url": "{base_url}/x", "format": "csv_in_json"}}, "report_path"),
        ({"request": {"url": "http://insecure.example/x"}}, "https://"),
        ({"request": {"url": "{base_url}/x", "params": {"k": "{secret:api_key}"}}}, "headers only"),
        ({"request": [{"url": "{base_url}/a"}, {"url": "{base_url}/b"}]}, "unique"),
        ({"watermark_overlap": "P1D"}, "choose one cursor"),
        ({"watermark_overlap": "soon", "snapshot": None}, "duration"),
    ],
)
def test_invalid_poll_mappings_fail_to_load(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MappingSpec.model_validate(_poll_mapping(**overrides))


def test_plain_csv_rows_with_row_hash_delivery_ids(pk: Any) -> None:
    settings = GenericWebhookSettings(
        tenant="acme", mapping=_poll_mapping(), poll={"base_url": "https://rows.example"}
    )
    conn = GenericWebhookConnector(
        settings,
        runtime=ConnectorRuntime(
            instance_id="inline",
            base_iri=pk.base_iri,
            http=httpx.Client(),
            clock=FrozenClock(pk.now),
            state=MemoryState(),
        ),
    )
    body = "\ufeffid,user,at\nr1,u1,2026-01-01T00:00:00Z\nr2,,2026-01-02T00:00:00Z\n"
    with strict_router(base_url="https://rows.example") as router:
        router.get("/rows").mock(return_value=httpx.Response(200, text=body))
        result = conn.poll(None, until=pk.now)
    assert [e.payload["id"] for e in result.events] == ["r1", "r2"]
    assert result.events[1].payload["user"] is None  # empty cell -> null
    assert all(e.delivery_id and e.delivery_id.startswith("row:") for e in result.events)
    assert json.dumps(result.next_cursor.model_dump(mode="json"))
