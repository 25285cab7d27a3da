"""`lxhub dlq list|show|replay|purge` against a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.commands import CliState
from hub.inbox import INBOX
from hub.registry import Registry
from hub.store.base import DeadLetter, DeadLetterFilter
from hub.store.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def statement(valid: bool = True) -> bytes:
    st = {
        "id": str(uuid4()),
        "actor": {"mbox": "mailto:ada@example.com" if valid else "ada@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "x"}},
        "object": {"id": "https://lrs-hub.example.com/xapi/activities/t/t/course/1"},
        "timestamp": "2024-05-01T12:00:00.000Z",
    }
    return json.dumps(st).encode()


@pytest.fixture
def hub(tmp_path: Path) -> tuple[Path, SqliteStore]:
    config = tmp_path / "config"
    (config / "connectors").mkdir(parents=True)
    (config / "hub.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nlrs:\n  - name: local\n    type: local\n"
    )
    store = SqliteStore(tmp_path / "data" / "state.sqlite")
    good, bad = statement(), statement(valid=False)
    store.dlq_add(DeadLetter(
        id="deliver:local:good", stage="deliver", lrs="local", instance_id="acme",
        statement_id=json.loads(good)["id"], reason="lrs_rejected", detail="LRS said no",
        first_at=T0, last_at=T0, body=good,
    ))  # fmt: skip
    store.dlq_add(DeadLetter(
        id="deliver:local:bad", stage="deliver", lrs="local", instance_id="acme",
        statement_id=json.loads(bad)["id"], reason="lrs_rejected", detail="bad mbox",
        first_at=T0, last_at=T0 + timedelta(hours=1), body=bad,
    ))  # fmt: skip
    envelope = {"instance_id": "acme", "event_type": "session.completed", "payload": {"a": 1},
                "delivery_id": "evt_1", "received_at": T0.isoformat(), "via": "webhook",
                "attempt": 0}  # fmt: skip
    store.dlq_add(DeadLetter(
        id="identity:acme:1", stage="identity", instance_id="acme", reason="unresolved_actor",
        detail="no identity", first_at=T0, last_at=T0 + timedelta(hours=2), envelope=envelope,
    ))  # fmt: skip
    return config, store


def run(config: Path, *args: str) -> tuple[int, str]:
    state = CliState(registry_factory=lambda: Registry.from_classes([]))
    result = CliRunner().invoke(main, ["--config", str(config), "dlq", *args], obj=state)
    return result.exit_code, result.output


def test_list_filters_and_json(hub: tuple[Path, SqliteStore]) -> None:
    config, _ = hub
    code, out = run(config, "list", "--json")
    assert code == 0
    assert [d["id"] for d in json.loads(out)] == [
        "identity:acme:1",
        "deliver:local:bad",
        "deliver:local:good",
    ]  # newest first
    code, out = run(config, "list", "--json", "--stage", "deliver", "--since", "2024-05-01T12:30")
    assert [d["id"] for d in json.loads(out)] == ["deliver:local:bad"]
    code, out = run(config, "list", "--since", "yesterday")
    assert code != 0
    assert "is not a date" in out


def test_show_prints_the_original_statement(hub: tuple[Path, SqliteStore]) -> None:
    config, _ = hub
    code, out = run(config, "show", "deliver:local:bad")
    assert code == 0
    assert json.loads(out)["statement"]["actor"] == {"mbox": "ada@example.com"}
    code, out = run(config, "show", "nope")
    assert code != 0
    assert "no dead letter 'nope'" in out


def test_replay_revalidates_and_requeues_each_to_its_stage(hub: tuple[Path, SqliteStore]) -> None:
    config, store = hub
    code, out = run(config, "replay", "--yes")
    assert code == 1  # one letter could not be replayed: it says which and why
    assert "replayed 2 of 3" in out
    assert "kept deliver:local:bad: still invalid" in out
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert store.outbox_stats("local", now=now).ready == 1  # the good statement, back in line
    lease = store.outbox_lease(INBOX, max_items=10, lease_seconds=5, now=now)
    assert lease is not None
    [event] = [json.loads(i.body) for i in lease.items]
    assert event["via"] == "replay"
    assert event["attempt"] == 1
    assert [d.id for d in store.dlq_list(DeadLetterFilter())] == ["deliver:local:bad"]


def test_purge_deletes_only_what_matches(hub: tuple[Path, SqliteStore]) -> None:
    config, store = hub
    code, out = run(config, "purge", "--reason", "unresolved_actor", "--yes")
    assert code == 0
    assert "purged 1" in out
    assert {d.id for d in store.dlq_list(DeadLetterFilter())} == {
        "deliver:local:good",
        "deliver:local:bad",
    }
