"""`hub.normalize_events`' loop: how it announces statements to the deliverers and when it stops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hub.pipeline import DrainReport, NormalizeReport
from workers.tasks import normalize as task


@dataclass
class FakeLrs:
    batch_size: int


@dataclass
class FakeRuntime:
    """What `_drain` and `_announce` use of a `HubRuntime`."""

    lrs: dict[str, FakeLrs]
    store: object = None
    clock: object = None
    metrics: Any = None
    normalize: object = None
    recorded: list[NormalizeReport] = field(default_factory=list)
    dues: list[bool] = field(default_factory=list)

    def due_now(self, outbox: str) -> bool:
        return self.dues.pop(0) if self.dues else False

    def lrs_config(self, name: str) -> FakeLrs:
        return self.lrs[name]

    def record_normalize(self, report: NormalizeReport) -> None:
        self.recorded.append(report)


@pytest.fixture
def kicks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...], bool]]:
    sent: list[tuple[str, tuple[str, ...], bool]] = []

    def kick(store: object, name: str, args: tuple[str, ...] = (), *, force: bool = False) -> bool:
        sent.append((name, args, force))
        return True

    monkeypatch.setattr(task, "kick", kick)
    return sent


def rounds(*appended: int) -> list[DrainReport]:
    return [
        DrainReport(
            leased=n,
            normalized=NormalizeReport(events=n, produced={"lrs": n}, appended={"lrs": n}),
        )
        for n in appended
    ]


def run(
    monkeypatch: pytest.MonkeyPatch, reports: list[DrainReport], due: list[bool]
) -> FakeRuntime:
    rt = FakeRuntime(lrs={"lrs": FakeLrs(batch_size=100)}, dues=list(due))
    rt.metrics = rt
    queue = list(reports)
    monkeypatch.setattr(task.state, "runtime", lambda: rt)
    monkeypatch.setattr(task, "drain_inbox", lambda **_: queue.pop(0) if queue else DrainReport())
    task._drain()
    return rt


def test_the_first_full_batch_is_announced_past_the_throttle_once(
    monkeypatch: pytest.MonkeyPatch, kicks: list[tuple[str, tuple[str, ...], bool]]
) -> None:
    # 50 + 30 < 100, then 50 more crosses a batch: forced; later rounds are throttled kicks.
    run(monkeypatch, rounds(50, 30, 50, 100, 100), due=[True] * 5)
    deliver = [force for name, args, force in kicks if name == "hub.deliver_statements"]
    assert deliver == [False, False, True, False, False]


def test_it_keeps_draining_while_events_keep_coming_and_stops_when_none_are_due(
    monkeypatch: pytest.MonkeyPatch, kicks: list[tuple[str, tuple[str, ...], bool]]
) -> None:
    # Each round's lease was not full, but more events were due: three rounds, then it stops.
    rt = run(monkeypatch, rounds(50, 50, 50, 50), due=[True, True, False, True])
    assert len(rt.recorded) == 3


def test_an_empty_lease_ends_the_task(
    monkeypatch: pytest.MonkeyPatch, kicks: list[tuple[str, tuple[str, ...], bool]]
) -> None:
    rt = run(monkeypatch, [DrainReport()], due=[True])
    assert rt.recorded == []
    assert kicks == []
