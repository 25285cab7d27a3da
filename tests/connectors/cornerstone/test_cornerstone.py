"""Cornerstone behaviours beyond the conformance kit (vendors.md 3, 8.2, 8.4, 8.5)."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.cornerstone.connector import CornerstoneConnector, CornerstoneCursor
from connectors.cornerstone.models import csod_time
from connectors.cornerstone.settings import CornerstoneSettings
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.errors import InvalidSignature, PaginationLoop, PermanentError, RateLimited
from hub.events import SourceEvent, WebhookRequest
from hub.mapping import Unmapped
from hub.queue import ListEnqueuer
from hub.testing.fixtures import (
    MemoryState,
    StaticActorResolver,
    StrictRouter,
    json_response,
    strict_router,
    temp_sqlite_store,
)
from hub.testing.suite import BASE_IRI, context_factory
from hub.webhooks import Receiver, ReceiverInstance
from hub.xapi import Statement, canonical_bytes

FIXTURES = Path(__file__).parent / "fixtures"
API = FIXTURES / "api"
EVENTS = FIXTURES / "events"
BASE = "https://acme.csod.com"
VIEWS = f"{BASE}/services/api/x/odata/api/views"
NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
API_KEY = "test-x-api-key"
JANE = "6ebc7096-3d2a-4f5b-a1c9-7e8f9d0b1c2d"
PEOPLE = {
    JANE: "jane.doe@example.com",
    "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d": "rick.roe@example.com",
}

SETTINGS: dict[str, Any] = {
    "base_url": BASE,
    "client_id": "hub-client",
    "client_secret": "test-client-secret",
    "webhook_api_key": API_KEY,
    "start_date": "2025-06-01T00:00:00Z",
}
CSV_COLUMNS = {
    "User GUID": "user_guid",
    "Training ID": "transc_object_id",
    "Registration Number": "reg_num",
    "Status": "user_lo_status",
    "Completion Date": "user_lo_comp_dt",
    "Score": "user_lo_score",
    "Passed": "user_lo_pass",
    "Minutes": "user_lo_minutes_participated",
    "Training Type": "lo_type",
    "Training Title": "lo_title",
}


@pytest.fixture
def router() -> Iterator[StrictRouter]:
    r = strict_router()
    with r:
        yield r


def make(
    router: StrictRouter | None = None,
    *,
    clock: FrozenClock | None = None,
    state: MemoryState | None = None,
    **overrides: Any,
) -> CornerstoneConnector:
    settings = CornerstoneSettings.model_validate({**SETTINGS, **overrides})
    transport = router.transport() if router is not None else None
    runtime = ConnectorRuntime(
        instance_id="csod-test",
        base_iri=BASE_IRI,
        http=httpx.Client(transport=transport),
        clock=clock or FrozenClock(NOW),
        state=state or MemoryState(),
    )
    conn = CornerstoneConnector(settings, runtime=runtime)
    conn.client.rng = random.Random(7)  # noqa: S311 - deterministic jitter in tests
    return conn


def token_route(router: StrictRouter) -> Any:
    return router.post(f"{BASE}/services/api/oauth2/token").mock(
        return_value=json_response(API / "token.json")
    )


def joins(router: StrictRouter) -> tuple[Any, Any]:
    users = router.get(f"{VIEWS}/vw_rpt_user").mock(return_value=json_response(API / "users.json"))
    trainings = router.get(f"{VIEWS}/vw_rpt_training").mock(
        return_value=json_response(API / "trainings.json")
    )
    return users, trainings


def request(body: bytes, *, key: str | None = API_KEY) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    return WebhookRequest(
        method="POST", path="/webhooks/csod-test", headers=headers, body=body, received_at=NOW
    )


def map_all(conn: CornerstoneConnector, events: list[SourceEvent]) -> list[Statement]:
    ctx = context_factory(conn, actors=StaticActorResolver("mbox", PEOPLE), base_iri=BASE_IRI)
    out: list[Statement] = []
    for event in events:
        result = conn.map(event, ctx(event))
        assert not isinstance(result, Unmapped), event.event_type
        out.extend(result)
    return out


# -- vectors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["2025-06-05T18:54:38.973", "2025-06-05T18:54:38.973Z", "2025-06-05T18:54:38.973+00:00"]
)
def test_csod_times_without_offset_are_utc(text: str) -> None:
    assert csod_time(text) == datetime(2025, 6, 5, 18, 54, 38, 973000, tzinfo=UTC)


def test_c1_reproduces_the_spec_ids() -> None:
    conn = make(enrich_webhooks=False)
    [statement] = map_all(
        conn, conn.parse(request((EVENTS / "c1_training_completed.json").read_bytes()))
    )
    assert str(statement.id) == "8496c202-1c7a-5cb4-a1e3-d4fd47b848c9"
    assert statement.context is not None
    assert str(statement.context.registration) == "1dab40f3-fb3d-5a58-bed7-e54631066ca9"


# -- webhook/backfill equivalence ---------------------------------------------------------------


def test_webhook_and_reporting_api_give_identical_statements(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router)
    users, trainings = joins(router)
    transcript = router.get(f"{VIEWS}/vw_rpt_transcript").mock(
        return_value=json_response(API / "c3_transcript_page.json")
    )
    hooked = map_all(
        conn, conn.parse(request((EVENTS / "c1_training_completed.json").read_bytes()))
    )
    page = conn.poll(None, until=NOW - timedelta(minutes=5))
    polled = map_all(conn, page.events)
    assert len(hooked) == len(polled) == 1
    assert hooked[0].id == polled[0].id
    assert str(polled[0].id) == "8496c202-1c7a-5cb4-a1e3-d4fd47b848c9"
    assert canonical_bytes(hooked[0]) == canonical_bytes(polled[0])
    data = json.loads(canonical_bytes(polled[0]))
    assert data["result"] == {
        "completion": True,
        "duration": "PT45M",
        "score": {"max": 100, "min": 0, "raw": 92, "scaled": 0.92},
        "success": True,
    }
    assert data["actor"]["mbox"] == "mailto:jane.doe@example.com"
    # The enrichment filtered the transcript on the Reporting API's integer user id.
    flt = transcript.calls[0].request.url.params["$filter"]
    assert "transc_user_id eq 33417" in flt
    assert "cast('8d86b95c-2f4e-4c1a-8b7d-0e9f6a5c4b3a', Edm.Guid)" in flt
    assert "reg_num eq 1" in flt
    poll_filter = transcript.calls[1].request.url.params["$filter"]
    assert "_last_touched_dt_utc ge cast('2025-05-31T23:30:00Z', Edm.DateTimeOffset)" in poll_filter
    assert transcript.calls[1].request.headers["prefer"] == "odata.maxpagesize=1000"
    assert users.call_count == 2  # by GUID for the webhook, by integer id for the rows
    assert trainings.call_count == 1  # cached between the two paths


# -- polling ------------------------------------------------------------------------------------


def three_pages(router: StrictRouter) -> dict[str, Any]:
    url = f"{VIEWS}/vw_rpt_transcript"
    return {
        "p2": router.get(url, params={"$skiptoken": "cGFnZTI="}).mock(
            return_value=json_response(API / "transcript_page2.json")
        ),
        "p3": router.get(url, params={"$skiptoken": "cGFnZTM="}).mock(
            return_value=json_response(API / "transcript_page3.json")
        ),
        "p1": router.get(url).mock(return_value=json_response(API / "transcript_page1.json")),
    }


def test_three_pages_with_a_crash_between_pages(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router)
    joins(router)
    routes = three_pages(router)
    until = NOW - timedelta(minutes=5)
    first = conn.poll(None, until=until)
    second = conn.poll(first.next_cursor, until=until)
    replay = conn.poll(first.next_cursor, until=until)  # the cursor of page 2 was never saved
    last = conn.poll(replay.next_cursor, until=until)
    assert [e.event_type for e in first.events] == ["TrainingAssigned", "TrainingCompleted"]
    assert [e.payload for e in replay.events] == [e.payload for e in second.events]
    assert [e.event_type for e in last.events] == ["TrainingRegistered", "TrainingRemoved"]
    assert not last.has_more
    assert routes["p2"].call_count == 2
    # The mark is the highest _last_touched_dt_utc seen, not the wall clock.
    assert isinstance(last.next_cursor, CornerstoneCursor)
    assert last.next_cursor.mark == datetime(2025, 6, 21, 12, 0, 1, tzinfo=UTC)
    # The nextLink is followed verbatim.
    assert str(routes["p2"].calls[0].request.url).endswith("$skiptoken=cGFnZTI%3D")


def test_repeated_next_link_raises_pagination_loop(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router)
    joins(router)
    router.get(f"{VIEWS}/vw_rpt_transcript").mock(
        return_value=json_response(API / "c3_transcript_page.json")
    )
    until = NOW - timedelta(minutes=5)
    cursor = conn.poll(None, until=until).next_cursor
    with pytest.raises(PaginationLoop):
        conn.poll(cursor, until=until)


def test_next_link_to_another_host_is_refused(router: StrictRouter) -> None:
    conn = make(router)
    cursor = CornerstoneCursor(mark=NOW - timedelta(days=1), page_token="https://evil.example/x")
    with pytest.raises(PermanentError):
        conn.poll(cursor, until=NOW)


def test_429_without_retry_after_gets_a_growing_computed_backoff(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router)
    body = {
        "status": "429",
        "timeStamp": "2024-05-03T14:22:10.4730000Z",
        "error": {"errorId": "a1f7c3de", "message": "CSOD Too many requests.", "code": "429"},
    }
    router.get(f"{VIEWS}/vw_rpt_transcript").mock(return_value=httpx.Response(429, json=body))
    waits = []
    for _ in range(4):
        with pytest.raises(RateLimited) as info:
            conn.poll(None, until=NOW)
        waits.append(info.value.retry_after)
    assert all(w >= 1.0 for w in waits)
    assert waits[0] <= 2.0
    assert waits[3] <= 16.0
    assert max(waits) > 2.0  # the window grows with consecutive 429s


def test_429_with_retry_after_is_honoured(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router)
    router.get(f"{VIEWS}/vw_rpt_transcript").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "2"})
    )
    with pytest.raises(RateLimited) as info:
        conn.poll(None, until=NOW)
    assert info.value.retry_after == 2.0


def test_client_side_limiter_is_per_view(router: StrictRouter) -> None:
    conn = make(router, requests_per_minute=60, burst=1)
    token_route(router)
    router.get(f"{VIEWS}/vw_rpt_user").mock(return_value=json_response(API / "users.json"))
    conn.check()
    with pytest.raises(RateLimited) as info:
        conn.check()
    assert info.value.retry_after == pytest.approx(1.0)
    # Another view has its own bucket.
    router.get(f"{VIEWS}/vw_rpt_training").mock(return_value=json_response(API / "trainings.json"))
    conn.client.trainings(["8d86b95c-2f4e-4c1a-8b7d-0e9f6a5c4b3a"])


def test_low_remaining_header_slows_down_before_a_429(router: StrictRouter) -> None:
    conn = make(router, low_water_remaining=5)
    token_route(router)
    router.get(f"{VIEWS}/vw_rpt_user").mock(
        return_value=httpx.Response(
            200, json={"value": []}, headers={"x-csod-requests-remaining-urilevel": "3"}
        )
    )
    conn.check()
    with pytest.raises(RateLimited):
        conn.check()


def test_token_request_is_json_with_view_scopes(router: StrictRouter) -> None:
    conn = make(router)
    tokens = token_route(router)
    router.get(f"{VIEWS}/vw_rpt_user").mock(return_value=json_response(API / "users.json"))
    conn.check()
    conn.check()
    assert tokens.call_count == 1  # cached
    sent = json.loads(tokens.calls[0].request.content)
    assert sent == {
        "clientId": "hub-client",
        "clientSecret": "test-client-secret",
        "grantType": "client_credentials",
        "scope": "vw_rpt_transcript:read vw_rpt_user:read vw_rpt_training:read",
    }


def test_status_ids_are_configurable() -> None:
    default, custom = make(), make(completed_status_ids=[99], completed_status_names=[])
    row: dict[str, Any] = {"user_lo_status_id": 99, "user_lo_comp_dt": "2025-06-01T00:00:00"}
    assert default._facts(row) == []
    assert custom._facts(row) == ["TrainingCompleted"]
    assert default._facts({**row, "user_lo_status_id": 16}) == ["TrainingCompleted"]
    assert default._facts({"user_lo_status": "completed", "user_lo_comp_dt": "2025-06-01"}) == [
        "TrainingCompleted"
    ]


# -- webhooks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong-key", API_KEY + " "])
def test_x_api_key_is_required(key: str | None) -> None:
    conn = make()
    with pytest.raises(InvalidSignature):
        conn.verify(request(b"{}", key=key if key != API_KEY + " " else "x" + API_KEY))
    conn.verify(request(b"{}"))


def test_records_batch_gives_one_event_per_record() -> None:
    conn = make(enrich_webhooks=False)
    events = conn.parse(request((EVENTS / "records_batch_two_completions.json").read_bytes()))
    assert [e.delivery_id for e in events] == [
        "aa000000-0000-4000-8000-000000000001",
        "aa000000-0000-4000-8000-000000000002",
    ]
    assert len(map_all(conn, events)) == 2


def test_redelivery_attempt_two_is_deduplicated_by_the_receiver(tmp_path: Path) -> None:
    conn = make(enrich_webhooks=False)
    store = temp_sqlite_store(tmp_path)
    enqueuer = ListEnqueuer()
    receiver = Receiver(
        {"csod-test": ReceiverInstance(conn)},
        store=store,
        enqueuer=enqueuer,
        clock=FrozenClock(NOW),
    )
    second = json.loads((EVENTS / "c2_training_assigned_redelivery.json").read_text())
    first = {**second, "attemptNumber": 1}
    assert receiver.receive("csod-test", request(json.dumps(first).encode())).status == 200
    assert receiver.receive("csod-test", request(json.dumps(second).encode())).status == 200
    assert (
        receiver.receive("csod-test", request(json.dumps(second).encode(), key=None)).status == 401
    )
    assert len(enqueuer.events) == 1
    store.close()


# -- file-drop mode -------------------------------------------------------------------------------


def test_file_drop_emits_only_new_facts(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    state = MemoryState()
    conn = make(
        None,
        state=state,
        mode="files",
        client_id=None,
        client_secret=None,
        files_dir=str(drop),
        csv_columns=CSV_COLUMNS,
    )
    day1, day2 = (
        FIXTURES / "files" / "transcript_2025-06-20.csv",
        FIXTURES / "files" / "transcript_2025-06-21.csv",
    )
    shutil.copy(day1, drop / day1.name)
    os.utime(drop / day1.name, (1_750_400_000, 1_750_400_000))
    first = conn.poll(None, until=NOW)
    assert [e.event_type for e in first.events] == ["TrainingCompleted"]  # in progress: no fact
    # A second poll of the same file yields nothing.
    again = conn.poll(first.next_cursor, until=NOW)
    assert again.events == []
    # The next day's full report: only the new completion becomes an event.
    shutil.copy(day2, drop / day2.name)
    os.utime(drop / day2.name, (1_750_500_000, 1_750_500_000))
    second = conn.poll(again.next_cursor, until=NOW)
    assert len(second.events) == 1
    assert second.events[0].payload["user_guid"] == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"  # type: ignore[index,call-overload]
    [statement_1] = map_all(conn, first.events)
    assert str(statement_1.id) == "8496c202-1c7a-5cb4-a1e3-d4fd47b848c9"  # same fact, same id
    statements_2 = map_all(conn, second.events)
    assert [s.verb.id.rsplit("/", 1)[-1] for s in statements_2] == ["completed", "passed"]
    # A crash before the cursor of day 2 was saved: replaying from the day-1 cursor gives the
    # same single event (the day-1 snapshot was kept).
    replay = conn.poll(again.next_cursor, until=NOW)
    assert [e.payload for e in replay.events] == [e.payload for e in second.events]
    # Once the day-2 cursor is used, the day-1 snapshot is garbage-collected.
    assert second.next_cursor is not None
    assert conn.poll(second.next_cursor, until=NOW).events == []
    assert sum(k.startswith("files:snapshot:") for k in state.values) == 1
