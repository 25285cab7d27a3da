"""Golden-file test of the sample plugin's mapper: every fixture event maps to its expected
statements (a missing expected file fails; on mismatch the output is written next to it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub import MappingContext, SourceEvent
from hub.config import IdentityConfig
from hub.identity import IdentityResolver

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class _DictCache:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def kv_get(self, namespace: str, key: str) -> str | None:
        return self.data.get((namespace, key))

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None:
        self.data[(namespace, key)] = value


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.syspath_prepend(str(ROOT))
    from lxhub_connector_sample import connector

    return connector


@pytest.mark.parametrize(
    "event_file", sorted((FIXTURES / "events").glob("*.json")), ids=lambda p: p.stem
)
def test_fixture_maps_to_expected(plugin, event_file: Path) -> None:  # noqa: ANN001
    cls = plugin.SampleCoachConnector
    raw = json.loads(event_file.read_text())
    event = SourceEvent(
        instance_id="sample",
        event_type=raw["type"],
        payload=raw,
        delivery_id=raw["id"],
        received_at=datetime(2024, 5, 3, 15, 1, tzinfo=UTC),
    )
    ctx = MappingContext(
        base_iri="https://lrs-hub.example.com/xapi",
        source=cls.source,
        tenant="acme",
        platform=cls.platform,
        connector_type=cls.name,
        connector_version=cls.version,
        instance_id="sample",
        home_page="https://acme.samplecoach.example",
        actors=IdentityResolver(IdentityConfig(), store=_DictCache()),
        event=event,
    )
    statements = cls.mapper.map(event, ctx)
    got = [s.to_json() for s in statements]  # type: ignore[union-attr]
    expected_file = FIXTURES / "expected" / event_file.name
    if not expected_file.exists() or json.loads(expected_file.read_text()) != got:
        out = expected_file.with_suffix(".actual.json")
        out.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        pytest.fail(f"{event_file.name}: output differs from {expected_file.name}; see {out.name}")
    assert got[0]["actor"] == {"mbox": "mailto:ada@example.com", "name": "Ada Lovelace"}
