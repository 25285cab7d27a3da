"""The Sparkwise poll preset (vendors.md 7.4, 7.7): from/to watermark windows with 1-day overlap."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from hub.clock import FrozenClock
from hub.testing.fixtures import strict_router

UNTIL = datetime(2026, 1, 20, 11, 55, 0, tzinfo=UTC)


def test_watermark_paging_with_overlap(pk: Any, kit: Any) -> None:
    conn = pk.build("sparkwise", clock=FrozenClock(datetime(2026, 1, 20, 12, 0, tzinfo=UTC)))
    pages = [
        ("2025-12-31T00:00:00Z", "2026-01-08T00:00:00Z", "sparkwise-completions-1.json"),
        ("2026-01-07T00:00:00Z", "2026-01-15T00:00:00Z", "sparkwise-completions-2.json"),
        ("2026-01-14T00:00:00Z", "2026-01-20T11:55:00Z", "sparkwise-completions-3.json"),
    ]
    with strict_router(base_url=pk.sparkwise_api) as router:
        for start, end, name in pages:
            router.get("/completions", params={"from": start, "to": end}).mock(
                return_value=httpx.Response(200, json=pk.api(name))
            )
        results, cursor = [], None
        for _ in pages:
            result = conn.poll(cursor, until=UNTIL)
            results.append(result)
            cursor = result.next_cursor
        sent = router.calls.last.request
    assert sent.headers["authorization"] == "Bearer sparkwise-key"
    assert [r.has_more for r in results] == [True, True, False]
    marks = [r.next_cursor.streams["completions"].mark for r in results]
    # Window ends while catching up; then the newest row time (never past `until`).
    assert [m.isoformat() for m in marks] == [
        "2026-01-08T00:00:00+00:00",
        "2026-01-15T00:00:00+00:00",
        "2026-01-19T16:00:00+00:00",
    ]
    assert all(m <= UNTIL for m in marks)
    ids = [e.delivery_id for r in results for e in r.events]
    assert ids == ["cmp_01", "cmp_02", "cmp_03", "cmp_04"]
    statements = kit.map_events(conn, [e for e in results[0].events])
    assert [s.verb_id.rsplit("/", 1)[-1] for s in statements] == ["attended", "completed"]


def test_next_poll_goes_back_by_the_overlap(pk: Any) -> None:
    conn = pk.build("sparkwise")
    cursor = conn.cursor_model.model_validate(
        {"streams": {"completions": {"mark": "2026-01-19T16:00:00Z"}}}
    )
    with strict_router(base_url=pk.sparkwise_api) as router:
        router.get(
            "/completions", params={"from": "2026-01-18T16:00:00Z", "to": "2026-01-20T11:55:00Z"}
        ).mock(return_value=httpx.Response(200, json=[]))
        result = conn.poll(cursor, until=UNTIL)
    # No rows: the mark stays, so the overlap keeps re-reading late rows.
    assert result.next_cursor.streams["completions"].mark == cursor.streams["completions"].mark
    assert result.events == []
    assert not result.has_more


def test_mark_never_passes_until(pk: Any) -> None:
    conn = pk.build("sparkwise")
    cursor = conn.initial_cursor(datetime(2026, 1, 19, tzinfo=UTC))
    future = [
        dict(
            pk.api("sparkwise-completions-3.json")[0],
            sessionScheduledStartAt="2026-03-01T00:00:00Z",
        )
    ]
    with strict_router(base_url=pk.sparkwise_api) as router:
        router.get("/completions").mock(return_value=httpx.Response(200, json=future))
        result = conn.poll(cursor, until=UNTIL)
    assert result.next_cursor.streams["completions"].mark == UNTIL
