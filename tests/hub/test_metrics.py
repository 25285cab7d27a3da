"""`hub.metrics`: the store-backed per-minute rates of the status page, the receiver's webhook
counters and the always-complete family list of `/metrics`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.delivery import DeliveryReport
from hub.events import SourceEvent
from hub.metrics import (
    DELIVERED,
    EVENTS,
    Metrics,
    Rates,
    ReceiverCollector,
    record_delivered,
    record_events,
)
from hub.store.sqlite import SqliteStore
from hub.webhooks import Reason, ReceiverStats

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.sqlite")
    try:
        yield s
    finally:
        s.close()


def test_no_activity_is_zero(store: SqliteStore) -> None:
    assert Rates(store).per_minute(EVENTS, "x", now=T0) == 0.0


def test_steady_rate_over_the_window(store: SqliteStore) -> None:
    rates = Rates(store, window_minutes=5)
    for second in range(0, 300, 10):  # 12 every 10 s for 5 minutes = 72/min
        rates.add(DELIVERED, "lrs-a", 12, now=T0 + timedelta(seconds=second))
    rate = rates.per_minute(DELIVERED, "lrs-a", now=T0 + timedelta(seconds=300))
    assert rate == pytest.approx(72.0, rel=0.05)
    assert rates.per_minute(DELIVERED, "lrs-b", now=T0 + timedelta(seconds=300)) == 0.0


def test_a_burst_counts_as_a_minute_not_as_seconds(store: SqliteStore) -> None:
    rates = Rates(store)
    rates.add(EVENTS, "c", 100, now=T0)
    # 5 s later: 100 events in the last minute, not 1,200/min extrapolated from 5 s.
    assert rates.per_minute(EVENTS, "c", now=T0 + timedelta(seconds=5)) == 100.0


def test_old_activity_leaves_the_window(store: SqliteStore) -> None:
    rates = Rates(store, window_minutes=5)
    rates.add(EVENTS, "c", 50, now=T0)
    assert rates.per_minute(EVENTS, "c", now=T0 + timedelta(minutes=3)) == pytest.approx(
        50 / 3)
    assert rates.per_minute(EVENTS, "c", now=T0 + timedelta(minutes=6)) == 0.0
    rates.add(EVENTS, "c", 10, now=T0 + timedelta(minutes=6))
    assert rates.per_minute(EVENTS, "c", now=T0 + timedelta(minutes=6, seconds=1)) == 10.0


def test_two_processes_share_the_rate(tmp_path: Path) -> None:
    a = SqliteStore(tmp_path / "shared.sqlite")
    b = SqliteStore(tmp_path / "shared.sqlite")
    try:
        Rates(a).add(DELIVERED, "lrs", 30, now=T0)
        Rates(b).add(DELIVERED, "lrs", 30, now=T0 + timedelta(seconds=20))
        assert Rates(a).per_minute(DELIVERED, "lrs", now=T0 + timedelta(seconds=30)) == 60.0
    finally:
        a.close()
        b.close()


def test_hooks(store: SqliteStore) -> None:
    events = [SourceEvent(instance_id=i, event_type="x", payload={}, received_at=T0)
              for i in ("a", "a", "b")]
    record_events(store, events, now=T0)
    record_delivered(store, DeliveryReport(lrs="main", stored=7), now=T0)
    record_delivered(store, DeliveryReport(lrs="main", stored=0), now=T0)
    rates = Rates(store)
    later = T0 + timedelta(seconds=1)
    assert rates.per_minute(EVENTS, "a", now=later) == 2.0
    assert rates.per_minute(EVENTS, "b", now=later) == 1.0
    assert rates.per_minute(DELIVERED, "main", now=later) == 7.0


def test_hooks_never_raise(store: SqliteStore) -> None:
    store.close()  # a broken store: the hook logs and returns
    record_delivered(store, DeliveryReport(lrs="main", stored=1), now=T0)


def test_receiver_counters() -> None:
    stats = ReceiverStats()
    for _ in range(3):
        stats.count_received("acme")
    stats.count_enqueued("acme", 2)
    stats.count_rejected("acme", Reason.INVALID_SIGNATURE)
    stats.count_duplicates("acme", 1)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in ReceiverCollector(stats).collect() for s in family.samples
    }
    assert samples[("lxhub_events_received_total", (("connector", "acme"),))] == 2
    assert samples[("lxhub_webhook_requests_total", (("connector", "acme"),))] == 3
    assert samples[("lxhub_events_rejected_total",
                    (("connector", "acme"), ("reason", "invalid_signature")))] == 1
    assert samples[("lxhub_events_duplicate_total", (("connector", "acme"),))] == 1


def test_single_process_exposition_lists_every_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics()
    metrics.record_delivery(DeliveryReport(lrs="main", stored=3, requests=1,
                                           stored_received_at=[T0] * 3),
                            now=T0 + timedelta(seconds=2), seconds=0.1)
    text = metrics.exposition().decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"lxhub_statements_delivered", "lxhub_receipt_to_stored_seconds",
            "lxhub_poll_seconds", "lxhub_events_polled"} <= names
    assert 'lxhub_statements_delivered_total{lrs="main"} 3.0' in text
