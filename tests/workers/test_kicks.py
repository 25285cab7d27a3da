"""Kicks: at most one queued message per target, and none lost once its task has started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.store.sqlite import SqliteStore
from workers import kicks
from workers.app import app


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[str, ...]]] = []
        self.down = False

    def send_task(self, name: str, args: tuple[str, ...] = (), **_: Any) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.sent.append((name, tuple(args)))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    fake = Broker()
    monkeypatch.setattr(app, "send_task", fake.send_task)
    return fake


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.sqlite")


def test_a_burst_of_kicks_queues_one_message_per_target(broker: Broker, store: SqliteStore) -> None:
    for _ in range(50):
        kicks.kick(store, "hub.normalize_events")
        kicks.kick(store, "hub.deliver_statements", ("lrs-a",))
    kicks.kick(store, "hub.deliver_statements", ("lrs-b",))
    assert broker.sent == [
        ("hub.normalize_events", ()),
        ("hub.deliver_statements", ("lrs-a",)),
        ("hub.deliver_statements", ("lrs-b",)),
    ]


def test_a_kick_after_the_task_started_sends_again(broker: Broker, store: SqliteStore) -> None:
    # The lost-kick case of the old time throttle: the running task is past its last lease when
    # new work arrives; the new work's kick must start another run, however soon it comes.
    assert kicks.kick(store, "hub.deliver_statements", ("lrs",))
    kicks.kicked(store, "hub.deliver_statements", ("lrs",))  # the task starts
    assert kicks.kick(store, "hub.deliver_statements", ("lrs",))
    assert len(broker.sent) == 2
    # ... while a kick before its task started is absorbed by the queued message.
    assert not kicks.kick(store, "hub.deliver_statements", ("lrs",))
    assert len(broker.sent) == 2


def test_force_sends_even_when_a_message_seems_queued(broker: Broker, store: SqliteStore) -> None:
    kicks.kick(store, "hub.normalize_events")
    assert kicks.kick(store, "hub.normalize_events", force=True)
    assert len(broker.sent) == 2


def test_a_broker_error_leaves_no_mark_behind(broker: Broker, store: SqliteStore) -> None:
    broker.down = True
    with pytest.raises(ConnectionError):
        kicks.kick(store, "hub.normalize_events")
    broker.down = False
    # Without clearing the mark, this kick would be suppressed for KICK_TTL seconds.
    assert kicks.kick(store, "hub.normalize_events")
    assert broker.sent == [("hub.normalize_events", ())]
