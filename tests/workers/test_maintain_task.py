"""`hub.maintain`: every enabled instance's upkeep; one failing never stops the others, an
incomplete one still enqueues what it found, and failures land in the instance's health."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub import health
from hub.clock import FrozenClock
from hub.errors import MaintenanceIncomplete, TransientError
from hub.events import SourceEvent
from hub.queue import ListEnqueuer
from hub.store.sqlite import SqliteStore
from workers import state
from workers.tasks import polling as task

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def idle(instance: str) -> SourceEvent:
    return SourceEvent(instance_id=instance, event_type="idle", payload={}, delivery_id="i:1",
                       received_at=T0, via="poll")  # fmt: skip


class Upkeep:
    name = "upkeep"

    def __init__(self, outcome: list[SourceEvent] | Exception) -> None:
        self.outcome = outcome
        self.calls = 0

    def maintain(self) -> list[SourceEvent]:
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@dataclass
class Bound:
    instance_id: str
    connector: Any
    enabled: bool = True
    lrs: frozenset[str] | None = None


@dataclass
class FakeRuntime:
    store: SqliteStore
    connectors: dict[str, Bound]
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(T0))
    inbox: ListEnqueuer = field(default_factory=ListEnqueuer)


def test_each_instance_is_maintained_and_failures_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = [idle("yt")]
    rt = FakeRuntime(
        store=SqliteStore(tmp_path / "state.sqlite"),
        connectors={
            "down": Bound("down", Upkeep(TransientError("Graph answered 503"))),
            "yt": Bound("yt", Upkeep(MaintenanceIncomplete(found, ["WebSub: HTTP 503"]))),
            "ok": Bound("ok", Upkeep([idle("ok")])),
            "off": Bound("off", Upkeep([idle("off")]), enabled=False),
        },
    )
    monkeypatch.setattr(state, "runtime", lambda: rt)
    task.maintain()
    assert [e.instance_id for e in rt.inbox.events] == ["yt", "ok"]  # not lost with WebSub
    assert rt.connectors["off"].connector.calls == 0
    down, yt, ok = (health.read(rt.store, i) for i in ("down", "yt", "ok"))
    assert down.last_error == "maintenance: TransientError: Graph answered 503"
    assert yt.last_error == "maintenance: MaintenanceIncomplete: WebSub: HTTP 503"
    assert yt.last_error_at == T0
    assert yt.last_poll_at is None  # upkeep is not a poll
    assert ok.last_error is None
