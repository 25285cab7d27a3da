"""`lxhub demo` (issue 7 item 6): Jamie's week through the real receiver and pipeline.

The command runs as a newcomer runs it, with the installed connector plugins, in a temporary data
directory (``LXHUB_DATA_DIR``). Nothing is mocked in process: the sources' requests go over HTTP
to the real receiver on 127.0.0.1, the connectors' vendor calls go over HTTP to the demo's fake,
and the statements are read from the local LRS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub.commands import CliState
from hub.commands.demo_cmd import demo_cmd
from hub.registry import Registry, get_registry
from hub.xapi.validation import validate_statement

JAMIE = "mailto:jamie@example.com"
COLLEAGUES = {"mailto:sam.okafor@example.com", "mailto:priya.shah@example.com"}
PLATFORMS = {"Docebo", "YouTube", "Microsoft Teams", "Slack", "AcmeCoach"}


def run_demo(data_dir: Path, *args: str) -> Any:
    """`lxhub demo --json [args]` with `data_dir` as the data directory; the parsed output."""
    result = CliRunner().invoke(
        demo_cmd,
        ["--json", *args],
        obj=CliState(),
        env={"LXHUB_DATA_DIR": str(data_dir)},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "data"


@pytest.fixture(scope="module")
def first(data_dir: Path) -> Any:
    return run_demo(data_dir)


def unstored(statement: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in statement.items() if k != "stored"}


def ids(report: Any) -> list[str]:
    return sorted(st["id"] for st in report["statements"])


def test_every_step_is_received_and_becomes_statements(first: Any) -> None:
    assert first["ok"] is True
    steps = {s["key"]: s for s in first["steps"]}
    assert set(steps) == {"docebo", "youtube", "teams", "slack", "coaching"}
    for step in steps.values():
        assert step["skipped"] is None, step
        assert step["error"] is None, step
        assert step["responses"], step
        assert all(200 <= r["status"] < 300 for r in step["responses"]), step
        assert step["statements"] > 0, step
        assert step["dead_letters"] == 0, step
    assert first["dead_letters"] == []
    assert first["unmatched_vendor_calls"] == []
    assert first["vendor_api_calls"] > 0  # tokens, user lookups and enrichment really happened


def test_the_timeline_shows_all_five_steps_in_time_order(first: Any) -> None:
    timeline = first["timeline"]
    assert {row["platform"] for row in timeline} == PLATFORMS
    stamps = [row["timestamp"] for row in timeline]
    assert stamps == sorted(stamps)
    texts = [row["text"] for row in timeline]
    assert any(t.startswith("Jamie registered for “Welcome to Acme") for t in texts)
    assert any(r["platform"] == "Docebo" and "92/100 score" in r["highlights"] for r in timeline)
    assert any("Google I/O 101" in t for t in texts)
    assert any(t.startswith("Jamie posted in Engineering onboarding") for t in texts)
    assert any(t.startswith("Priya Shah replied in #ask-engineering") for t in texts)
    assert any(t.startswith("Jamie attended “Asking for help early”") for t in texts)


def test_jamie_is_one_actor_in_every_tool_and_statements_are_valid(first: Any) -> None:
    statements = first["statements"]
    assert len(statements) == len(first["timeline"]) > 10
    for st in statements:
        # As the hub sent it: `stored` and `authority` are the LRS's own additions.
        sent = {k: v for k, v in st.items() if k not in {"stored", "authority"}}
        assert validate_statement(sent) == [], st["id"]
        # An identity that failed to resolve would show up as an account actor.
        assert set(st["actor"]) <= {"mbox", "name", "objectType"}, st["actor"]
        assert st["actor"]["mbox"] in {JAMIE} | COLLEAGUES
    jamie = [st for st in statements if st["actor"]["mbox"] == JAMIE]
    assert {st["context"]["platform"] for st in jamie} == PLATFORMS
    assert len(jamie) == len(statements) - 2  # Sam's and Priya's replies are theirs


def test_text_output_reads_as_a_timeline(tmp_path: Path) -> None:
    result = CliRunner().invoke(demo_cmd, [], obj=CliState(), env={"LXHUB_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Timeline" in out
    for platform in PLATFORMS:
        assert f"✓ {platform}" in out
    assert "Mon 10 Mar 2025" in out
    assert "Fri 14 Mar 2025" in out
    assert f"all carry the actor {JAMIE}" in out
    assert "lxhub up" in out


def test_a_second_run_starts_fresh_and_gives_the_same_statement_ids(
    first: Any, data_dir: Path
) -> None:
    second = run_demo(data_dir)
    assert second["kept"] is False
    assert ids(second) == ids(first)
    # Byte for byte the same statements, apart from when the LRS stored them.
    assert [unstored(st) for st in second["statements"]] == [
        unstored(st) for st in first["statements"]
    ]


def test_keep_replays_onto_the_same_data_without_storing_anything_twice(
    first: Any, data_dir: Path
) -> None:
    kept = run_demo(data_dir, "--keep")
    assert kept["kept"] is True
    assert ids(kept) == ids(first)
    # Every redelivered webhook was accepted (2xx) and dropped as a duplicate.
    for step in kept["steps"]:
        assert all(200 <= r["status"] < 300 for r in step["responses"]), step
        assert step["statements"] == 0, step


def test_the_demo_never_wipes_a_directory_it_did_not_make(tmp_path: Path) -> None:
    foreign = tmp_path / "demo"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(demo_cmd, [], obj=CliState(), env={"LXHUB_DATA_DIR": str(tmp_path)})
    assert result.exit_code != 0
    assert "refusing to wipe" in str(result.exception)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_a_step_whose_connector_is_not_installed_is_skipped_with_a_note(tmp_path: Path) -> None:
    installed = get_registry()
    without_youtube = Registry.from_classes(
        [installed[name].cls for name in installed if name != "youtube"]
    )
    result = CliRunner().invoke(
        demo_cmd,
        ["--json"],
        obj=CliState(registry_factory=lambda: without_youtube),
        env={"LXHUB_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    steps = {s["key"]: s for s in report["steps"]}
    assert "not installed" in (steps["youtube"]["skipped"] or "")
    assert {row["platform"] for row in report["timeline"]} == PLATFORMS - {"YouTube"}
