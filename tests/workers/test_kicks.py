"""Kicks: throttled to a leading and a trailing message per window, and never lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.store.sqlite import SqliteStore
from workers.kicks import Kicker

NORMALIZE = "hub.normalize_events"
DELIVER = "hub.deliver_statements"


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[str, ...], float | None]] = []
        self.down = False

    def __call__(self, task: str, args: tuple[str, ...], countdown: float | None) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.sent.append((task, args, countdown))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ClockedMarks:
    """The store's marks on the test's clock (the real stores expire them in real time)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.until: dict[tuple[str, str], float] = {}

    def mark_seen(self, namespace: str, key: str, *, ttl_seconds: float) -> bool:
        if self.until.get((namespace, key), float("-inf")) > self.clock.now:
            return False
        self.until[(namespace, key)] = self.clock.now + ttl_seconds
        return True

    def unmark_seen(self, namespace: str, key: str) -> None:
        self.until.pop((namespace, key), None)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.sqlite")


def kicker(broker: Broker, clock: Clock) -> Kicker:
    return Kicker(send=broker, clock=clock, window=0.2)


def test_a_burst_sends_one_leading_and_one_trailing_message(store: SqliteStore) -> None:
    broker, clock = Broker(), Clock()
    k = kicker(broker, clock)
    for _ in range(50):
        k.kick(store, NORMALIZE)
        k.kick(store, DELIVER, ("lrs-a",))
    assert broker.sent == [
        (NORMALIZE, (), None),
        (DELIVER, ("lrs-a",), None),
        # The leading message may run before the later kicks appended their work: the trailing
        # one is due at the window's end, after all of them.
        (NORMALIZE, (), 0.2),
        (DELIVER, ("lrs-a",), 0.2),
    ]


def test_every_throttled_kick_is_followed_by_a_message_due_after_it() -> None:
    broker, clock = Broker(), Clock()
    k, store = kicker(broker, clock), ClockedMarks(clock)
    # Kicks every 10 ms for a second: whatever the timing, each kick has a message due at or
    # after it (sent time + countdown), so its work is looked at.
    due: list[float] = []
    for _ in range(100):
        before = len(broker.sent)
        k.kick(store, NORMALIZE)
        due += [clock.now + (countdown or 0.0) for *_, countdown in broker.sent[before:]]
        assert any(d >= clock.now for d in due), f"the kick at {clock.now} is lost"
        clock.now += 0.01
    # ... and the throttle holds: about two messages per 0.2 s window, not one per kick.
    assert 5 <= len(broker.sent) <= 12


def test_a_kick_after_the_window_sends_at_once() -> None:
    broker, clock = Broker(), Clock()
    k, store = kicker(broker, clock), ClockedMarks(clock)
    assert k.kick(store, DELIVER, ("lrs",))
    clock.now += 0.25
    assert k.kick(store, DELIVER, ("lrs",))
    assert [countdown for *_, countdown in broker.sent] == [None, None]


def test_another_process_holding_the_window_gets_a_trailing_message(store: SqliteStore) -> None:
    broker_a, broker_b, clock = Broker(), Broker(), Clock()
    a, b = kicker(broker_a, clock), kicker(broker_b, clock)
    assert a.kick(store, NORMALIZE)
    # Process b has never kicked, but the store says a leading message went out this window.
    assert not b.kick(store, NORMALIZE)
    assert broker_b.sent == [(NORMALIZE, (), 0.2)]
    # A third kick (from a) finds both marks: b's trailing message is still to come.
    assert not a.kick(store, NORMALIZE)
    assert broker_a.sent == [(NORMALIZE, (), None)]


def test_force_skips_the_throttle(store: SqliteStore) -> None:
    broker, clock = Broker(), Clock()
    k = kicker(broker, clock)
    k.kick(store, NORMALIZE)
    assert k.kick(store, NORMALIZE, force=True)
    assert [countdown for *_, countdown in broker.sent] == [None, None]


def test_a_broker_error_leaves_no_mark_behind(store: SqliteStore) -> None:
    broker, clock = Broker(), Clock()
    k = kicker(broker, clock)
    broker.down = True
    with pytest.raises(ConnectionError):
        k.kick(store, NORMALIZE)
    broker.down = False
    # Without clearing the store mark this kick would only get a trailing message.
    other = kicker(broker, clock)
    assert other.kick(store, NORMALIZE)
    assert broker.sent == [(NORMALIZE, (), None)]
