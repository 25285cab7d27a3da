"""The Together preset (vendors.md 7.2): CSV inside JSON, snapshot diff, 1 request per minute."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hub.clock import FrozenClock
from hub.errors import ConfigError, PermanentError, RateLimited, TransientError
from hub.testing.fixtures import MemoryState, strict_router
from hub.xapi import statement_verb_id

SESSIONS = "/public/org_42/reports/export/sessionReport"
USERS = "/public/org_42/reports/export/userReport"
PAIRINGS = "/public/org_42/reports/export/pairingReport"


def _at_sessions(conn: Any) -> Any:
    """A cursor whose next request is the session report (the third of the cycle)."""
    return conn.cursor_model(next_request=2)


def _report(rows_csv: str) -> httpx.Response:
    return httpx.Response(200, json={"report": rows_csv})


def test_golden_session_report(pk: Any, kit: Any) -> None:
    conn = pk.build("together")
    with strict_router(base_url=pk.together_api) as router:
        route = router.get(SESSIONS).mock(
            return_value=httpx.Response(200, json=pk.api("together-session-report.json"))
        )
        result = conn.poll(_at_sessions(conn), until=pk.now)
    sent = route.calls.last.request
    assert sent.headers["organization-id"] == "org_42"
    assert sent.headers["client-id"] == "client-1"
    assert sent.headers["api-key"] == "together-key"
    assert sent.headers["content-type"] == "application/json"
    assert [e.event_type for e in result.events] == ["sessions"] * 4
    assert all(e.via == "poll" for e in result.events)
    assert result.has_more is False
    assert result.next_cursor is not None
    assert result.next_cursor.next_request == 0
    statements = [s.to_json() for s in kit.map_events(conn, _mapped(conn, kit, result.events))]
    pk.golden(statements, "together-session-report.statements.json")
    verbs = [s["verb"]["id"].rsplit("/", 1)[-1] for s in statements]
    assert verbs == ["attended", "mentored", "rated", "attended", "mentored"]
    attended = statements[0]
    assert attended["context"]["instructor"]["mbox"] == "mailto:grace.hopper@example.com"
    assert attended["result"]["duration"] == "PT45M"
    rated = statements[2]
    assert rated["result"]["score"] == {"raw": 4, "min": 1, "max": 5, "scaled": 0.8}
    assert "response" not in rated["result"], "free text is off by default"
    assert statements[3]["timestamp"] == "2026-01-20T09:30:00.000Z"  # naive -> UTC


def _mapped(conn: Any, kit: Any, events: list[Any]) -> list[Any]:
    """Events whose route matches (Scheduled/Cancelled rows are Unmapped, i.e. skipped)."""
    from hub.mapping import Unmapped

    return [e for e in events if not isinstance(conn.map(e, kit.context(conn, e)), Unmapped)]


def test_natural_key_is_org_session_status(pk: Any, kit: Any) -> None:
    conn = pk.build("together")
    events = conn.poller.events_from_response(
        "sessions", pk.api_bytes("together-session-report.json"), received_at=pk.now
    )
    (first, *_rest) = conn.map(events[0], kit.context(conn, events[0]))
    import uuid

    key = "webhook:together|acme|attended|org=org_42|session=ses_101|status=completed"
    ns = uuid.UUID("b3b2824f-59e2-5129-80fb-fdeb67e0c2bd")
    assert str(first.id) == str(uuid.uuid5(ns, key))


def test_free_text_only_when_enabled(pk: Any, kit: Any) -> None:
    conn = pk.build("together", include_free_text=True)
    events = conn.poller.events_from_response(
        "sessions", pk.api_bytes("together-session-report.json"), received_at=pk.now
    )
    statements = [s.to_json() for s in conn.map(events[0], kit.context(conn, events[0]))]
    assert statements[2]["result"]["response"] == "Very helpful, thanks"


def test_mentored_is_optional(pk: Any, kit: Any) -> None:
    conn = pk.build("together", poll={"variables": {"organization_id": "org_42"}})
    events = conn.poller.events_from_response(
        "sessions", pk.api_bytes("together-session-report.json"), received_at=pk.now
    )
    verbs = [
        statement_verb_id(s).rsplit("/", 1)[-1]
        for s in conn.map(events[0], kit.context(conn, events[0]))
    ]
    assert verbs == ["attended", "rated"]


def test_second_poll_with_same_rows_produces_nothing(pk: Any) -> None:
    clock = FrozenClock(pk.now)
    conn = pk.build("together", clock=clock)
    body = pk.api("together-session-report.json")
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(side_effect=[httpx.Response(200, json=body)] * 2)
        first = conn.poll(_at_sessions(conn), until=pk.now)
        assert len(first.events) == 4
        clock.advance(60)
        cursor = first.next_cursor.model_copy(update={"next_request": 2})
        second = conn.poll(cursor, until=clock.now())
    assert second.events == []


def test_new_row_gives_only_it(pk: Any) -> None:
    clock = FrozenClock(pk.now)
    conn = pk.build("together", clock=clock)
    report = pk.api("together-session-report.json")["report"]
    new_row = (
        "ses_105,pair_11,prog_7,Leadership Mentoring 2026,Completed,u_201,"
        "ada.lovelace@example.com,Ada Lovelace,u_301,grace.hopper@example.com,Grace Hopper,"
        "2026-01-26T15:00:00Z,45,,\r\n"
    )
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(side_effect=[_report(report), _report(report + new_row)])
        first = conn.poll(_at_sessions(conn), until=pk.now)
        clock.advance(61)
        cursor = first.next_cursor.model_copy(update={"next_request": 2})
        second = conn.poll(cursor, until=clock.now())
    assert [e.payload["session_id"] for e in second.events] == ["ses_105"]
    assert second.events[0].delivery_id == "sessions:ses_105:prog_7:completed"


def test_status_change_is_a_new_row(pk: Any) -> None:
    clock = FrozenClock(pk.now)
    conn = pk.build("together", clock=clock)
    report = pk.api("together-session-report.json")["report"]
    done = report.replace(
        "ses_102,pair_11,prog_7,Leadership Mentoring 2026,Scheduled",
        "ses_102,pair_11,prog_7,Leadership Mentoring 2026,Completed",
    )
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(side_effect=[_report(report), _report(done)])
        first = conn.poll(_at_sessions(conn), until=pk.now)
        clock.advance(60)
        second = conn.poll(
            first.next_cursor.model_copy(update={"next_request": 2}), until=clock.now()
        )
    assert [(e.payload["session_id"], e.payload["status"]) for e in second.events] == [
        ("ses_102", "Completed")
    ]


def test_snapshot_counts_only_once_the_cursor_is_saved(pk: Any) -> None:
    """A crash before the worker saved the cursor replays the rows (at-least-once)."""
    clock = FrozenClock(pk.now)
    conn = pk.build("together", clock=clock)
    body = pk.api("together-session-report.json")
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(side_effect=[httpx.Response(200, json=body)] * 2)
        first = conn.poll(_at_sessions(conn), until=pk.now)
        clock.advance(60)
        again = conn.poll(_at_sessions(conn), until=clock.now())  # the old cursor
    assert len(again.events) == len(first.events) == 4


def test_full_cycle_reads_the_three_reports_one_per_minute(pk: Any, kit: Any) -> None:
    clock = FrozenClock(pk.now)
    state = MemoryState()
    conn = pk.build(
        "together",
        clock=clock,
        state=state,
        poll={"variables": {"organization_id": "org_42", "emit_join": "true"}},
    )
    with strict_router(base_url=pk.together_api) as router:
        router.get(USERS).mock(
            return_value=httpx.Response(200, json=pk.api("together-user-report.json"))
        )
        router.get(PAIRINGS).mock(
            return_value=httpx.Response(200, json=pk.api("together-pairing-report.json"))
        )
        router.get(SESSIONS).mock(
            return_value=httpx.Response(200, json=pk.api("together-session-report.json"))
        )
        users = conn.poll(None, until=clock.now())
        assert users.has_more
        with pytest.raises(RateLimited) as info:
            conn.poll(users.next_cursor, until=clock.now())
        assert info.value.retry_after == pytest.approx(60)
        clock.advance(60)
        pairings = conn.poll(users.next_cursor, until=clock.now())
        assert pairings.has_more
        clock.advance(60)
        sessions = conn.poll(pairings.next_cursor, until=clock.now())
    assert not sessions.has_more
    assert sessions.next_cursor is not None
    assert sorted(sessions.next_cursor.streams) == ["pairings", "sessions", "users"]
    verbs = [
        statement_verb_id(s).rsplit("/", 1)[-1]
        for e in users.events + pairings.events
        for s in conn.map(e, kit.context(conn, e))
    ]
    assert verbs == ["registered", "join", "join"]
    assert users.events[0].delivery_id == "users:u_201:prog_7:active"


def test_too_soon_poll_is_rate_limited_without_a_request(pk: Any) -> None:
    clock = FrozenClock(pk.now)
    state = MemoryState()
    conn = pk.build("together", clock=clock, state=state)
    body = pk.api("together-session-report.json")
    with strict_router(base_url=pk.together_api) as router:
        route = router.get(SESSIONS).mock(return_value=httpx.Response(200, json=body))
        conn.poll(_at_sessions(conn), until=pk.now)
        clock.advance(20)
        with pytest.raises(RateLimited) as info:
            conn.poll(_at_sessions(conn), until=clock.now())
        # A new instance (another worker process) shares the spacing through the state store.
        other = pk.build("together", clock=clock, state=state)
        with pytest.raises(RateLimited):
            other.poll(_at_sessions(other), until=clock.now())
    assert info.value.retry_after == pytest.approx(40)
    assert route.call_count == 1


@pytest.mark.parametrize(("header", "expected"), [("120", 120.0), (None, 60.0)])
def test_429_is_rate_limited(pk: Any, header: str | None, expected: float) -> None:
    clock = FrozenClock(pk.now)
    conn = pk.build("together", clock=clock)
    headers = {"Retry-After": header} if header else {}
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(
            side_effect=[
                httpx.Response(429, headers=headers),
                httpx.Response(200, json=pk.api("together-session-report.json")),
            ]
        )
        with pytest.raises(RateLimited) as info:
            conn.poll(_at_sessions(conn), until=pk.now)
        assert info.value.retry_after == pytest.approx(expected)
        # Retrying earlier than told does not touch the API.
        clock.advance(expected - 1)
        with pytest.raises(RateLimited):
            conn.poll(_at_sessions(conn), until=clock.now())
        clock.advance(1)
        assert len(conn.poll(_at_sessions(conn), until=clock.now()).events) == 4


def test_repeated_429_without_retry_after_backs_off_exponentially(pk: Any) -> None:
    clock = FrozenClock(pk.now)
    conn = pk.build("together", clock=clock)
    waits = []
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(side_effect=[httpx.Response(429)] * 3)
        for _ in range(3):
            with pytest.raises(RateLimited) as info:
                conn.poll(_at_sessions(conn), until=clock.now())
            waits.append(info.value.retry_after)
            clock.advance(info.value.retry_after)
    assert waits == [60.0, 120.0, 240.0]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient_and_delays_the_next_request(pk: Any, status: int) -> None:
    clock = FrozenClock(pk.now)
    conn = pk.build("together", clock=clock)
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(return_value=httpx.Response(status))
        with pytest.raises(TransientError) as info:
            conn.poll(_at_sessions(conn), until=pk.now)
        assert not isinstance(info.value, RateLimited)
        clock.advance(30)
        with pytest.raises(RateLimited):
            conn.poll(_at_sessions(conn), until=clock.now())


def test_401_is_a_config_error(pk: Any) -> None:
    conn = pk.build("together")
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(return_value=httpx.Response(401))
        with pytest.raises(ConfigError):
            conn.poll(_at_sessions(conn), until=pk.now)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        json.dumps({"report": 5}).encode(),
        json.dumps({"report": "A,B\n1,2\n"}).encode(),
    ],
    ids=["not-json", "report-not-text", "no-known-column"],
)
def test_undecodable_report_is_permanent(pk: Any, body: bytes) -> None:
    conn = pk.build("together")
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(return_value=httpx.Response(200, content=body))
        with pytest.raises(PermanentError) as info:
            conn.poll(_at_sessions(conn), until=pk.now)
    assert "A,B" not in str(info.value)


def test_column_names_are_configurable_per_instance(pk: Any) -> None:
    conn = pk.build("together", poll={"columns": {"sessions": {"session_id": "Meeting ID"}}})
    report = pk.api("together-session-report.json")["report"].replace("Session ID", "Meeting ID")
    events = conn.poller.events_from_response(
        "sessions", json.dumps({"report": report}).encode(), received_at=pk.now
    )
    assert events[0].payload["session_id"] == "ses_101"


def test_missing_secret_or_variable_fails_at_start(pk: Any) -> None:
    with pytest.raises(ConfigError, match="api_key"):
        pk.build("together", secrets={"client_id": "c"})
    with pytest.raises(ConfigError, match="organization_id"):
        pk.build("together", poll={"variables": {}})
    with pytest.raises(ConfigError, match="unknown requests"):
        pk.build("together", poll={"columns": {"meetings": {}}})


def test_snapshot_needs_a_state_store(pk: Any) -> None:
    from connectors.webhook.connector import GenericWebhookConnector
    from connectors.webhook.settings import GenericWebhookSettings
    from hub.connector import ConnectorRuntime

    settings = GenericWebhookSettings(
        preset="together", **pk.build("together").settings.model_dump(exclude={"preset"})
    )
    conn = GenericWebhookConnector(
        settings,
        runtime=ConnectorRuntime(instance_id="x", base_iri=pk.base_iri, clock=FrozenClock(pk.now)),
    )
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(
            return_value=httpx.Response(200, json=pk.api("together-session-report.json"))
        )
        with pytest.raises(ConfigError, match="state store"):
            conn.poll(_at_sessions(conn), until=pk.now)


def test_old_snapshots_are_deleted(pk: Any) -> None:
    clock = FrozenClock(pk.now)
    state = MemoryState()
    conn = pk.build("together", clock=clock, state=state)
    body = pk.api("together-session-report.json")
    cursor = _at_sessions(conn)
    with strict_router(base_url=pk.together_api) as router:
        router.get(SESSIONS).mock(side_effect=[httpx.Response(200, json=body)] * 3)
        for _ in range(3):
            cursor = conn.poll(cursor, until=clock.now()).next_cursor.model_copy(
                update={"next_request": 2}
            )
            clock.advance(timedelta(minutes=1).total_seconds())
    snapshots = sorted(k for k in state.values if ":snapshot:" in k)
    # The snapshot the saved cursor names (2) stays until the next cursor (3) is saved.
    assert snapshots == ["poll:sessions:snapshot:2", "poll:sessions:snapshot:3"]
