"""One contract for every `Store`: the same tests run against Redis and SQLite.

Redis runs under a random key prefix per test, deleted afterwards, on the machine's Redis
(``LXHUB_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``); without a reachable Redis those
cases are skipped, with the reason shown. SQLite runs in `tmp_path`.

Outbox times are passed in (`now`), so outbox tests use a fixed clock. TTLs (locks, seen keys, kv)
run on the backend's real clock, so those tests use 0.2 s TTLs and short sleeps.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from hub.store.base import DeadLetter, DeadLetterFilter, Lease, OutboxItem, Store, item_weight
from hub.store.redis import RedisStore
from hub.store.sqlite import SqliteStore

REDIS_URL = os.environ.get("LXHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
LRS = "lrs-main"
TTL = 0.2
PAST_TTL = 0.35


@dataclass(frozen=True)
class Backend:
    """Enough to open the same store again, also from another process (picklable)."""

    kind: str
    location: str  # Redis URL or SQLite file path
    prefix: str = "hub"

    def open(self) -> Store:
        if self.kind == "redis":
            return RedisStore.from_url(self.location, prefix=self.prefix)
        return SqliteStore(self.location)


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.integration), "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "state.db"))
        return
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    prefix = f"test-{uuid.uuid4().hex}"
    try:
        yield Backend("redis", REDIS_URL, prefix)
    finally:
        leftovers = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if leftovers:
            client.delete(*leftovers)
        client.close()


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    yield s
    s.close()


def item(sid: str, *, at: datetime = T0, body: bytes | None = None) -> OutboxItem:
    return OutboxItem(
        statement_id=sid,
        body=body if body is not None else f'{{"id":"{sid}"}}'.encode(),
        instance_id="docebo-1",
        verb="http://adlnet.gov/expapi/verbs/completed",
        enqueued_at=at,
        received_at=at - timedelta(seconds=1),
    )


def ids(lease: Lease | None) -> list[str]:
    assert lease is not None
    return [i.statement_id for i in lease.items]


def letter(lid: str = "deliver:lrs-main:s1", **changes: object) -> DeadLetter:
    base: dict[str, object] = {
        "id": lid,
        "stage": "deliver",
        "lrs": LRS,
        "instance_id": "docebo-1",
        "statement_id": "s1",
        "reason": "lrs_rejected",
        "detail": "400 bad statement",
        "attempts": 1,
        "first_at": T0,
        "last_at": T0,
        "body": b"\x00\xffbinary",
        "envelope": {"event": "course.completed", "n": [1, 2.5, None]},
    }
    base.update(changes)
    return DeadLetter.model_validate(base)


# -- basics ------------------------------------------------------------------------------------


def test_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.ping() is True


def test_cursor_set_get_delete(store: Store) -> None:
    assert store.get_cursor("docebo-1") is None
    store.set_cursor("docebo-1", "2024-01-01T00:00:00Z")
    store.set_cursor("docebo-1", "page:2")
    assert store.get_cursor("docebo-1") == "page:2"
    assert store.get_cursor("docebo-2") is None
    store.delete_cursor("docebo-1")
    store.delete_cursor("docebo-1")  # deleting what is absent is fine
    assert store.get_cursor("docebo-1") is None


# -- locks -------------------------------------------------------------------------------------


def test_lock_is_exclusive_and_release_checks_the_owner(store: Store) -> None:
    assert store.acquire_lock("poll:docebo-1", owner="a", ttl_seconds=30) is True
    assert store.acquire_lock("poll:docebo-1", owner="b", ttl_seconds=30) is False
    assert store.acquire_lock("poll:docebo-1", owner="a", ttl_seconds=30) is False  # NX
    assert store.acquire_lock("poll:docebo-2", owner="b", ttl_seconds=30) is True

    store.release_lock("poll:docebo-1", owner="b")  # not b's: no effect
    assert store.acquire_lock("poll:docebo-1", owner="c", ttl_seconds=30) is False
    assert store.refresh_lock("poll:docebo-1", owner="b", ttl_seconds=30) is False
    assert store.refresh_lock("poll:docebo-1", owner="a", ttl_seconds=30) is True

    store.release_lock("poll:docebo-1", owner="a")
    assert store.acquire_lock("poll:docebo-1", owner="b", ttl_seconds=30) is True


def test_lock_expires(store: Store) -> None:
    assert store.acquire_lock("poll:x", owner="a", ttl_seconds=TTL)
    time.sleep(PAST_TTL)
    assert store.refresh_lock("poll:x", owner="a", ttl_seconds=30) is False
    assert store.acquire_lock("poll:x", owner="b", ttl_seconds=30) is True
    store.release_lock("poll:x", owner="a")  # a's lock expired: must not free b's
    assert store.acquire_lock("poll:x", owner="c", ttl_seconds=30) is False


def test_refresh_extends_a_lock(store: Store) -> None:
    assert store.acquire_lock("poll:x", owner="a", ttl_seconds=TTL)
    assert store.refresh_lock("poll:x", owner="a", ttl_seconds=30)
    time.sleep(PAST_TTL)
    assert store.acquire_lock("poll:x", owner="b", ttl_seconds=30) is False


# -- de-duplication and small state ------------------------------------------------------------


def test_mark_seen_first_true_then_false_and_unmark(store: Store) -> None:
    assert store.mark_seen("slack", "evt-1", ttl_seconds=60) is True
    assert store.mark_seen("slack", "evt-1", ttl_seconds=60) is False
    assert store.mark_seen("teams", "evt-1", ttl_seconds=60) is True  # namespaces are separate
    store.unmark_seen("slack", "evt-1")
    assert store.mark_seen("slack", "evt-1", ttl_seconds=60) is True


def test_mark_seen_many_marks_a_batch_in_one_call(store: Store) -> None:
    assert store.mark_seen("slack", "evt-2", ttl_seconds=60) is True
    got = store.mark_seen_many("slack", ["evt-1", "evt-2", "evt-3", "evt-1"], ttl_seconds=60)
    assert got == [True, False, True, False]  # evt-2 was seen; evt-1 repeats within the batch
    assert store.mark_seen("slack", "evt-3", ttl_seconds=60) is False
    assert store.mark_seen_many("teams", ["evt-1"], ttl_seconds=60) == [True]
    assert store.mark_seen_many("slack", [], ttl_seconds=60) == []
    store.unmark_seen("slack", "evt-1")
    assert store.mark_seen_many("slack", ["evt-1"], ttl_seconds=TTL) == [True]
    time.sleep(PAST_TTL)
    assert store.mark_seen_many("slack", ["evt-1", "evt-3"], ttl_seconds=60) == [True, False]


def test_mark_seen_expires(store: Store) -> None:
    assert store.mark_seen("slack", "evt-1", ttl_seconds=TTL) is True
    assert store.mark_seen("slack", "evt-1", ttl_seconds=TTL) is False
    time.sleep(PAST_TTL)
    assert store.mark_seen("slack", "evt-1", ttl_seconds=TTL) is True


def test_kv_with_ttl_and_items(store: Store) -> None:
    assert store.kv_get("sessions", "docebo-1") is None
    store.kv_set("sessions", "docebo-1", "tok-1")
    store.kv_set("sessions", "docebo-1", "tok-2")
    store.kv_set("sessions", "b:with:colons", "v-b")
    store.kv_set("sessions", "short", "gone soon", ttl_seconds=TTL)
    store.kv_set("sessions:other", "x", "must not leak into 'sessions'")
    store.kv_set("sess*", "y", "glob characters are literal")
    assert store.kv_get("sessions", "docebo-1") == "tok-2"
    assert store.kv_get("sessions", "short") == "gone soon"
    assert store.kv_items("sessions") == [
        ("b:with:colons", "v-b"),
        ("docebo-1", "tok-2"),
        ("short", "gone soon"),
    ]
    assert store.kv_items("sess*") == [("y", "glob characters are literal")]

    time.sleep(PAST_TTL)
    assert store.kv_get("sessions", "short") is None
    assert store.kv_items("sessions") == [("b:with:colons", "v-b"), ("docebo-1", "tok-2")]

    store.kv_delete("sessions", "docebo-1")
    store.kv_delete("sessions", "never-set")
    assert store.kv_get("sessions", "docebo-1") is None
    assert store.kv_items("empty") == []


def test_kv_set_without_ttl_clears_an_earlier_ttl(store: Store) -> None:
    store.kv_set("ns", "k", "v1", ttl_seconds=TTL)
    store.kv_set("ns", "k", "v2")
    time.sleep(PAST_TTL)
    assert store.kv_get("ns", "k") == "v2"


def test_kv_compare_and_set(store: Store) -> None:
    assert store.kv_compare_and_set("st", "open", expected="[]", value="[1]") is False  # absent
    assert store.kv_get("st", "open") is None
    assert store.kv_compare_and_set("st", "open", expected=None, value="[1]") is True
    assert store.kv_compare_and_set("st", "open", expected=None, value="[9]") is False
    assert store.kv_compare_and_set("st", "open", expected="[2]", value="[9]") is False
    assert store.kv_get("st", "open") == "[1]"  # a refused set changes nothing
    assert store.kv_compare_and_set("st", "open", expected="[1]", value="[1,2]") is True
    assert store.kv_get("st", "open") == "[1,2]"
    assert store.kv_compare_and_set("other", "open", expected=None, value="x") is True

    # An expired value counts as absent, and a TTL given with the set applies.
    assert store.kv_compare_and_set("st", "open", expected="[1,2]", value="t", ttl_seconds=TTL)
    time.sleep(PAST_TTL)
    assert store.kv_get("st", "open") is None
    assert store.kv_compare_and_set("st", "open", expected="t", value="late") is False
    assert store.kv_compare_and_set("st", "open", expected=None, value="again") is True
    time.sleep(PAST_TTL)
    assert store.kv_get("st", "open") == "again"  # set without a TTL: kept


def test_kv_compare_and_set_loses_no_concurrent_update(backend: Backend) -> None:
    # Four threads, each with its own connection, add 25 members each to one JSON list. With a
    # plain get-then-set some additions overwrite others; with compare-and-set all 100 stay.
    def add_members(worker: int) -> None:
        own = backend.open()
        try:
            for n in range(25):
                while True:
                    raw = own.kv_get("st", "members")
                    members = json.loads(raw) if raw else []
                    value = json.dumps([*members, f"{worker}-{n}"])
                    if own.kv_compare_and_set("st", "members", expected=raw, value=value):
                        break
        finally:
            own.close()

    threads = [threading.Thread(target=add_members, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    store = backend.open()
    try:
        members = json.loads(store.kv_get("st", "members") or "[]")
    finally:
        store.close()
    assert sorted(members) == sorted(f"{w}-{n}" for w in range(4) for n in range(25))


def test_incr(store: Store) -> None:
    assert store.incr("quota", "docebo-1") == 1
    assert store.incr("quota", "docebo-1") == 2
    assert store.incr("quota", "docebo-1", 5) == 7
    assert store.incr("quota", "docebo-1", -3) == 4
    assert store.incr("quota", "docebo-2", 10) == 10
    assert store.kv_get("quota", "docebo-1") is None  # counters are not kv entries


# -- outbox ------------------------------------------------------------------------------------


def test_outbox_append_is_idempotent(store: Store) -> None:
    assert store.outbox_append(LRS, [item("a"), item("b"), item("c")], now=T0) == 3
    assert store.outbox_append(LRS, [item("a"), item("b"), item("d")], now=T0) == 1
    assert store.outbox_append(LRS, [item("e"), item("e")], now=T0) == 1
    assert store.outbox_append(LRS, [], now=T0) == 0
    assert store.outbox_stats(LRS, now=T0).ready == 5

    lease = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0)
    assert sorted(ids(lease)) == ["a", "b", "c", "d", "e"]
    # Appending ids that are leased right now must not create a second copy.
    assert store.outbox_append(LRS, [item("a"), item("c")], now=T0) == 0
    assert store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0) is None


def test_grouped_items_lease_by_units_and_count_in_weight(store: Store) -> None:
    # The inbox groups the events of a request into one item "#k#..." (hub.inbox.to_items).
    t = [T0 + timedelta(seconds=n) for n in range(4)]  # one due time each: a fixed order
    for sid, at in [("#3#acme:g1", t[0]), ("s1", t[1]), ("#2#acme:g2", t[2]), ("s2", t[3])]:
        assert store.outbox_append(LRS, [item(sid, at=at)], now=at) == 1
    assert store.outbox_append(LRS, [item("#3#acme:g1", at=t[3])], now=t[3]) == 0  # once only
    now = t[3]
    assert store.outbox_stats(LRS, now=now).weight == 7

    first = store.outbox_lease(LRS, max_items=4, lease_seconds=30, now=now)
    assert ids(first) == ["#3#acme:g1", "s1"]  # 3 + 1 units; "#2#" would make 6
    second = store.outbox_lease(LRS, max_items=1, lease_seconds=30, now=now)
    assert ids(second) == ["#2#acme:g2"]  # the first item is taken even when it outweighs
    stats = store.outbox_stats(LRS, now=now)
    assert (stats.ready, stats.leased, stats.weight) == (1, 3, 7)

    assert first is not None
    assert second is not None
    store.outbox_ack(LRS, first.lease_id, ids(first))
    assert store.outbox_stats(LRS, now=now).weight == 3
    store.outbox_ack(LRS, first.lease_id, ids(first))  # acknowledged again: nothing changes
    assert store.outbox_stats(LRS, now=now).weight == 3
    store.outbox_release(LRS, second.lease_id, ids(second), not_before=now, now=now)
    assert store.outbox_stats(LRS, now=now).weight == 3  # released, still held
    third = store.outbox_lease(LRS, max_items=100, lease_seconds=30, now=now)
    assert ids(third) == ["#2#acme:g2", "s2"]
    assert third is not None
    store.outbox_ack(LRS, third.lease_id, ids(third))
    assert store.outbox_stats(LRS, now=now).weight == 0


@pytest.mark.parametrize(
    ("sid", "weight"),
    [("#7#acme:x", 7), ("#999999#a", 999999), ("#0#a", 1), ("#x#a", 1), ("#12", 1),
     ("acme:#3#", 1), ("5c0f7a6e-2f3b-5c7a-9a0e-0d5e6f7a8b9c", 1)],
)  # fmt: skip
def test_item_weight(sid: str, weight: int) -> None:
    assert item_weight(sid) == weight


def test_outboxes_are_separate_per_lrs(store: Store) -> None:
    assert store.outbox_append("lrs-a", [item("s1")], now=T0) == 1
    assert store.outbox_append("lrs-b", [item("s1")], now=T0) == 1
    assert ids(store.outbox_lease("lrs-a", max_items=5, lease_seconds=30, now=T0)) == ["s1"]
    assert ids(store.outbox_lease("lrs-b", max_items=5, lease_seconds=30, now=T0)) == ["s1"]
    assert store.outbox_lease("lrs-c", max_items=5, lease_seconds=30, now=T0) is None


def test_lease_returns_the_items_unchanged(store: Store) -> None:
    original = OutboxItem(
        statement_id="6f1c1e4e-7a0c-5a3e-9d6c-2b8f0e1d2c3a",
        body=b'{"verb":"caf\xc3\xa9"}\x00\xff',
        instance_id="cornerstone:eu",
        verb="http://adlnet.gov/expapi/verbs/completed",
        enqueued_at=T0,
        received_at=datetime(2030, 1, 2, 3, 4, 0, 123456, tzinfo=UTC),
    )
    store.outbox_append(LRS, [original], now=T0)
    lease = store.outbox_lease(LRS, max_items=1, lease_seconds=30, now=T0)
    assert lease is not None
    assert lease.lrs == LRS
    assert lease.expires_at == T0 + timedelta(seconds=30)
    assert lease.items == [original]
    assert lease.items[0].enqueued_at.tzinfo is UTC


def test_datetimes_come_out_in_utc(store: Store) -> None:
    cest = timezone(timedelta(hours=2))
    local = T0.astimezone(cest)
    store.outbox_append(LRS, [item("a", at=local)], now=local)
    lease = store.outbox_lease(LRS, max_items=1, lease_seconds=30, now=local)
    assert lease is not None
    store.outbox_release(LRS, lease.lease_id, ["a"], not_before=local, error="x", now=local)
    again = store.outbox_lease(LRS, max_items=1, lease_seconds=30, now=local)
    assert again is not None
    got = again.items[0]
    for dt in (again.expires_at, got.enqueued_at, got.received_at, got.first_failure_at):
        assert dt is not None
        assert dt.tzinfo is UTC
    assert got.enqueued_at == T0
    assert got.first_failure_at == T0

    store.dlq_add(letter(first_at=local, last_at=local))
    stored = store.dlq_get(letter().id)
    assert stored is not None
    assert stored.first_at.tzinfo is UTC
    assert stored.last_at == T0
    assert store.outbox_next_due(LRS) == T0 + timedelta(seconds=30)
    oldest = store.outbox_stats(LRS, now=local).oldest_enqueued_at
    assert oldest is not None
    assert oldest.tzinfo is UTC


def test_lease_takes_oldest_first_up_to_n_and_hides_leased_items(store: Store) -> None:
    for n, sid in enumerate(["s3", "s1", "s2"]):  # due order differs from id order
        store.outbox_append(LRS, [item(sid)], now=T0 + timedelta(seconds=n))
    store.outbox_append(LRS, [item("future")], now=T0 + timedelta(hours=1))

    now = T0 + timedelta(seconds=10)
    first = store.outbox_lease(LRS, max_items=2, lease_seconds=30, now=now)
    second = store.outbox_lease(LRS, max_items=2, lease_seconds=30, now=now)
    assert ids(first) == ["s3", "s1"]
    assert ids(second) == ["s2"]
    assert first is not None
    assert second is not None
    assert first.lease_id != second.lease_id
    assert store.outbox_lease(LRS, max_items=2, lease_seconds=30, now=now) is None


def test_lease_of_an_empty_outbox_is_none(store: Store) -> None:
    assert store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0) is None


def test_ack_removes_for_good(store: Store) -> None:
    store.outbox_append(LRS, [item("a"), item("b"), item("c")], now=T0)
    lease = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0)
    assert lease is not None
    store.outbox_ack(LRS, lease.lease_id, ["a", "c"])
    store.outbox_ack(LRS, lease.lease_id, [])

    stats = store.outbox_stats(LRS, now=T0)
    assert (stats.ready, stats.leased) == (0, 1)
    # After the lease expires only the unacknowledged item comes back.
    later = T0 + timedelta(seconds=31)
    assert ids(store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=later)) == ["b"]
    # ... and an acked id may be appended again (a replayed page): it is new again.
    assert store.outbox_append(LRS, [item("a")], now=later) == 1


def test_expired_lease_returns_its_items(store: Store) -> None:
    store.outbox_append(LRS, [item("a"), item("b")], now=T0)
    dead = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0)
    assert dead is not None
    assert (
        store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0 + timedelta(seconds=29))
        is None
    )

    retry = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0 + timedelta(seconds=30))
    assert retry is not None
    assert sorted(ids(retry)) == ["a", "b"]
    assert retry.lease_id != dead.lease_id
    assert all(i.attempts == 0 for i in retry.items)  # a dead worker is not a failed attempt

    # The dead worker's late release must not hand the items out a second time.
    store.outbox_release(
        LRS, dead.lease_id, ["a", "b"], not_before=T0, now=T0 + timedelta(seconds=31)
    )
    assert (
        store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0 + timedelta(seconds=31))
        is None
    )
    # Its late ack still counts: the LRS has the statements.
    store.outbox_ack(LRS, dead.lease_id, ["a"])
    store.outbox_ack(LRS, retry.lease_id, ["a", "b"])
    assert store.outbox_stats(LRS, now=T0 + timedelta(seconds=31)).leased == 0


def test_expired_items_are_due_at_the_requeue_time(store: Store) -> None:
    store.outbox_append(LRS, [item("a"), item("b")], now=T0)
    assert store.outbox_lease(LRS, max_items=2, lease_seconds=1, now=T0) is not None
    requeue_at = T0 + timedelta(seconds=45, microseconds=3)
    assert len(ids(store.outbox_lease(LRS, max_items=1, lease_seconds=30, now=requeue_at))) == 1
    assert store.outbox_next_due(LRS) == requeue_at


def test_release_with_not_before_delays_and_records_the_failure(store: Store) -> None:
    store.outbox_append(LRS, [item("a"), item("b")], now=T0)
    lease = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0)
    assert lease is not None
    retry_at = T0 + timedelta(seconds=60)
    failed_at = T0 + timedelta(seconds=1)
    store.outbox_release(
        LRS, lease.lease_id, ["a"], not_before=retry_at, error="503 from LRS", now=failed_at
    )
    store.outbox_release(
        LRS, lease.lease_id, ["b"], not_before=T0, count_attempt=False, now=failed_at
    )

    b = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=failed_at)
    assert b is not None
    assert b.items[0].statement_id == "b"
    assert (b.items[0].attempts, b.items[0].first_failure_at, b.items[0].last_error) == (
        0,
        None,
        None,
    )
    store.outbox_ack(LRS, b.lease_id, ["b"])

    assert (
        store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=retry_at - timedelta(seconds=1))
        is None
    )
    assert store.outbox_next_due(LRS) == retry_at
    again = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=retry_at)
    assert again is not None
    a = again.items[0]
    assert (a.statement_id, a.attempts, a.first_failure_at, a.last_error) == (
        "a",
        1,
        failed_at,
        "503 from LRS",
    )

    # A second failure counts again but keeps the first failure time.
    second_failure = retry_at + timedelta(seconds=1)
    store.outbox_release(
        LRS, again.lease_id, ["a"], not_before=second_failure, error="timeout", now=second_failure
    )
    third = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=second_failure)
    assert third is not None
    a = third.items[0]
    assert (a.attempts, a.first_failure_at, a.last_error) == (2, failed_at, "timeout")

    # Without an error the last one is kept.
    store.outbox_release(LRS, third.lease_id, ["a"], not_before=second_failure, now=second_failure)
    fourth = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=second_failure)
    assert fourth is not None
    assert (fourth.items[0].attempts, fourth.items[0].last_error) == (3, "timeout")


def test_release_with_a_wrong_lease_id_does_nothing(store: Store) -> None:
    store.outbox_append(LRS, [item("a")], now=T0)
    lease = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0)
    assert lease is not None
    store.outbox_release(LRS, "not-this-lease", ["a"], not_before=T0, now=T0)
    assert store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0) is None
    assert store.outbox_stats(LRS, now=T0).leased == 1


def test_stats(store: Store) -> None:
    empty = store.outbox_stats(LRS, now=T0)
    assert (empty.ready, empty.leased, empty.oldest_enqueued_at) == (0, 0, None)

    oldest = T0 - timedelta(minutes=5, microseconds=7)
    store.outbox_append(LRS, [item("a", at=T0), item("b", at=oldest)], now=T0)
    store.outbox_append(LRS, [item("later", at=T0)], now=T0 + timedelta(hours=1))
    lease = store.outbox_lease(LRS, max_items=1, lease_seconds=30, now=T0)
    assert lease is not None

    stats = store.outbox_stats(LRS, now=T0)
    # `ready` counts every waiting item, due or not; the leased one still counts as oldest.
    assert (stats.ready, stats.leased, stats.oldest_enqueued_at) == (2, 1, oldest)
    past_expiry = store.outbox_stats(LRS, now=T0 + timedelta(seconds=30))
    assert (past_expiry.ready, past_expiry.leased) == (3, 0)


def test_next_due(store: Store) -> None:
    assert store.outbox_next_due(LRS) is None
    store.outbox_append(LRS, [item("later")], now=T0 + timedelta(seconds=90))
    store.outbox_append(LRS, [item("soon")], now=T0 + timedelta(seconds=10))
    assert store.outbox_next_due(LRS) == T0 + timedelta(seconds=10)

    lease = store.outbox_lease(LRS, max_items=10, lease_seconds=30, now=T0 + timedelta(seconds=10))
    assert ids(lease) == ["soon"]
    assert store.outbox_next_due(LRS) == T0 + timedelta(seconds=40)  # lease expiry comes first
    assert lease is not None
    store.outbox_ack(LRS, lease.lease_id, ["soon"])
    assert store.outbox_next_due(LRS) == T0 + timedelta(seconds=90)


def test_outbox_rejects_naive_datetimes(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.outbox_append(LRS, [item("a")], now=datetime(2030, 1, 1))  # noqa: DTZ001


def test_outbox_batches_beyond_one_lua_chunk(store: Store) -> None:
    # More than the Lua unpack chunk (1000) in one call: exercises the chunking paths.
    items = [item(f"s{n:05d}") for n in range(2500)]
    assert store.outbox_append(LRS, items, now=T0) == 2500
    lease = store.outbox_lease(LRS, max_items=2200, lease_seconds=30, now=T0)
    assert lease is not None
    assert len(lease.items) == 2200
    expired = T0 + timedelta(seconds=30)
    lease2 = store.outbox_lease(LRS, max_items=3000, lease_seconds=30, now=expired)
    assert lease2 is not None
    assert len(lease2.items) == 2500
    store.outbox_ack(LRS, lease2.lease_id, [i.statement_id for i in lease2.items])
    stats = store.outbox_stats(LRS, now=expired)
    assert (stats.ready, stats.leased, stats.oldest_enqueued_at) == (0, 0, None)


# -- dead letters ------------------------------------------------------------------------------


def test_dlq_add_get_and_update(store: Store) -> None:
    first = letter()
    store.dlq_add(first)
    assert store.dlq_get(first.id) == first
    assert store.dlq_get("missing") is None

    later = T0 + timedelta(hours=1)
    store.dlq_add(
        letter(
            attempts=2,
            first_at=later,
            last_at=later,
            detail="409 conflict",
            body=None,
            envelope=None,
            stored_version=b"theirs",
        )
    )
    updated = store.dlq_get(first.id)
    assert updated is not None
    assert updated.attempts == 3
    assert (updated.first_at, updated.last_at) == (T0, later)
    assert updated.detail == "409 conflict"
    assert updated.body == first.body  # kept: the new letter had none
    assert updated.envelope == first.envelope
    assert updated.stored_version == b"theirs"


def test_dlq_list_filters_newest_first(store: Store) -> None:
    letters = [
        letter("a", last_at=T0 + timedelta(minutes=1)),
        letter("b", last_at=T0 + timedelta(minutes=3), stage="normalize", lrs=None),
        letter("c", last_at=T0 + timedelta(minutes=2), reason="conflict"),
        letter("d", last_at=T0 + timedelta(minutes=4), lrs="lrs-other", instance_id="yt-1"),
    ]
    for lt in letters:
        store.dlq_add(lt)

    def listed(**f: object) -> list[str]:
        return [lt.id for lt in store.dlq_list(DeadLetterFilter.model_validate(f))]

    assert listed() == ["d", "b", "c", "a"]
    assert listed(limit=2) == ["d", "b"]
    assert listed(limit=0) == []
    assert listed(stage="deliver") == ["d", "c", "a"]
    assert listed(lrs=LRS) == ["c", "a"]
    assert listed(instance_id="yt-1") == ["d"]
    assert listed(reason="conflict") == ["c"]
    # since inclusive, until exclusive, on last_at
    assert listed(since=T0 + timedelta(minutes=2)) == ["d", "b", "c"]
    assert listed(until=T0 + timedelta(minutes=3)) == ["c", "a"]
    assert listed(stage="deliver", since=T0 + timedelta(minutes=2), limit=1) == ["d"]
    assert store.dlq_list(DeadLetterFilter(limit=1))[0] == letters[3]


def test_dlq_list_breaks_ties_by_id_descending(store: Store) -> None:
    for lid in ["m", "z", "a"]:
        store.dlq_add(letter(lid))
    assert [lt.id for lt in store.dlq_list(DeadLetterFilter())] == ["z", "m", "a"]


def test_dlq_count_and_delete(store: Store) -> None:
    store.dlq_add(letter("a"))
    store.dlq_add(letter("b", stage="normalize", lrs=None))
    store.dlq_add(letter("c", lrs="lrs-other"))
    assert store.dlq_count() == 3
    assert store.dlq_count(lrs=LRS) == 1
    assert store.dlq_count(stage="deliver") == 2
    assert store.dlq_count(stage="deliver", lrs="lrs-other") == 1

    assert store.dlq_delete(["a", "c", "missing"]) == 2
    assert store.dlq_delete([]) == 0
    assert store.dlq_count() == 1
    assert [lt.id for lt in store.dlq_list(DeadLetterFilter())] == ["b"]


# -- several processes -------------------------------------------------------------------------


def drain_outbox(
    backend: Backend, lrs: str, batch: int, results: multiprocessing.Queue[object]
) -> None:
    """Child process: lease and ack until the outbox is empty; report every acked id."""
    store = backend.open()
    try:
        while True:
            now = datetime.now(UTC)
            lease = store.outbox_lease(lrs, max_items=batch, lease_seconds=300, now=now)
            if lease is None:
                stats = store.outbox_stats(lrs, now=now)
                if stats.ready == 0 and stats.leased == 0:
                    return
                time.sleep(0.005)  # another worker holds the rest; wait for its ack
                continue
            acked = [i.statement_id for i in lease.items]
            store.outbox_ack(lrs, lease.lease_id, acked)
            results.put(acked)
    finally:
        store.close()
        results.put(None)  # done marker


def test_four_processes_deliver_every_item_exactly_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children unpickle `drain_outbox` by importing this module under the name pytest
    # gave it (``tests.hub.store.test_contract`` in importlib mode); they inherit our sys.path,
    # so make sure the directory that name is relative to is on it, however pytest was started.
    monkeypatch.syspath_prepend(str(Path(__file__).parents[__name__.count(".")]))
    store = backend.open()
    expected = [f"stmt-{n:04d}" for n in range(500)]
    now = datetime.now(UTC)
    for start in range(0, len(expected), 100):
        store.outbox_append(LRS, [item(s, at=now) for s in expected[start : start + 100]], now=now)
    store.close()

    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[object] = ctx.Queue()
    workers = [
        ctx.Process(target=drain_outbox, args=(backend, LRS, batch, results))
        for batch in (1, 7, 13, 25)
    ]
    for w in workers:
        w.start()
    acked: list[str] = []
    done = 0
    try:
        while done < len(workers):
            got = results.get(timeout=60)
            if got is None:
                done += 1
            else:
                assert isinstance(got, list)
                acked.extend(got)
    except queue.Empty:
        pytest.fail(f"workers stalled after {len(acked)} items")
    finally:
        for w in workers:
            w.join(timeout=30)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert len(acked) == len(set(acked)), "an item was delivered twice"
    assert sorted(acked) == expected, "an item was lost"
