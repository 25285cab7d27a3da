"""The ingest inbox's items: events of one request or page grouped, read back line by line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.clock import FrozenClock
from hub.events import SourceEvent
from hub.inbox import GROUP_SIZE, INBOX, StoreInbox, from_item, item_id, read_item, to_items
from hub.pipeline import NormalizeReport, drain_inbox
from hub.store.base import DeadLetterFilter, OutboxItem, item_weight
from hub.store.sqlite import SqliteStore

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def ev(n: int, instance: str = "acme") -> SourceEvent:
    return SourceEvent(
        instance_id=instance,
        event_type="session.completed",
        payload={"id": n, "text": "line\nbreak"},  # a newline inside a value stays escaped
        delivery_id=f"d{n}",
        received_at=T0,
    )


def test_one_event_is_one_item_as_before() -> None:
    (item,) = to_items([ev(1)], now=T0)
    assert item.statement_id == "acme:d1" == item_id(ev(1))
    assert item.body == ev(1).model_dump_json().encode()
    assert from_item(item) == [ev(1)]


def test_runs_of_one_instance_are_grouped_up_to_the_group_size() -> None:
    events = [ev(n) for n in range(GROUP_SIZE + 3)] + [ev(900, "other")] + [ev(901)]
    items = to_items(events, now=T0)
    assert [item_weight(i.statement_id) for i in items] == [GROUP_SIZE, 3, 1, 1]
    assert [i.instance_id for i in items] == ["acme", "acme", "other", "acme"]
    assert [e for i in items for e in from_item(i)] == events  # all of them, in order
    assert items[0].statement_id.startswith(f"#{GROUP_SIZE}#acme:")
    # The same events give the same ids (the same request enqueued twice is one item) ...
    assert [i.statement_id for i in to_items(events, now=T0)] == [i.statement_id for i in items]
    # ... and other events other ids.
    assert to_items([ev(1), ev(2)], now=T0)[0].statement_id != items[1].statement_id


def test_a_bad_line_is_reported_and_the_rest_read() -> None:
    (item,) = to_items([ev(1), ev(2), ev(3)], now=T0)
    lines = item.body.split(b"\n")
    broken = item.model_copy(
        update={"body": b"\n".join([lines[0], b'{"not": "an event"}', lines[2]])}
    )
    events, bad = read_item(broken)
    assert events == [ev(1), ev(3)]
    assert [(b.number, b.raw) for b in bad] == [(2, b'{"not": "an event"}')]
    with pytest.raises(ValueError, match="envelope 2 of #3#"):
        from_item(broken)


def test_attempts_of_the_item_apply_to_every_event() -> None:
    (item,) = to_items([ev(1), ev(2)], now=T0)
    events = from_item(item.model_copy(update={"attempts": 2}))
    assert [e.attempt for e in events] == [2, 2]


def test_drain_takes_up_to_max_items_events_and_dead_letters_only_the_bad_line(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.sqlite")
    clock = FrozenClock(T0)
    StoreInbox(store, clock=clock).enqueue([ev(n) for n in range(5)])
    StoreInbox(store, clock=clock).enqueue([ev(n) for n in range(10, 13)])
    assert store.outbox_stats(INBOX, now=T0).weight == 8
    # Corrupt the second line of the first group, as an incompatible version might have written.
    lease = store.outbox_lease(INBOX, max_items=100, lease_seconds=1, now=T0)
    assert lease is not None
    first = next(i for i in lease.items if item_weight(i.statement_id) == 5)
    lines = first.body.split(b"\n")
    lines[1] = b"{}"
    store.outbox_ack(INBOX, lease.lease_id, [i.statement_id for i in lease.items])
    store.outbox_append(INBOX, [first.model_copy(update={"body": b"\n".join(lines)})], now=T0)
    StoreInbox(store, clock=clock).enqueue([ev(n) for n in range(10, 13)])

    seen: list[list[int]] = []

    def normalize(events: Sequence[SourceEvent]) -> NormalizeReport:
        seen.append([e.payload["id"] for e in events])  # type: ignore[call-overload,index]
        return NormalizeReport(events=len(events))

    report = drain_inbox(store=store, clock=clock, normalize_batch=normalize,
                         max_items=6, backoff=lambda attempt: 1.0)  # fmt: skip
    assert seen == [[0, 2, 3, 4]]  # the 5-event group only: with the 3-event one it would be 8
    assert (report.leased, report.more_waiting, report.dead_lettered) == (5, False, 1)
    (letter,) = store.dlq_list(DeadLetterFilter())
    assert letter.id == f"ingest:{first.statement_id}:2"
    assert letter.reason == "bad_envelope"
    assert letter.body == b"{}"
    report = drain_inbox(store=store, clock=clock, normalize_batch=normalize,
                         max_items=6, backoff=lambda attempt: 1.0)  # fmt: skip
    assert seen[-1] == [10, 11, 12]
    assert store.outbox_stats(INBOX, now=T0).weight == 0
    store.close()


def test_item_ids_never_look_weighted() -> None:
    # Single-event ids start with the instance id, a slug: never "#".
    assert item_weight(item_id(ev(1))) == 1
    assert item_weight(OutboxItem(statement_id="acme:#9#x", body=b"", instance_id="acme", verb="v",
                                  enqueued_at=T0).statement_id) == 1  # fmt: skip
