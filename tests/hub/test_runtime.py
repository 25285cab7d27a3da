"""HubRuntime: the facts the worker tasks ask of it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from hub.clock import FrozenClock
from hub.config import load_config
from hub.inbox import INBOX
from hub.registry import Registry
from hub.runtime import HubRuntime
from hub.store.base import OutboxItem

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _runtime(tmp_path: Path, clock: FrozenClock) -> HubRuntime:
    (tmp_path / "connectors").mkdir()
    hub = {
        "base_iri": "https://lrs-hub.example.com/xapi",
        "data_dir": str(tmp_path / "data"),
        "lrs": [{"name": "lrs", "type": "local"}],
    }
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(hub))
    registry = Registry.from_classes([])
    # No store given: the embedded default, a SQLite file under data_dir (a real store).
    return HubRuntime(
        load_config(tmp_path, registry=registry),
        registry=registry,
        clock=clock,
    )


def _item(n: int) -> OutboxItem:
    return OutboxItem(
        statement_id=f"s{n}",
        body=b"{}",
        instance_id="i",
        verb="v",
        enqueued_at=NOW,
        received_at=NOW,
    )


def test_due_now_follows_what_can_be_leased(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    rt = _runtime(tmp_path, clock)
    assert not rt.due_now(INBOX)  # nothing there
    rt.store.outbox_append("lrs", [_item(1)], now=NOW)
    assert rt.due_now("lrs")
    assert not rt.due_now(INBOX)  # outboxes are apart
    lease = rt.store.outbox_lease("lrs", max_items=10, lease_seconds=30, now=NOW)
    assert lease is not None
    assert not rt.due_now("lrs")  # taken: due again only if its lease runs out
    clock.advance(31)
    assert rt.due_now("lrs")
    rt.close()
