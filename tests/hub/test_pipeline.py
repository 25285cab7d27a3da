"""normalize / drain_inbox / run_poll: the plain functions the Celery tasks call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from hub.clock import FrozenClock
from hub.connector import Connector, ConnectorRuntime, ConnectorSettings, Person, Polling
from hub.cursor import TimeCursor
from hub.errors import MaintenanceIncomplete, MappingError, TransientError
from hub.events import PollResult, SourceEvent
from hub.inbox import INBOX, StoreInbox
from hub.mapping import EventPayload, MappingContext, StatementMapper
from hub.pipeline import Destination, drain_inbox, normalize, run_maintain, run_poll
from hub.queue import ListEnqueuer, QueueUnavailable
from hub.store.sqlite import SqliteStore
from hub.xapi import Activity, Agent, Statement
from hub.xapi.vocab import Verbs

BASE = "https://lrs-hub.example.com/xapi"
T0 = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)

mapper = StatementMapper()


class Completed(EventPayload):
    event_types: ClassVar[tuple[str, ...]] = ("course.completed",)
    user_id: str
    course_id: str
    email: str | None = None
    completed_at: datetime


@mapper.on(Completed)
def completed(e: Completed, ctx: MappingContext) -> list[Statement]:
    if e.course_id == "crash":
        raise RuntimeError("bug in a mapper")
    if e.course_id == "transient":
        raise TransientError("user API down")
    return [
        ctx.statement(
            verb=Verbs.COMPLETED,
            key=[
                ("user", e.user_id),
                ("course", e.course_id),
                ("completed_at", e.completed_at.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ],
            actor=ctx.agent(Person(source_user_id=e.user_id, email=e.email)),
            object_=Activity(id=ctx.activity_id("course", e.course_id)),
            timestamp=e.completed_at,
        )
    ]


class Settings(ConnectorSettings):
    tenant: str = "acme.example.com"


class PageSource:
    """A fake source API: pages of records, consumed by the polling connector."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.calls = 0


class FakeConnector(Connector[Settings], Polling[TimeCursor]):
    name: ClassVar[str] = "fake"
    source: ClassVar[str] = "fake"
    platform: ClassVar[str] = "Fake LMS"
    settings_model = Settings
    mapper: ClassVar[StatementMapper] = mapper
    api: ClassVar[PageSource]

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def check(self) -> None:
        return None

    def initial_cursor(self, since: datetime) -> TimeCursor:
        return TimeCursor(mark=since, page=0)

    def poll(self, cursor: TimeCursor | None, *, until: datetime) -> PollResult[TimeCursor]:
        page = 0 if cursor is None else (cursor.page or 0)
        self.api.calls += 1
        rows = self.api.pages[page]
        events = [
            SourceEvent(
                instance_id=self.instance_id,
                event_type="course.completed",
                payload=r,
                delivery_id=f"{r['user_id']}:{r['course_id']}",
                received_at=until,
                via="poll",
            )
            for r in rows
        ]
        more = page + 1 < len(self.api.pages)
        return PollResult(
            events=events, next_cursor=TimeCursor(mark=until, page=page + 1), has_more=more
        )


class EmailResolver:
    def agent(self, person: Person, *, source: str, home_page: str) -> Agent:
        if person.email:
            return Agent(mbox=f"mailto:{person.email.lower()}")
        from hub.xapi import Account

        return Agent(account=Account(home_page=home_page, name=person.source_user_id or "?"))


@dataclass(frozen=True)
class Bound:
    instance_id: str
    connector: Any
    lrs: frozenset[str] | None = None


@pytest.fixture
def store(tmp_path: Any) -> SqliteStore:
    return SqliteStore(tmp_path / "state.sqlite")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def make_bound(
    clock: FrozenClock,
    pages: list[list[dict[str, Any]]] | None = None,
    lrs: frozenset[str] | None = None,
) -> Bound:
    FakeConnector.api = PageSource(pages or [[]])
    conn = FakeConnector(
        Settings(), runtime=ConnectorRuntime(instance_id="lms", base_iri=BASE, clock=clock)
    )
    return Bound("lms", conn, lrs)


def event(
    course: str, *, user: str = "12345", email: str | None = "Ada@Example.com"
) -> SourceEvent:
    payload = {"user_id": user, "course_id": course, "completed_at": "2024-03-13T14:58:26Z"}
    if email:
        payload["email"] = email
    return SourceEvent(
        instance_id="lms",
        event_type="course.completed",
        payload=payload,
        delivery_id=f"d-{course}-{user}",
        received_at=T0,
    )


def run_normalize(
    events: Sequence[SourceEvent],
    *,
    store: SqliteStore,
    clock: FrozenClock,
    bound: Bound,
    destinations: Sequence[Destination],
) -> Any:
    return normalize(
        events,
        instances=lambda iid: bound if iid == bound.instance_id else None,
        destinations=destinations,
        store=store,
        clock=clock,
        base_iri=BASE,
        actors=EmailResolver(),
    )


def test_normalize_appends_canonical_bytes_to_every_routed_outbox(store, clock) -> None:
    bound = make_bound(clock)
    dests = [Destination("a"), Destination("b", xapi_version="2.0.0")]
    report = run_normalize(
        [event("678")], store=store, clock=clock, bound=bound, destinations=dests
    )
    assert report.statements == 1
    assert report.appended == {"a": 1, "b": 1}
    lease = store.outbox_lease("a", max_items=10, lease_seconds=30, now=T0)
    assert lease is not None
    [item] = lease.items
    body = json.loads(item.body)
    assert body["actor"] == {"mbox": "mailto:ada@example.com"}
    assert body["timestamp"] == "2024-03-13T14:58:26.000Z"
    assert item.statement_id == body["id"]
    ext = body["context"]["extensions"]
    key = "fake|acme.example.com|completed|user=12345|course=678|completed_at=2024-03-13T14:58:26Z"
    assert ext[f"{BASE}/extensions/source-event-id"] == key
    assert body["context"]["platform"] == "Fake LMS"


def test_normalize_twice_gives_one_outbox_item(store, clock) -> None:
    bound = make_bound(clock)
    for _ in range(2):
        run_normalize(
            [event("678")], store=store, clock=clock, bound=bound, destinations=[Destination("a")]
        )
    assert store.outbox_stats("a", now=T0).ready == 1


def test_routing_by_instance_and_verb(store, clock) -> None:
    bound = make_bound(clock, lrs=frozenset({"a", "c"}))
    dests = [
        Destination("a", verbs=frozenset({"completed"})),
        Destination("b"),
        Destination("c", instances=frozenset({"other"})),
        Destination("d", verbs=frozenset({"http://adlnet.gov/expapi/verbs/passed"})),
    ]
    report = run_normalize(
        [event("678")], store=store, clock=clock, bound=bound, destinations=dests
    )
    assert report.produced == {"a": 1}


def test_failures_are_dead_lettered_and_do_not_block_the_batch(store, clock) -> None:
    bound = make_bound(clock)
    bad_payload = SourceEvent(
        instance_id="lms", event_type="course.completed", payload={"user_id": "1"}, received_at=T0
    )
    unknown = event("678").model_copy(update={"instance_id": "gone"})
    unmapped = SourceEvent(instance_id="lms", event_type="user.updated", payload={}, received_at=T0)
    report = run_normalize(
        [bad_payload, event("crash"), unknown, unmapped, event("678")],
        store=store,
        clock=clock,
        bound=bound,
        destinations=[Destination("a")],
    )
    assert report.statements == 1
    assert report.unmapped == {"user.updated": 1}
    assert report.dead_lettered == {"mapping_failed": 1, "mapper_crashed": 1, "unknown_instance": 1}
    letters = {
        d.reason: d for d in store.dlq_list(__import__("hub.store").store.DeadLetterFilter())
    }
    assert "course_id" in letters["mapping_failed"].detail
    assert letters["mapper_crashed"].envelope["payload"]["course_id"] == "crash"  # type: ignore[index]


def test_invalid_statement_goes_to_dead_letters(store, clock) -> None:
    bound = make_bound(clock)
    # An email that is not an address cannot make a valid mbox.
    report = run_normalize(
        [event("678", email="not an email")],
        store=store,
        clock=clock,
        bound=bound,
        destinations=[Destination("a")],
    )
    assert report.dead_lettered == {"invalid_statement": 1}
    assert store.outbox_stats("a", now=T0).ready == 0


class JsonConnector(FakeConnector):
    """Maps like a compiled mapping does: xAPI JSON (`StatementJson`), not models."""

    name: ClassVar[str] = "json"

    def map(self, event: SourceEvent, ctx: MappingContext) -> Any:
        payload = event.payload
        assert isinstance(payload, dict)
        return [
            ctx.statement_json(
                verb=Verbs.ATTENDED,
                key=[("session", str(payload["session"]))],
                actor={"mbox": str(payload["mbox"])},
                object_={"id": ctx.activity_id("session", str(payload["session"]))},
                timestamp=T0,
                result={"duration": "PT90M"},  # not canonical: the outbox gets PT1H30M
            )
        ]


def test_statement_json_is_routed_validated_and_left_unchanged(store, clock) -> None:
    conn = JsonConnector(
        Settings(), runtime=ConnectorRuntime(instance_id="lms", base_iri=BASE, clock=clock)
    )
    bound = Bound("lms", conn)
    mapped: list[Any] = []  # (statement, a deep copy of its JSON at mapping time)
    original_map = conn.map

    def spy(event: SourceEvent, ctx: MappingContext) -> Any:
        result = original_map(event, ctx)
        mapped.extend((s, json.loads(json.dumps(s.data))) for s in result)
        return result

    conn.map = spy  # type: ignore[method-assign]
    good = SourceEvent(
        instance_id="lms",
        event_type="x",
        payload={"session": "s1", "mbox": "mailto:ada@example.com"},
        received_at=T0,
    )
    bad = SourceEvent(
        instance_id="lms", event_type="x", payload={"session": "s2", "mbox": "ada"}, received_at=T0
    )
    dests = [Destination("a"), Destination("b", xapi_version="2.0.0")]
    report = run_normalize([good, bad], store=store, clock=clock, bound=bound, destinations=dests)
    assert report.appended == {"a": 1, "b": 1}
    assert report.dead_lettered == {"invalid_statement": 1}
    [letter] = store.dlq_list(__import__("hub.store").store.DeadLetterFilter())
    assert "$.actor.mbox" in letter.detail
    bodies = []
    for name in ("a", "b"):
        lease = store.outbox_lease(name, max_items=10, lease_seconds=30, now=T0)
        assert lease is not None
        bodies += [json.loads(item.body) for item in lease.items]
    assert bodies[0] == bodies[1]  # nothing version-specific in it
    assert bodies[0]["result"] == {"duration": "PT1H30M"}
    assert bodies[0]["context"]["platform"] == "Fake LMS"
    # What the mapper returned is exactly as it was: the hub copied before canonicalising.
    statement, snapshot = mapped[0]
    assert statement.data == snapshot
    assert statement.data["result"] == {"duration": "PT90M"}


def test_mapping_error_class_is_exported_for_connectors() -> None:
    assert issubclass(MappingError, Exception)


def test_drain_inbox_acks_only_after_normalizing(store, clock) -> None:
    bound = make_bound(clock)
    inbox = StoreInbox(store, clock=clock)
    inbox.enqueue([event("678"), event("679")])  # one grouped item of 2 events
    inbox.enqueue([event("678"), event("679")])  # the same request again: the same item
    inbox.enqueue([event("678")])  # the same delivery alone: an item of its own
    stats = store.outbox_stats(INBOX, now=T0)
    assert (stats.ready, stats.weight) == (2, 3)
    report = drain_inbox(
        store=store,
        clock=clock,
        backoff=lambda attempt: 10.0,
        normalize_batch=lambda evs: run_normalize(
            evs, store=store, clock=clock, bound=bound, destinations=[Destination("a")]
        ),
    )
    assert report.leased == 3
    assert store.outbox_stats(INBOX, now=T0).ready == 0
    assert store.outbox_stats(INBOX, now=T0).leased == 0
    assert store.outbox_stats(INBOX, now=T0).weight == 0
    # 678 was normalized twice, into the same statement id: the outbox holds it once.
    assert store.outbox_stats("a", now=T0).ready == 2


def test_drain_inbox_transient_failure_keeps_events_with_backoff(store, clock) -> None:
    bound = make_bound(clock)
    StoreInbox(store, clock=clock).enqueue([event("transient")])

    def drain() -> Any:
        return drain_inbox(
            store=store,
            clock=clock,
            backoff=lambda attempt: 10.0,
            max_attempts=3,
            normalize_batch=lambda evs: run_normalize(
                evs, store=store, clock=clock, bound=bound, destinations=[Destination("a")]
            ),
        )

    assert drain().retried == 1
    assert drain().leased == 0  # not due yet: backoff honoured
    clock.advance(11)
    assert drain().retried == 1
    clock.advance(11)
    report = drain()  # third attempt: gives up into the dead letters, never silently
    assert report.dead_lettered == 1
    assert store.outbox_stats(INBOX, now=clock.now()).ready == 0
    [letter] = store.dlq_list(__import__("hub.store").store.DeadLetterFilter())
    assert letter.reason == "lookup_unavailable"


def test_crashed_normalizer_lease_returns_to_inbox(store, clock) -> None:
    StoreInbox(store, clock=clock).enqueue([event("678")])
    lease = store.outbox_lease(INBOX, max_items=10, lease_seconds=30, now=T0)
    assert lease is not None  # a worker took it, then died without acking
    assert store.outbox_lease(INBOX, max_items=10, lease_seconds=30, now=T0) is None
    later = store.outbox_lease(
        INBOX, max_items=10, lease_seconds=30, now=T0 + timedelta(seconds=31)
    )
    assert later is not None
    assert len(later.items) == 1


def test_inbox_store_failure_is_queue_unavailable(clock) -> None:
    class Broken:
        def outbox_append(self, *a: Any, **k: Any) -> int:
            raise ConnectionError("store down")

    with pytest.raises(QueueUnavailable):
        StoreInbox(Broken(), clock=clock).enqueue([event("678")])  # type: ignore[arg-type]


def test_run_poll_enqueues_before_saving_cursor_and_resumes(store, clock) -> None:
    rows = [
        [{"user_id": str(i), "course_id": "1", "completed_at": "2024-03-13T14:00:00Z"}]
        for i in range(3)
    ]
    bound = make_bound(clock, pages=rows)
    enq = ListEnqueuer()
    first = run_poll(bound, store=store, enqueuer=enq, clock=clock)
    assert first.events == 1
    assert first.has_more
    # The queue goes down: the page is not saved as done, so the next poll repeats it.
    with pytest.raises(QueueUnavailable):
        run_poll(bound, store=store, enqueuer=ListEnqueuer(fail=True), clock=clock)
    second = run_poll(bound, store=store, enqueuer=enq, clock=clock)
    third = run_poll(bound, store=store, enqueuer=enq, clock=clock)
    assert not third.has_more
    assert second.events == third.events == 1
    ids = [e.delivery_id for e in enq.events]
    assert ids == ["0:1", "1:1", "2:1"]  # no gap, no duplicate


def test_run_poll_skips_when_another_poll_holds_the_lock(store, clock) -> None:
    bound = make_bound(clock, pages=[[]])
    assert store.acquire_lock("poll:lms", owner="other", ttl_seconds=60)
    report = run_poll(bound, store=store, enqueuer=ListEnqueuer(), clock=clock)
    assert report.skipped
    assert FakeConnector.api.calls == 0


class Upkeep:
    """A connector whose maintain() returns the events it was given (or raises `fail`)."""

    name = "upkeep"

    def __init__(self, events: list[Any] | None, fail: Exception | None = None) -> None:
        self.events = events
        self.fail = fail

    def maintain(self) -> list[Any] | None:
        if self.fail is not None:
            raise self.fail
        return self.events


def upkeep_event(instance: str, n: int) -> SourceEvent:
    return SourceEvent(instance_id=instance, event_type="idle", payload={"n": n},
                       delivery_id=f"idle:{n}", received_at=T0, via="poll")  # fmt: skip


def test_run_maintain_enqueues_what_the_upkeep_found() -> None:
    enq = ListEnqueuer()
    found = [upkeep_event("yt", 1), upkeep_event("yt", 2)]
    assert run_maintain(Bound("yt", Upkeep(found)), enqueuer=enq) == 2
    assert enq.events == found
    assert run_maintain(Bound("yt", Upkeep(None)), enqueuer=enq) == 0  # the usual upkeep
    assert len(enq.events) == 2


def test_run_maintain_refuses_events_of_another_instance_and_enqueues_none() -> None:
    enq = ListEnqueuer()
    found = [upkeep_event("yt", 1), upkeep_event("someone-else", 2)]
    with pytest.raises(TypeError, match="'upkeep'.*not SourceEvents of instance 'yt'"):
        run_maintain(Bound("yt", Upkeep(found)), enqueuer=enq)
    assert enq.events == []


def test_run_maintain_enqueues_what_an_incomplete_upkeep_found_then_raises() -> None:
    enq = ListEnqueuer()
    found = [upkeep_event("yt", 1)]
    failed = MaintenanceIncomplete(found, ["WebSub: HTTP 503", "playlists: quota"])
    with pytest.raises(MaintenanceIncomplete, match="WebSub: HTTP 503; playlists: quota"):
        run_maintain(Bound("yt", Upkeep(None, fail=failed)), enqueuer=enq)
    assert enq.events == found  # the found events are not lost with the failed part
    # Any other failure enqueues nothing (there is nothing to enqueue).
    with pytest.raises(TransientError):
        run_maintain(Bound("yt", Upkeep(found, fail=TransientError("down"))), enqueuer=enq)
    assert enq.events == found
    # An incomplete upkeep's events are checked like returned ones.
    stray = MaintenanceIncomplete([upkeep_event("other", 2)], ["x"])
    with pytest.raises(TypeError, match="not SourceEvents of instance 'yt'"):
        run_maintain(Bound("yt", Upkeep(None, fail=stray)), enqueuer=enq)
    assert enq.events == found
