"""Golden files: every fixture body of every preset maps to exactly the expected statements.

``fixtures/<preset>/events/<name>.json`` is a request body; ``fixtures/<preset>/expected/
<name>.json`` the list of statements it must produce (xAPI JSON). A missing or different
expected file fails and writes ``<name>.actual.json`` next to it for review (rename to accept).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.webhook.settings import available_presets
from hub.xapi import StatementJson, canonical_bytes

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.glob("*/events/*.json"))


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _golden(actual: Any, expected_file: Path) -> None:
    out = expected_file.with_name(expected_file.stem + ".actual.json")
    rendered = _dump(actual)
    if not expected_file.is_file():
        out.write_text(rendered, encoding="utf-8")
        pytest.fail(f"missing {expected_file}; actual output written to {out.name} for review")
    expected = expected_file.read_text(encoding="utf-8")
    if json.loads(expected) != actual:
        out.write_text(rendered, encoding="utf-8")
        diff = "".join(
            difflib.unified_diff(
                _dump(json.loads(expected)).splitlines(True),
                rendered.splitlines(True),
                "expected",
                "actual",
            )
        )
        pytest.fail(f"{expected_file.name} differs (actual in {out.name}):\n{diff}")
    out.unlink(missing_ok=True)


def test_every_preset_has_fixtures_and_settings(kit: Any) -> None:
    presets = available_presets()
    assert presets == ["coachaccountable", "example-coaching", "sparkwise", "together"]
    # Together is poll-only: its golden files are recorded API responses under poll/fixtures.
    for preset in [p for p in presets if p != "together"]:
        assert preset in kit.preset_settings
        assert list((FIXTURES / preset / "events").glob("*.json")), f"{preset} has no fixture"
    assert list((FIXTURES.parent / "poll" / "fixtures" / "api").glob("together-*.json"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_golden(case: Path, kit: Any) -> None:
    preset = case.parts[-3]
    statements = kit.map_body(kit.build(preset), case.read_bytes())
    _golden(statements, case.parent.parent / "expected" / case.name)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_mapping_twice_gives_the_same_ids(case: Path, kit: Any) -> None:
    preset = case.parts[-3]
    first = kit.map_body(kit.build(preset), case.read_bytes())
    second = kit.map_body(kit.build(preset), case.read_bytes())
    assert [s["id"] for s in first] == [s["id"] for s in second]
    assert first == second


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_statements_are_json_that_the_models_accept(case: Path, kit: Any) -> None:
    # The engine fills xAPI JSON instead of pydantic models (StatementJson); the models'
    # structural rules (one IFI, objectType tags, no unknown keys) must still hold, and the
    # model of each statement must give the very bytes the pipeline queues.
    conn = kit.build(case.parts[-3])
    statements = kit.map_events(conn, conn.parse(kit.request(case.read_bytes())))
    assert statements
    for statement in statements:
        assert isinstance(statement, StatementJson)
        model = statement.to_statement()
        assert canonical_bytes(model, now=kit.received_at) == canonical_bytes(
            statement, now=kit.received_at
        )
