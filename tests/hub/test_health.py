"""Per-instance health records on the real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub import health
from hub.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def test_errors_and_successes_update_the_record(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite")
    assert health.read(store, "lms") == health.InstanceHealth(instance_id="lms")
    health.record_success(store, "lms", at=T0, events=3, cursor="c1")
    later = T0 + timedelta(minutes=5)
    health.record_error(store, "lms", at=later, error="x" * 600, unhealthy=True)
    h = health.read(store, "lms")
    assert (h.last_poll_at, h.last_success_at, h.last_error_at) == (later, T0, later)
    assert h.last_error == "x" * 500  # bounded
    assert h.unhealthy
    assert h.cursor == "c1"
    health.record_success(store, "lms", at=later, events=0, cursor=None)
    h = health.read(store, "lms")
    assert not h.unhealthy
    assert h.cursor == "c1"  # a page without a cursor keeps the last one


def test_a_maintenance_error_is_not_a_poll(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite")
    health.record_error(store, "yt", at=T0, error="maintenance: WebSub: HTTP 503", polled=False)
    h = health.read(store, "yt")
    assert h.last_poll_at is None  # a webhook-only connector never polled
    assert (h.last_error, h.last_error_at) == ("maintenance: WebSub: HTTP 503", T0)
