"""deliver_once against a fake LRS with real LRS semantics and an in-memory store."""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import SecretStr

from hub.clock import FrozenClock
from hub.delivery import (
    BACKOFF_NAMESPACE,
    CIRCUIT_NAMESPACE,
    DeliveryReport,
    acquire_slot,
    circuit_state,
    deliver_once,
)
from hub.lrs import LrsClient, LrsTarget
from hub.store.base import DeadLetter, DeadLetterFilter, OutboxItem, Store
from hub.xapi.serialize import canonical_json
from tests.hub._memstore import MemoryStore

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
LRS = "ll"
PASSWORD = "hub-secret"
BASE = "https://hub.example.org/xapi"
LINEAGE_VERSION = BASE + "/extensions/connector-version"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
INVALID = "urn:test:invalid"  # the fake LRS rejects statements with this verb
NAMESPACE = uuid.UUID("6f1c8a52-8a8e-4b7f-9a3e-1f9f0f8d2c11")


def sid(n: int) -> str:
    return str(uuid.uuid5(NAMESPACE, str(n)))


def statement(
    n: int, *, verb: str = COMPLETED, connector_version: str = "1.0.0", pad: int = 0
) -> dict[str, Any]:
    stmt: dict[str, Any] = {
        "id": sid(n),
        "actor": {"objectType": "Agent", "mbox": f"mailto:learner{n}@example.org"},
        "verb": {"id": verb, "display": {"en": "completed"}},
        "object": {"objectType": "Activity", "id": f"{BASE}/activities/course/{n}"},
        "timestamp": "2026-11-28T11:00:00.000Z",
        "context": {
            "platform": "Docebo",
            "extensions": {
                BASE + "/extensions/source": "docebo",
                LINEAGE_VERSION: connector_version,
            },
        },
    }
    if pad:
        stmt["result"] = {"response": "x" * pad}
    return stmt


class FakeLrs:
    """An LRS in miniature (xapi.md §3, §6): stores by id, atomic batches, LL or Ralph flavour.

    `script` holds the next POST answers; None entries mean "behave normally".
    """

    def __init__(self, *, flavour: Literal["ll", "ralph"] = "ll") -> None:
        self.flavour = flavour
        self.held: dict[str, dict[str, Any]] = {}
        self.newly_stored: list[str] = []
        self.posts: list[list[str]] = []
        self.gets: list[str] = []
        self.script: list[httpx.Response | None] = []
        self.get_script: list[httpx.Response] = []
        self.password = PASSWORD
        self.max_bytes: int | None = None

    def preload(self, stmt: dict[str, Any]) -> None:
        self.held[stmt["id"]] = stmt

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        batch = json.loads(request.content) if request.method == "POST" else []
        ids = [s["id"] for s in batch]
        if request.method == "POST":
            self.posts.append(ids)
        token = base64.b64encode(f"hub:{self.password}".encode()).decode()
        expected = f"Basic {token}"
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, json={"detail": "Invalid authentication credentials"})
        if request.method == "GET":
            return self._get(request.url.params["statementId"])
        if self.script:
            scripted = self.script.pop(0)
            if scripted is not None:
                return scripted
        if self.max_bytes is not None and len(request.content) > self.max_bytes:
            return httpx.Response(413, text="Payload Too Large")
        if len(set(ids)) != len(ids):
            return httpx.Response(400, json={"detail": "Duplicate statement IDs"})
        for index, stmt in enumerate(batch):
            if stmt["verb"]["id"] == INVALID:
                warning = f"Problem in 'statements.{index}.verb.id'. Received '{INVALID}'"
                return httpx.Response(400, json={"warnings": [warning]})
        new = []
        for stmt in batch:
            if stmt["id"] in self.held:
                if self.held[stmt["id"]] != stmt:
                    return httpx.Response(409, json={"message": f"{stmt['id']} is conflicting"})
            else:
                new.append(stmt)
        for stmt in new:  # atomic: nothing is stored unless the whole batch is fine
            self.held[stmt["id"]] = stmt
            self.newly_stored.append(stmt["id"])
        if not new and self.flavour == "ralph":
            return httpx.Response(204)
        answered = [s["id"] for s in (new if self.flavour == "ralph" else batch)]
        return httpx.Response(200, json=answered)

    def _get(self, statement_id: str) -> httpx.Response:
        self.gets.append(statement_id)
        if self.get_script:
            return self.get_script.pop(0)
        held = self.held.get(statement_id)
        if held is None:
            if self.flavour == "ralph":
                return httpx.Response(200, json={"statements": []})
            return httpx.Response(404, json={"message": "No model found"})
        # What an LRS hands back: its own additions on top of what it was sent.
        returned = {
            **held,
            "stored": "2026-11-28T11:30:00.000Z",
            "authority": {"objectType": "Agent", "mbox": "mailto:hub@lrs.example.org"},
            "version": "1.0.0",
        }
        if self.flavour == "ralph":
            return httpx.Response(200, json={"statements": [returned]})
        return httpx.Response(200, json=returned)


class Harness:
    def __init__(self, *, flavour: Literal["ll", "ralph"] = "ll", seed: int = 0) -> None:
        self.clock = FrozenClock(NOW)
        self.store = MemoryStore()
        self.lrs = FakeLrs(flavour=flavour)
        target = LrsTarget(
            name=LRS,
            endpoint="https://lrs.example.org/xAPI",
            username="hub",
            password=SecretStr(PASSWORD),
        )
        http = httpx.Client(transport=httpx.MockTransport(self.lrs))
        self.client = LrsClient(target, http=http, clock=self.clock)
        self.rng = random.Random(seed)

    def enqueue(self, *stmts: dict[str, Any]) -> list[OutboxItem]:
        now = self.clock.now()
        items = [
            OutboxItem(
                statement_id=s["id"],
                body=canonical_json(s),
                instance_id="docebo-main",
                verb=s["verb"]["id"],
                enqueued_at=now,
                received_at=now - timedelta(seconds=1),
            )
            for s in stmts
        ]
        self.store.outbox_append(LRS, items, now=now)
        return items

    def deliver(self, **overrides: Any) -> DeliveryReport:
        kwargs: dict[str, Any] = {
            "store": self.store,
            "lrs_name": LRS,
            "client": self.client,
            "clock": self.clock,
            "batch_size": 10,
            "max_batch_wait": 0.0,
            "lease_seconds": 120.0,
            "retry_horizon": 86_400.0,
            "rng": self.rng,
        }
        kwargs.update(overrides)
        return deliver_once(**kwargs)

    def waiting(self) -> dict[str, OutboxItem]:
        return {k: w.item for k, w in self.store.waiting(LRS).items()}

    def not_before(self, statement_id: str) -> datetime:
        return self.store.waiting(LRS)[statement_id].not_before

    def dead(self) -> dict[str, DeadLetter]:
        return {str(d.statement_id): d for d in self.store.dlq_list(DeadLetterFilter())}


def test_memstore_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)


# -- the happy paths -----------------------------------------------------------------------------
def test_at_most_max_in_flight_rounds_hold_an_lrs() -> None:
    store = MemoryStore()
    first = acquire_slot(store, "lrs-a", slots=2, owner="w1", ttl_seconds=60)
    second = acquire_slot(store, "lrs-a", slots=2, owner="w2", ttl_seconds=60)
    assert first is not None
    assert second is not None
    assert first != second
    assert acquire_slot(store, "lrs-a", slots=2, owner="w3", ttl_seconds=60) is None
    assert acquire_slot(store, "lrs-b", slots=2, owner="w3", ttl_seconds=60) is not None
    store.release_lock(first, owner="w1")
    assert acquire_slot(store, "lrs-a", slots=2, owner="w3", ttl_seconds=60) == first
    assert acquire_slot(store, "lrs-c", slots=1, owner="w1", ttl_seconds=60) is not None
    assert acquire_slot(store, "lrs-c", slots=1, owner="w2", ttl_seconds=60) is None


def test_all_stored_in_one_post() -> None:
    h = Harness()
    items = h.enqueue(*(statement(n) for n in range(5)))
    report = h.deliver()
    assert report.stored == 5
    assert report.requests == 1
    assert (report.dead_lettered, report.retried, report.paused, report.more_waiting) == (
        0,
        0,
        False,
        False,
    )
    assert report.next_check_in is None
    assert report.stored_received_at == [i.received_at for i in items]
    assert h.waiting() == {}
    assert sorted(h.lrs.held) == sorted(sid(n) for n in range(5))


def test_a_backlog_goes_out_in_batches() -> None:
    h = Harness()
    h.enqueue(*(statement(n) for n in range(25)))
    reports = [h.deliver()]
    while reports[-1].more_waiting:
        assert reports[-1].next_check_in == 0.0
        reports.append(h.deliver())
    assert [r.stored for r in reports] == [10, 10, 5]
    assert [len(p) for p in h.lrs.posts] == [10, 10, 5]
    assert len(h.lrs.held) == 25


@pytest.mark.parametrize("flavour", ["ll", "ralph"])
def test_identical_resend_is_stored_not_duplicated(flavour: Literal["ll", "ralph"]) -> None:
    h = Harness(flavour=flavour)
    h.lrs.preload(statement(1))
    h.enqueue(statement(1), statement(2))
    assert h.deliver().stored == 2
    assert h.lrs.newly_stored == [sid(2)]
    # Everything already there: Learning Locker answers 200, Ralph 204 with no body.
    h.enqueue(statement(1), statement(2))
    report = h.deliver()
    assert report.stored == 2
    assert h.lrs.newly_stored == [sid(2)]
    assert h.dead() == {}


# -- permanent failures are isolated -------------------------------------------------------------
def test_one_invalid_statement_is_isolated_and_the_rest_stored() -> None:
    h = Harness()
    stmts = [statement(n) for n in range(8)]
    stmts[5] = statement(5, verb=INVALID)
    items = h.enqueue(*stmts)
    report = h.deliver()
    assert report.stored == 7
    assert report.dead_lettered == 1
    assert set(h.lrs.held) == {sid(n) for n in range(8) if n != 5}
    letter = h.dead()[sid(5)]
    assert letter.id == f"deliver:{LRS}:{sid(5)}"
    assert (letter.stage, letter.reason, letter.lrs) == ("deliver", "lrs_rejected", LRS)
    assert "HTTP 400" in letter.detail
    assert "Problem in 'statements.0.verb.id'" in letter.detail
    assert letter.body == items[5].body
    assert letter.instance_id == "docebo-main"
    assert h.waiting() == {}
    # Bisection: never more than 2n - 1 POSTs for n statements.
    assert report.requests == len(h.lrs.posts) <= 2 * 8 - 1


def test_a_batch_the_lrs_always_refuses_stays_bounded() -> None:
    h = Harness()
    h.lrs.script = [httpx.Response(422, json={"detail": "nope"})] * 100
    h.enqueue(*(statement(n) for n in range(6)))
    report = h.deliver(batch_size=6)
    assert report.dead_lettered == 6
    assert len(h.lrs.posts) == 2 * 6 - 1
    assert {d.reason for d in h.dead().values()} == {"lrs_rejected"}


@pytest.mark.parametrize("flavour", ["ll", "ralph"])
def test_one_conflict_is_dead_lettered_with_both_versions(flavour: Literal["ll", "ralph"]) -> None:
    h = Harness(flavour=flavour)
    theirs = statement(3, verb="http://adlnet.gov/expapi/verbs/attempted")
    h.lrs.preload(theirs)
    items = h.enqueue(*(statement(n) for n in range(6)))
    report = h.deliver()
    assert report.stored == 5
    assert report.dead_lettered == 1
    assert h.lrs.gets == [sid(3)]
    assert h.lrs.held[sid(3)] == theirs  # untouched
    assert {sid(n) for n in range(6)} == set(h.lrs.held)
    letter = h.dead()[sid(3)]
    assert letter.reason == "conflict"
    assert "HTTP 409" in letter.detail
    assert letter.body == items[3].body
    assert letter.stored_version is not None
    stored_version = json.loads(letter.stored_version)
    assert stored_version["verb"]["id"] == "http://adlnet.gov/expapi/verbs/attempted"
    assert h.waiting() == {}


@pytest.mark.parametrize("flavour", ["ll", "ralph"])
def test_conflict_differing_only_in_connector_version_is_stored(
    flavour: Literal["ll", "ralph"],
) -> None:
    h = Harness(flavour=flavour)
    # Stored by an older hub; a re-send after an upgrade only differs in the lineage version.
    h.lrs.preload(statement(1, connector_version="0.9.0"))
    h.enqueue(statement(1, connector_version="1.0.0"), statement(2))
    report = h.deliver()
    assert report.stored == 2
    assert report.dead_lettered == 0
    assert h.lrs.gets == [sid(1)]
    assert h.waiting() == {}


def test_conflict_on_a_voided_statement_is_dead_lettered() -> None:
    h = Harness()
    h.lrs.script = [httpx.Response(409, json={"message": "conflicting"})]
    h.enqueue(statement(1))
    report = h.deliver()
    assert report.dead_lettered == 1
    letter = h.dead()[sid(1)]
    assert letter.reason == "conflict"
    assert "voided" in letter.detail
    assert letter.stored_version is None


def test_conflict_whose_read_back_fails_transiently_is_retried() -> None:
    h = Harness()
    h.lrs.preload(statement(1, verb="urn:other"))
    h.lrs.get_script = [httpx.Response(503, headers={"Retry-After": "20"})]
    h.enqueue(statement(1))
    report = h.deliver()
    assert (report.stored, report.dead_lettered, report.retried) == (0, 0, 1)
    assert h.waiting()[sid(1)].attempts == 1
    assert h.not_before(sid(1)) >= NOW + timedelta(seconds=20)
    h.clock.advance(20)
    report = h.deliver()
    assert report.dead_lettered == 1
    assert h.dead()[sid(1)].attempts == 2


def test_too_large_batches_are_split_and_a_huge_statement_dead_lettered() -> None:
    h = Harness()
    small = [statement(n) for n in range(8)]
    one = len(canonical_json(small[0]))
    h.lrs.max_bytes = 3 * one + 10  # at most three statements per POST
    huge = statement(99, pad=10 * one)
    h.enqueue(*small, huge)
    report = h.deliver()
    assert report.stored == 8
    assert report.dead_lettered == 1
    assert h.dead()[sid(99)].reason == "too_large"
    assert set(h.lrs.held) == {sid(n) for n in range(8)}
    assert report.requests <= 2 * 9 - 1


# -- transient failures --------------------------------------------------------------------------
def test_503_then_recovery_delivers_everything_once() -> None:
    h = Harness()
    h.lrs.script = [httpx.Response(503), httpx.Response(503, text="Service Unavailable")]
    h.enqueue(*(statement(n) for n in range(5)))

    first = h.deliver()
    assert (first.stored, first.retried) == (0, 5)
    assert first.last_error is not None
    assert "HTTP 503" in first.last_error
    assert all(item.attempts == 1 for item in h.waiting().values())
    assert all(item.first_failure_at == NOW for item in h.waiting().values())
    due = h.not_before(sid(0))
    assert NOW <= due <= NOW + timedelta(seconds=1)  # attempt 0: window of 1 s
    assert first.next_check_in == pytest.approx((due - NOW).total_seconds())

    # Not before it is due: nothing is sent.
    h.clock.set(due - timedelta(milliseconds=1))
    early = h.deliver()
    assert early.requests == 0
    assert early.next_check_in == pytest.approx(0.001)

    h.clock.set(due)
    second = h.deliver()
    assert second.retried == 5
    assert all(item.attempts == 2 for item in h.waiting().values())
    h.clock.set(h.not_before(sid(0)))
    third = h.deliver()
    assert third.stored == 5
    assert len(h.lrs.posts) == 3
    assert sorted(h.lrs.newly_stored) == sorted(sid(n) for n in range(5))  # none twice
    assert h.waiting() == {}


def test_429_retry_after_is_honoured() -> None:
    h = Harness()
    h.lrs.script = [httpx.Response(429, headers={"Retry-After": "7"})]
    h.enqueue(statement(1), statement(2))
    report = h.deliver()
    assert report.retried == 2
    assert report.next_check_in == 7.0
    assert h.not_before(sid(1)) >= NOW + timedelta(seconds=7)
    assert h.not_before(sid(2)) >= NOW + timedelta(seconds=7)


def test_retry_after_http_date_and_the_countdown_cap() -> None:
    h = Harness()
    h.lrs.script = [httpx.Response(503, headers={"Retry-After": "Sat, 28 Nov 2026 13:00:00 GMT"})]
    h.enqueue(statement(1))
    report = h.deliver(max_countdown=300.0)
    assert h.not_before(sid(1)) == NOW + timedelta(hours=1)
    assert report.next_check_in == 300.0  # the task checks back within the broker's limits


def test_network_errors_are_retried() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    h = Harness()
    h.client = LrsClient(
        h.client.target, http=httpx.Client(transport=httpx.MockTransport(down)), clock=h.clock
    )
    h.enqueue(statement(1))
    report = h.deliver()
    assert report.retried == 1
    assert report.last_error is not None
    assert "ConnectError" in report.last_error


def test_a_dead_lrs_is_not_hammered_by_a_backlog() -> None:
    h = Harness(seed=3)
    h.lrs.script = [httpx.Response(503)] * 4
    h.enqueue(*(statement(n) for n in range(30)))
    first = h.deliver()
    assert (first.requests, first.retried, first.backing_off) == (1, 10, True)
    gate = h.store.kv_get(BACKOFF_NAMESPACE, LRS)
    assert gate is not None
    assert json.loads(gate)["failures"] == 1

    # A flush or an enqueue triggers a round before the pause is over: nothing is sent.
    blocked = h.deliver()
    assert (blocked.requests, blocked.backing_off) == (0, True)
    assert blocked.next_check_in == first.next_check_in

    # The streak grows the window even for statements that never failed themselves.
    windows = []
    for _ in range(3):
        assert first.next_check_in is not None
        h.clock.advance(first.next_check_in)
        first = h.deliver()
        assert first.requests == 1
        gate = h.store.kv_get(BACKOFF_NAMESPACE, LRS)
        assert gate is not None
        windows.append(json.loads(gate)["failures"])
    assert windows == [2, 3, 4]

    # Recovery clears the gate: the backlog flows again at full speed.
    assert first.next_check_in is not None
    h.clock.advance(first.next_check_in)
    assert h.deliver().stored == 10
    assert h.store.kv_get(BACKOFF_NAMESPACE, LRS) is None
    h.clock.advance(600)  # every backoff is over
    assert [h.deliver().stored for _ in range(4)] == [10, 10, 0, 0]
    assert len(h.lrs.held) == 30
    assert h.waiting() == {}


def test_retry_horizon_exceeded_goes_to_dead_letters() -> None:
    h = Harness()
    h.lrs.script = [httpx.Response(503)] * 3
    h.enqueue(statement(1))
    h.deliver(retry_horizon=60.0)
    h.clock.advance(61)
    h.enqueue(statement(2))  # a newcomer in the same batch has not failed yet
    report = h.deliver(retry_horizon=60.0)
    assert report.dead_lettered == 1
    assert report.retried == 1
    letter = h.dead()[sid(1)]
    assert letter.reason == "retry_horizon_exceeded"
    assert "HTTP 503" in letter.detail
    assert letter.first_at == NOW
    assert letter.attempts == 2
    assert set(h.waiting()) == {sid(2)}


def test_a_retry_in_the_middle_of_a_split_puts_the_rest_back() -> None:
    h = Harness()
    stmts = [statement(n) for n in range(4)]
    stmts[3] = statement(3, verb=INVALID)
    h.enqueue(*stmts)
    # 400 for the batch (normal behaviour), then the first half meets a 503.
    h.lrs.script = [None, httpx.Response(503)]
    report = h.deliver()
    assert (report.stored, report.dead_lettered, report.retried) == (0, 0, 4)
    assert all(item.attempts == 1 for item in h.waiting().values())
    h.clock.set(h.not_before(sid(0)))
    report = h.deliver()
    assert (report.stored, report.dead_lettered) == (3, 1)


# -- auth: the circuit ---------------------------------------------------------------------------
def test_401_opens_the_circuit_loses_nothing_and_probes() -> None:
    h = Harness()
    h.lrs.password = "rotated"  # our credentials are now wrong
    h.enqueue(*(statement(n) for n in range(4)))

    report = h.deliver()
    assert report.paused
    assert report.next_check_in == 30.0
    assert report.last_error is not None
    assert "HTTP 401" in report.last_error
    assert set(h.waiting()) == {sid(n) for n in range(4)}
    assert all(item.attempts == 0 for item in h.waiting().values())
    state = circuit_state(h.store, LRS)
    assert state is not None
    assert (state.opened_at, state.probe_at) == (NOW, NOW + timedelta(seconds=30))

    # Before the probe time: no request at all.
    h.clock.advance(10)
    quiet = h.deliver()
    assert quiet.paused
    assert quiet.requests == 0
    assert quiet.next_check_in == 20.0

    # The probe (one statement) is refused again: the interval doubles.
    h.clock.advance(20)
    probe = h.deliver()
    assert probe.paused
    assert probe.requests == 1
    assert h.lrs.posts[-1] == [sid(0)]
    assert probe.next_check_in == 60.0
    state = circuit_state(h.store, LRS)
    assert state is not None
    assert state.opened_at == NOW
    assert state.interval == 60.0

    # Credentials fixed: the next probe closes the circuit, then the rest flows.
    h.lrs.password = PASSWORD
    h.clock.advance(60)
    probe = h.deliver()
    assert not probe.paused
    assert probe.stored == 1
    assert probe.more_waiting
    assert h.store.kv_get(CIRCUIT_NAMESPACE, LRS) is None
    rest = h.deliver()
    assert rest.stored == 3
    assert set(h.lrs.held) == {sid(n) for n in range(4)}
    assert h.dead() == {}


def test_probe_interval_is_capped() -> None:
    h = Harness()
    h.lrs.password = "rotated"
    h.enqueue(statement(1))
    intervals = []
    for _ in range(8):
        report = h.deliver(probe_interval=30.0, max_probe_interval=600.0)
        assert report.next_check_in is not None
        intervals.append(report.next_check_in)
        h.clock.advance(report.next_check_in)
    assert intervals == [30.0, 60.0, 120.0, 240.0, 480.0, 600.0, 600.0, 600.0]
    assert h.waiting()[sid(1)].attempts == 0


def test_a_probe_meeting_a_503_keeps_the_circuit_open() -> None:
    h = Harness()
    h.lrs.password = "rotated"
    h.enqueue(statement(1), statement(2))
    h.deliver()
    h.lrs.password = PASSWORD
    h.lrs.script = [httpx.Response(503)]
    h.clock.advance(30)
    report = h.deliver()
    assert report.paused
    assert report.retried == 1
    state = circuit_state(h.store, LRS)
    assert state is not None
    assert state.interval == 30.0
    assert "401" in state.reason  # the cause an admin must fix is kept


def test_auth_in_the_middle_of_a_split_releases_uncounted() -> None:
    h = Harness()
    stmts = [statement(n) for n in range(4)]
    stmts[0] = statement(0, verb=INVALID)
    h.enqueue(*stmts)
    h.lrs.script = [None, httpx.Response(403, json={"detail": "scope"})]
    report = h.deliver()
    assert report.paused
    assert report.stored == 0
    assert all(item.attempts == 0 for item in h.waiting().values())
    assert len(h.waiting()) == 4


# -- batching ------------------------------------------------------------------------------------
def test_a_partial_batch_waits_for_max_batch_wait() -> None:
    h = Harness()
    h.enqueue(statement(1), statement(2), statement(3))
    h.clock.advance(2)
    report = h.deliver(max_batch_wait=5.0)
    assert report.waiting
    assert report.next_check_in == 3.0
    assert report.requests == 0
    assert all(item.attempts == 0 for item in h.waiting().values())
    assert all(w.not_before <= h.clock.now() for w in h.store.waiting(LRS).values())

    h.clock.advance(3)
    report = h.deliver(max_batch_wait=5.0)
    assert not report.waiting
    assert report.stored == 3
    assert len(h.lrs.posts) == 1


def test_a_partial_batch_nobody_joins_goes_out_after_max_batch_idle() -> None:
    h = Harness()
    h.enqueue(statement(1), statement(2))
    h.clock.advance(0.1)
    h.enqueue(statement(3))  # the batch is still growing
    report = h.deliver(max_batch_wait=5.0, max_batch_idle=0.25)
    assert report.waiting
    assert report.next_check_in == pytest.approx(0.25)  # idle measured from the newest
    assert report.requests == 0

    h.clock.advance(0.2)
    h.enqueue(statement(4))  # joined: the idle clock starts again
    assert h.deliver(max_batch_wait=5.0, max_batch_idle=0.25).waiting

    h.clock.advance(0.25)  # nothing joined for max_batch_idle: send, long before max_batch_wait
    report = h.deliver(max_batch_wait=5.0, max_batch_idle=0.25)
    assert not report.waiting
    assert report.stored == 4
    assert len(h.lrs.posts) == 1


def test_max_batch_wait_still_bounds_a_batch_that_keeps_growing() -> None:
    h = Harness()
    h.enqueue(statement(0))
    for n in range(1, 6):  # one joins every 0.2 s: never idle for 0.25 s
        h.clock.advance(0.2)
        h.enqueue(statement(n))
        if n < 5:
            assert h.deliver(max_batch_wait=1.0, max_batch_idle=0.25).waiting
    report = h.deliver(max_batch_wait=1.0, max_batch_idle=0.25)  # the oldest waited 1.0 s
    assert not report.waiting
    assert report.stored == 6


def test_a_full_batch_goes_out_at_once() -> None:
    h = Harness()
    h.enqueue(*(statement(n) for n in range(10)))
    report = h.deliver(max_batch_wait=5.0)
    assert report.stored == 10


def test_items_that_already_failed_do_not_wait_for_company() -> None:
    h = Harness()
    h.lrs.script = [httpx.Response(503)]
    h.enqueue(statement(1))
    assert h.deliver().retried == 1
    h.clock.set(h.not_before(sid(1)))
    report = h.deliver(max_batch_wait=3600.0)
    assert report.stored == 1


def test_nothing_due_reports_when_to_come_back() -> None:
    h = Harness()
    assert h.deliver().next_check_in is None
    h.lrs.script = [httpx.Response(429, headers={"Retry-After": "40"})]
    h.enqueue(statement(1))
    h.deliver()
    h.clock.advance(15)
    report = h.deliver()
    assert report.requests == 0
    assert report.next_check_in == pytest.approx(25.0)


# -- the same flow on the real SQLite store ------------------------------------------------------
@pytest.fixture(params=["memory", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite = pytest.importorskip("hub.store.sqlite")
    store = sqlite.SqliteStore(tmp_path / "state.db")
    yield store
    store.close()


def test_full_flow_through_the_store_interface_only(any_store: Store) -> None:
    h = Harness()
    h.store = any_store  # type: ignore[assignment]  # only the Store protocol is used below
    h.lrs.preload(statement(4, verb="urn:other"))
    stmts = [statement(n) for n in range(6)]
    stmts[1] = statement(1, verb=INVALID)
    h.enqueue(*stmts)

    # The LRS is down first: everything comes back later with one attempt counted.
    h.lrs.script = [httpx.Response(503)]
    first = h.deliver()
    assert first.retried == 6
    assert any_store.outbox_stats(LRS, now=h.clock.now()).ready == 6
    due = any_store.outbox_next_due(LRS)
    assert due is not None
    assert due > NOW

    # Then credentials are rotated: the LRS is paused and nothing is lost or counted.
    h.clock.set(due)
    h.lrs.password = "rotated"
    paused = h.deliver()
    assert paused.paused
    assert any_store.outbox_stats(LRS, now=h.clock.now()).ready == 6

    # Fixed: the probe closes the circuit, the rest is delivered, the two bad ones isolated.
    h.lrs.password = PASSWORD
    h.clock.advance(30)
    probe = h.deliver()
    assert probe.stored == 1
    assert probe.more_waiting
    rest = h.deliver()
    assert (rest.stored, rest.dead_lettered) == (3, 2)
    stats = any_store.outbox_stats(LRS, now=h.clock.now())
    assert (stats.ready, stats.leased) == (0, 0)
    reasons = {d.statement_id: d.reason for d in any_store.dlq_list(DeadLetterFilter())}
    assert reasons == {sid(1): "lrs_rejected", sid(4): "conflict"}
    assert set(h.lrs.newly_stored) == {sid(n) for n in (0, 2, 3, 5)}
    assert len(h.lrs.newly_stored) == 4
