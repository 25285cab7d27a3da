"""Docebo behaviours beyond the conformance kit (vendors.md 2, 8.2, 8.4, 8.5)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.docebo.connector import DoceboConnector, DoceboCursor
from connectors.docebo.models import docebo_time
from connectors.docebo.settings import DoceboSettings
from hub.clock import FrozenClock
from hub.config import IdentityConfig
from hub.connector import ConnectorRuntime, Person
from hub.errors import ConfigError, InvalidSignature, PaginationLoop, RateLimited, TransientError
from hub.events import SourceEvent, WebhookRequest
from hub.identity import IdentityResolver
from hub.mapping import ActorResolver, Unmapped
from hub.pipeline import Destination, normalize
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
BASE = "https://acme.docebosaas.com"
NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
PEOPLE = {"12345": "john.doe@example.com", "23456": "ann.smith@example.com"}

SETTINGS: dict[str, Any] = {
    "base_url": BASE,
    "client_id": "hub-client",
    "client_secret": "test-client-secret",
    "username": "svc-lxhub",
    "password": "test-password",
    "webhook_username": "docebo-hook",
    "webhook_password": "hook-pass",
    "learning_plans": False,
    "start_date": "2025-06-01T00:00:00Z",
    "rate_burst": 100,
}


@pytest.fixture
def router() -> Iterator[StrictRouter]:
    r = strict_router()
    with r:
        yield r


def make(
    router: StrictRouter, clock: FrozenClock | None = None, **overrides: Any
) -> DoceboConnector:
    settings = DoceboSettings.model_validate({**SETTINGS, **overrides})
    runtime = ConnectorRuntime(
        instance_id="docebo-test",
        base_iri=BASE_IRI,
        http=httpx.Client(transport=router.transport()),
        clock=clock or FrozenClock(NOW),
        state=MemoryState(),
    )
    return DoceboConnector(settings, runtime=runtime)


def token_route(router: StrictRouter, *tokens: str) -> Any:
    bodies = [
        httpx.Response(200, json={"access_token": t, "expires_in": 3600, "token_type": "Bearer"})
        for t in tokens
    ]
    return router.post(f"{BASE}/oauth2/token").mock(side_effect=bodies)


HOOK_USER, HOOK_PASS = "docebo-hook", "hook-pass"


def basic(user: str = HOOK_USER, password: str = HOOK_PASS) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(body: bytes, *, auth: str | None = None, query: str = "") -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["authorization"] = auth
    return WebhookRequest(
        method="POST",
        path="/webhooks/docebo-test",
        query_string=query,
        headers=headers,
        body=body,
        received_at=NOW,
    )


def map_all(
    conn: DoceboConnector, events: list[SourceEvent], actors: ActorResolver | None = None
) -> list[Statement]:
    ctx = context_factory(
        conn, actors=actors or StaticActorResolver("mbox", PEOPLE), base_iri=BASE_IRI
    )
    out: list[Statement] = []
    for event in events:
        result = conn.map(event, ctx(event))
        assert not isinstance(result, Unmapped), event.event_type
        out.extend(result)
    return out


# -- vectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-13 14:58:26", datetime(2024, 3, 13, 14, 58, 26, tzinfo=UTC)),
        ("0000-00-00 00:00:00", None),
        ("0000-00-00", None),
        ("", None),
        (None, None),
    ],
)
def test_docebo_dates_follow_vectors(text: str | None, expected: datetime | None) -> None:
    assert docebo_time(text) == expected


def test_configured_zone_reinterprets_wall_time() -> None:
    assert docebo_time("2024-03-13 14:58:26", "Europe/Paris") == datetime(
        2024, 3, 13, 13, 58, 26, tzinfo=UTC
    )


def test_d1_reproduces_the_spec_statement_id(router: StrictRouter) -> None:
    conn = make(router, enrich_completions=False)
    events = conn.parse(request((EVENTS / "d1_enrollment_completed.json").read_bytes()))
    [statement] = map_all(conn, events)
    assert str(statement.id) == "961f16f9-d0d5-5cb4-9ef0-f04fe6cf6eb2"


# -- webhook/backfill equivalence (vendors.md 8.5 #2) -------------------------------------------


def test_webhook_and_backfill_give_identical_statements(router: StrictRouter) -> None:
    conn = make(router, enrollments_api="course", start_date="2024-03-01T00:00:00Z")
    token_route(router, "tok-1")
    d4 = router.get(f"{BASE}/course/v1/courses/enrollments").mock(
        return_value=json_response(API / "course_enrollments_d4.json")
    )
    # Webhook D1: the connector enriches the completion with the API row's score and time.
    hooked = map_all(
        conn, conn.parse(request((EVENTS / "d1_enrollment_completed.json").read_bytes()))
    )
    # Backfill: the same fact found by polling the course service (D4).
    page = conn.poll(None, until=NOW - timedelta(minutes=5))
    polled = map_all(conn, [e for e in page.events if e.event_type.endswith("completed")])
    assert d4.call_count == 2
    assert len(hooked) == len(polled) == 1
    assert hooked[0].id == polled[0].id
    assert str(hooked[0].id) == "961f16f9-d0d5-5cb4-9ef0-f04fe6cf6eb2"
    assert canonical_bytes(hooked[0]) == canonical_bytes(polled[0])
    result = json.loads(canonical_bytes(polled[0]))["result"]
    assert result["score"] == {"raw": 87, "min": 0, "max": 100, "scaled": 0.87}
    assert result["duration"] == "PT45M15S"


def test_enrichment_skips_a_row_of_another_completion(router: StrictRouter) -> None:
    conn = make(router, enrollments_api="course")
    token_route(router, "tok-1")
    row = json.loads((API / "course_enrollments_d4.json").read_text())
    row["data"]["items"][0]["enrollment_completion_date"] = "2024-05-01 10:00:00"  # redone since
    router.get(f"{BASE}/course/v1/courses/enrollments").mock(
        return_value=httpx.Response(200, json=row)
    )
    [statement] = map_all(
        conn, conn.parse(request((EVENTS / "d1_enrollment_completed.json").read_bytes()))
    )
    assert statement.result is not None
    assert statement.result.score is None


# -- polling ------------------------------------------------------------------------------------


def three_pages(router: StrictRouter) -> dict[str, Any]:
    url = f"{BASE}/learn/v1/enrollments"
    return {
        "p1": router.get(url, params={"page": "1"}).mock(
            return_value=json_response(API / "learn_enrollments_page1.json")
        ),
        "p2": router.get(url, params={"page": "2", "cursor": "c2VhcmNoX2FmdGVyOjE="}).mock(
            return_value=json_response(API / "learn_enrollments_page2.json")
        ),
        "p3": router.get(url, params={"page": "3", "cursor": "c2VhcmNoX2FmdGVyOjI="}).mock(
            return_value=json_response(API / "learn_enrollments_page3.json")
        ),
    }


def keys(events: list[SourceEvent]) -> list[str]:
    return [e.event_type + json.dumps(e.payload, sort_keys=True) for e in events]


def test_three_pages_with_a_crash_between_pages_has_no_gap(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router, "tok-1")
    routes = three_pages(router)
    until = NOW - timedelta(minutes=5)
    first = conn.poll(None, until=until)
    assert first.has_more
    assert first.total_hint == 5
    second = conn.poll(first.next_cursor, until=until)
    # Crash: page 2 was enqueued but its cursor was never saved; the worker resumes from the
    # cursor of page 1 and reads page 2 again.
    replay = conn.poll(first.next_cursor, until=until)
    assert keys(replay.events) == keys(second.events)
    last = conn.poll(replay.next_cursor, until=until)
    assert not last.has_more
    delivered = keys(first.events) + keys(replay.events) + keys(last.events)
    assert len(delivered) == len(set(delivered)) == 8  # 5 rows: 5 created + 3 completed
    assert routes["p2"].call_count == 2
    assert routes["p3"].call_count == 1
    # The window: updated_from = start_date - 15 min overlap, updated_to = until.
    params = routes["p1"].calls[0].request.url.params
    assert params["updated_from"] == "2025-05-31 23:45:00"
    assert params["updated_to"] == "2025-07-01 11:55:00"
    assert params["page_size"] == "200"
    assert isinstance(last.next_cursor, DoceboCursor)
    assert last.next_cursor.mark == until
    assert last.next_cursor.page is None
    # Nothing new: the next sync starts at the mark minus the overlap.
    conn.poll(last.next_cursor, until=until + timedelta(hours=1))
    assert routes["p1"].calls.last.request.url.params["updated_from"] == "2025-07-01 11:40:00"


def test_repeated_page_token_raises_pagination_loop(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router, "tok-1")
    page = json.loads((API / "learn_enrollments_page1.json").read_text())
    page["data"]["total_page_count"] = 10
    router.get(f"{BASE}/learn/v1/enrollments").mock(return_value=httpx.Response(200, json=page))
    until = NOW - timedelta(minutes=5)
    cursor = conn.poll(None, until=until).next_cursor
    with pytest.raises(PaginationLoop):
        conn.poll(cursor, until=until)


def test_token_expiring_mid_run_is_refreshed_once(router: StrictRouter) -> None:
    clock = FrozenClock(NOW)
    conn = make(router, clock=clock)
    tokens = token_route(router, "tok-1", "tok-2", "tok-3")
    url = f"{BASE}/learn/v1/enrollments"
    p1 = router.get(url, params={"page": "1"}).mock(
        return_value=json_response(API / "learn_enrollments_page1.json")
    )
    # The server revokes tok-1 early: a 401, then the retried call succeeds with tok-2.
    seen: list[str] = []
    answers = [
        httpx.Response(401, json={"message": "expired"}),
        json_response(API / "learn_enrollments_page2.json"),
    ]

    def page2(req: httpx.Request) -> httpx.Response:
        seen.append(req.headers["authorization"])
        return answers.pop(0)

    router.get(url, params={"page": "2"}).mock(side_effect=page2)
    p3 = router.get(url, params={"page": "3"}).mock(
        return_value=json_response(API / "learn_enrollments_page3.json")
    )
    until = NOW - timedelta(minutes=5)
    first = conn.poll(None, until=until)
    second = conn.poll(first.next_cursor, until=until)
    assert tokens.call_count == 2
    assert p1.calls[0].request.headers["authorization"] == "Bearer tok-1"
    assert seen == ["Bearer tok-1", "Bearer tok-2"]
    # Cached until expires_in - 60 s, counted from before the token POST.
    clock.advance(3600 - 60)
    conn.poll(second.next_cursor, until=until)
    assert tokens.call_count == 3
    assert p3.calls[0].request.headers["authorization"] == "Bearer tok-3"
    body = tokens.calls[0].request.content.decode()
    assert "grant_type=password" in body
    assert "username=svc-lxhub" in body
    assert "test-client-secret" not in repr(conn.client.auth)


def test_second_401_is_a_config_error(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router, "tok-1", "tok-2")
    router.get(f"{BASE}/manage/v1/user").mock(return_value=httpx.Response(401))
    with pytest.raises(ConfigError):
        conn.check()


def test_token_endpoint_refusal_is_a_config_error_without_secrets(router: StrictRouter) -> None:
    conn = make(router, grant="client_credentials")
    router.post(f"{BASE}/oauth2/token").mock(return_value=httpx.Response(400, json={}))
    with pytest.raises(ConfigError) as info:
        conn.check()
    assert "test-client-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("status", "headers", "error", "wait"),
    [
        (429, {"Retry-After": "2"}, RateLimited, 2.0),
        (503, {"Retry-After": "30"}, RateLimited, 30.0),
        (503, {}, TransientError, None),
    ],
)
def test_429_and_503_are_classified(
    router: StrictRouter,
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    wait: float | None,
) -> None:
    conn = make(router)
    token_route(router, "tok-1")
    router.get(f"{BASE}/learn/v1/enrollments").mock(
        return_value=httpx.Response(status, headers=headers)
    )
    with pytest.raises(error) as info:
        conn.poll(None, until=NOW)
    if wait is not None:
        assert isinstance(info.value, RateLimited)
        assert info.value.retry_after == wait


def test_client_side_rate_limit_raises_instead_of_sleeping(router: StrictRouter) -> None:
    conn = make(router, rate_per_second=1, rate_burst=1)
    token_route(router, "tok-1")
    router.get(f"{BASE}/manage/v1/user").mock(return_value=json_response(API / "user_list.json"))
    conn.check()
    with pytest.raises(RateLimited) as info:
        conn.check()
    assert info.value.retry_after == pytest.approx(1.0)


# -- webhooks -----------------------------------------------------------------------------------


def test_grouped_payloads_get_stable_distinct_delivery_ids(router: StrictRouter) -> None:
    conn = make(router)
    body = (EVENTS / "enrollment_completed_grouped.json").read_bytes()
    events = conn.parse(request(body))
    assert [e.delivery_id for e in events] == [
        f"wh-20250610-090000-aa11bb22-grouped:{i}" for i in range(3)
    ]
    assert [e.delivery_id for e in conn.parse(request(body))] == [e.delivery_id for e in events]
    [single] = conn.parse(request((EVENTS / "d1_enrollment_completed.json").read_bytes()))
    assert single.delivery_id == "wh-20240313-145834-5bf0ce52-91d0-40f"


@pytest.mark.parametrize(
    "auth", [None, basic(password="wrong"), basic(user="other"), "Bearer x", "Basic !!!"]
)
def test_basic_auth_rejects_wrong_credentials(router: StrictRouter, auth: str | None) -> None:
    conn = make(router)
    with pytest.raises(InvalidSignature):
        conn.verify(request(b"{}", auth=auth))
    conn.verify(request(b"{}", auth=basic()))


def test_query_token_mode(router: StrictRouter) -> None:
    conn = make(
        router,
        webhook_auth="query_token",
        webhook_token="s3cret-url-token",
        webhook_previous_secret="old-token",
    )
    conn.verify(request(b"{}", query="token=s3cret-url-token"))
    conn.verify(request(b"{}", query="token=old-token"))
    for query in ("", "token=wrong", "other=s3cret-url-token"):
        with pytest.raises(InvalidSignature):
            conn.verify(request(b"{}", query=query))


def test_learning_plan_event_names_are_configurable(router: StrictRouter) -> None:
    conn = make(router, event_aliases={"lp.user.completed": "learningplan.enrollment.completed"})
    body = json.loads((EVENTS / "learning_plan_completed.json").read_text())
    body["event"] = "lp.user.completed"
    [event] = conn.parse(request(json.dumps(body).encode()))
    assert event.event_type == "learningplan.enrollment.completed"


def test_receiver_dedupes_redelivered_grouped_messages_and_normalize_maps_them(
    router: StrictRouter, tmp_path: Path
) -> None:
    conn = make(router, enrich_completions=False)
    store = temp_sqlite_store(tmp_path)
    enqueuer = ListEnqueuer()
    receiver = Receiver(
        {"docebo-test": ReceiverInstance(conn)},
        store=store,
        enqueuer=enqueuer,
        clock=FrozenClock(NOW),
    )
    body = (EVENTS / "enrollment_completed_grouped.json").read_bytes()
    assert receiver.receive("docebo-test", request(body, auth=basic())).status == 200
    assert receiver.receive("docebo-test", request(body, auth=basic())).status == 200  # redelivery
    assert receiver.receive("docebo-test", request(body, auth=basic("x", "y"))).status == 401
    assert len(enqueuer.events) == 3

    class Bound:
        instance_id = "docebo-test"
        connector = conn
        lrs = None

    report = normalize(
        enqueuer.events,
        instances=lambda _id: Bound(),
        destinations=[Destination(name="lrs")],
        store=store,
        clock=FrozenClock(NOW),
        base_iri=BASE_IRI,
        actors=StaticActorResolver("mbox", PEOPLE | {"34567": "bo.wong@example.com"}),
    )
    assert report.statements == 3
    assert not report.dead_lettered
    lease = store.outbox_lease("lrs", max_items=10, lease_seconds=60, now=NOW)
    assert lease is not None
    expected = {
        str(s.id): canonical_bytes(s)
        for s in map_all(
            conn,
            enqueuer.events,
            StaticActorResolver("mbox", PEOPLE | {"34567": "bo.wong@example.com"}),
        )
    }
    assert {i.statement_id: i.body for i in lease.items} == expected
    store.close()


# -- identity -----------------------------------------------------------------------------------


class _MemoryCache:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    def kv_get(self, namespace: str, key: str) -> str | None:
        return self.values.get((namespace, key))

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None:
        self.values[(namespace, key)] = value


def test_user_events_refresh_identity_and_emit_nothing(router: StrictRouter) -> None:
    conn = make(router)
    cache = _MemoryCache()
    resolver = IdentityResolver(IdentityConfig(), store=cache, lookup=None)
    events = conn.parse(request((EVENTS / "user_updated.json").read_bytes()))
    assert map_all(conn, events, resolver) == []
    # No lookup function: the email can only come from the refreshed cache.
    agent = resolver.agent(Person(source_user_id="12345"), source="docebo", home_page=BASE)
    assert agent.mbox == "mailto:john.doe@example.com"


def test_lookup_user_reads_the_user_api(router: StrictRouter) -> None:
    conn = make(router)
    token_route(router, "tok-1")
    router.get(f"{BASE}/manage/v1/user/12345").mock(
        return_value=json_response(API / "user_12345.json")
    )
    router.get(f"{BASE}/manage/v1/user/404").mock(return_value=httpx.Response(404))
    person = conn.lookup_user("12345")
    assert person is not None
    assert person.email == "John.Doe@Example.com"
    assert person.name == "John Doe"
    assert conn.lookup_user("404") is None
    # Through the resolver: looked up once, cached afterwards.
    resolver = IdentityResolver(
        IdentityConfig(), store=_MemoryCache(), lookup=lambda s, u: conn.lookup_user(u)
    )
    events = conn.parse(request((EVENTS / "enrollment_deleted.json").read_bytes()))
    first = map_all(conn, events, resolver)
    again = map_all(conn, events, resolver)
    assert first[0].actor.mbox == "mailto:john.doe@example.com"
    assert canonical_bytes(first[0]) == canonical_bytes(again[0])
