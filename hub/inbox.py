"""The ingest queue: raw events held durably in the hub's store until normalized.

Design choice: Celery messages carry only names ("drain the inbox", "deliver to LRS x"); the data
itself lives in the store with lease semantics (the same outbox mechanics the LRS delivery uses).
Why: the delivery guarantee must hold on both backends. On Redis, Celery's unacknowledged
messages come back only after the visibility timeout; on the embedded SQLite default, kombu's
SQLAlchemy transport keeps delivered-but-unacknowledged messages invisible forever when a worker
is killed. A lease in the store returns to the queue after `lease_seconds` on both, and
appending is idempotent by envelope id, which also collapses duplicate deliveries.

A kick (a Celery task) is sent after appending so work starts at once; if the broker is down the
kick is skipped, the events are still safe, and the scheduler's periodic flush drains them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from hub.clock import Clock
from hub.events import SourceEvent
from hub.pipeline import envelope_id
from hub.queue import QueueUnavailable
from hub.store.base import Lease, OutboxItem, Store

logger = logging.getLogger(__name__)

INBOX = "_ingest"
"""The outbox name the inbox uses; LRS names are slugs and can never start with '_'."""


def item_id(event: SourceEvent) -> str:
    if event.delivery_id:
        return f"{event.instance_id}:{event.delivery_id}"
    return f"{event.instance_id}:h:{envelope_id(event)}"


def to_item(event: SourceEvent, *, now: datetime) -> OutboxItem:
    return OutboxItem(
        statement_id=item_id(event),
        body=event.model_dump_json().encode(),
        instance_id=event.instance_id,
        verb=event.event_type,
        enqueued_at=now,
        received_at=event.received_at,
    )


def from_item(item: OutboxItem) -> SourceEvent:
    event = SourceEvent.model_validate_json(item.body)
    return event.model_copy(update={"attempt": item.attempts}) if item.attempts else event


class StoreInbox:
    """An `Enqueuer` that appends to the store's inbox, then kicks a normalizer."""

    def __init__(
        self, store: Store, *, clock: Clock, kick: Callable[[], None] | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.kick = kick

    def enqueue(self, events: Sequence[SourceEvent]) -> None:
        if not events:
            return
        now = self.clock.now()
        try:
            self.store.outbox_append(INBOX, [to_item(e, now=now) for e in events], now=now)
        except Exception as exc:  # any store failure means "not held": the caller must not ack
            raise QueueUnavailable(f"the hub's store did not take the events: {exc}") from exc
        if self.kick is not None:
            try:
                self.kick()
            except Exception as exc:  # the periodic flush will drain the inbox
                logger.warning("could not signal the normalizer (%s); the flush will", exc)

    def ping(self) -> bool:
        try:
            return self.store.ping()
        except Exception:
            return False

    def lease(self, *, max_items: int, lease_seconds: float) -> Lease | None:
        return self.store.outbox_lease(
            INBOX, max_items=max_items, lease_seconds=lease_seconds, now=self.clock.now()
        )
