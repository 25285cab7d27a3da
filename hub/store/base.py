"""The hub's state behind one small interface, with a Redis and a SQLite implementation.

What lives here: poll cursors and locks, inbound de-duplication keys (with TTL), small per-instance
state (identity cache, sessions, snapshots), the per-LRS outboxes, the dead letters, and
component health. The Celery broker is NOT here (kombu owns it).

Outbox semantics (the delivery guarantee rests on them):

* `outbox_append` is idempotent by (lrs, statement_id): appending an id already waiting keeps one
  copy, so a replayed page or a duplicate normalize never sends twice.
* `outbox_lease` atomically moves up to N *due* items (not_before <= now) into a lease that expires
  at now + lease_seconds. Leased items are invisible to other leases. An expired lease (its worker
  died) returns its items to the ready set on the next lease call: nothing is lost.
* `outbox_ack` removes items for good; only call it after the LRS confirmed them.
* `outbox_release` puts leased items back, optionally not before a time (retry backoff), counting
  an attempt when asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue


class OutboxItem(BaseModel):
    """One canonical statement waiting for one LRS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statement_id: str
    body: bytes = Field(description="canonical bytes, sent unchanged on every attempt")
    instance_id: str
    verb: str
    enqueued_at: AwareDatetime
    received_at: AwareDatetime | None = Field(
        default=None, description="when the source event reached the hub (latency metric)"
    )
    attempts: int = 0
    first_failure_at: AwareDatetime | None = None
    last_error: str | None = None


class Lease(BaseModel):
    """Items taken by one delivery attempt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lease_id: str
    lrs: str
    items: list[OutboxItem]
    expires_at: AwareDatetime


class OutboxStats(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ready: int
    leased: int
    oldest_enqueued_at: AwareDatetime | None
    weight: int = Field(
        description="the items' weights summed over ready and leased (see `item_weight`): "
        "for the inbox, the raw events held; for an LRS outbox, ready + leased"
    )


_WEIGHTED_ID = re.compile(r"#([1-9][0-9]{0,5})#")


def item_weight(statement_id: str) -> int:
    """How many units an outbox item holds: ``k`` for an id ``#k#...``, else 1.

    The inbox holds one item per webhook request or poll page of up to `hub.inbox.GROUP_SIZE`
    raw events (one store write and one lease entry for all of them, instead of one each), and
    names it ``#k#...`` so the stores can count events without reading bodies: a lease's
    `max_items` and `OutboxStats.weight` count units. Statement ids (UUIDs) and single-event
    inbox ids (``instance:delivery``; instance ids are slugs) never start with ``#``.
    """
    if not statement_id.startswith("#"):
        return 1
    found = _WEIGHTED_ID.match(statement_id)
    return int(found.group(1)) if found else 1


def units_prefix(statement_ids: Sequence[str], most: int) -> int:
    """How many of the leading items fit in `most` units of weight (the first always): the
    cut every store's `outbox_lease` makes (Redis does the same in its lease script)."""
    taken = units = 0
    for statement_id in statement_ids:
        weight = item_weight(statement_id)
        if taken and units + weight > most:
            break
        taken += 1
        units += weight
    return taken


class DeadLetter(BaseModel):
    """Something that could not go further, kept with everything needed to replay it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="stable id: stage, lrs and statement id or envelope hash")
    stage: str = Field(description="ingest | normalize | deliver | identity")
    lrs: str | None = None
    instance_id: str | None = None
    statement_id: str | None = None
    reason: str = Field(description="short machine-readable cause, e.g. lrs_rejected, conflict")
    detail: str = Field(description="human-readable cause, e.g. the LRS's message")
    attempts: int = 1
    first_at: AwareDatetime
    last_at: AwareDatetime
    body: bytes | None = Field(default=None, description="original statement bytes")
    envelope: JsonValue = Field(default=None, description="original raw event envelope")
    stored_version: bytes | None = Field(
        default=None, description="for conflicts: what the LRS holds under that id"
    )


class DeadLetterFilter(BaseModel):
    """All given fields must match; `since` (inclusive) and `until` (exclusive) bound `last_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str | None = None
    lrs: str | None = None
    instance_id: str | None = None
    reason: str | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int | None = None


@runtime_checkable
class Store(Protocol):
    """The hub's state. Implementations: `RedisStore`, `SqliteStore`."""

    # -- health of the backing service -------------------------------------------------------
    def ping(self) -> bool: ...

    def close(self) -> None: ...

    # -- cursors and locks ---------------------------------------------------------------------
    def get_cursor(self, instance_id: str) -> str | None: ...

    def set_cursor(self, instance_id: str, value: str) -> None: ...

    def delete_cursor(self, instance_id: str) -> None: ...

    def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool:
        """SET NX PX: True when `owner` now holds the lock."""
        ...

    def refresh_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool: ...

    def release_lock(self, name: str, *, owner: str) -> None:
        """Release only if `owner` still holds it."""
        ...

    # -- de-duplication and small state -------------------------------------------------------
    def mark_seen(self, namespace: str, key: str, *, ttl_seconds: float) -> bool:
        """SET NX EX: True the first time (key, namespace) is seen within the TTL.

        TTLs (here, in locks and in kv) run on the backend's real clock; sub-second TTLs work.
        """
        ...

    def mark_seen_many(
        self, namespace: str, keys: Sequence[str], *, ttl_seconds: float
    ) -> list[bool]:
        """`mark_seen` for each key, in one round trip and all-or-nothing; a key repeated in
        `keys` is True only the first time. (The receiver marks a whole request at once: one
        round trip per event was most of its time.)"""
        ...

    def unmark_seen(self, namespace: str, key: str) -> None:
        """Undo `mark_seen` when the following step (enqueue) failed."""
        ...

    def kv_get(self, namespace: str, key: str) -> str | None: ...

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None: ...

    def kv_delete(self, namespace: str, key: str) -> None: ...

    def kv_compare_and_set(
        self,
        namespace: str,
        key: str,
        *,
        expected: str | None,
        value: str,
        ttl_seconds: float | None = None,
    ) -> bool:
        """Set `value` only if the key still holds `expected` (None: absent or expired), in one
        atomic step; False when another writer changed it first (read again and retry).

        For read-modify-write state that several workers update at once (a connector's index of
        open sessions): a plain get-then-set would let one writer's change overwrite another's.
        """
        ...

    def kv_items(self, namespace: str) -> list[tuple[str, str]]:
        """All live keys of a namespace (status page, quarantine)."""
        ...

    def incr(self, namespace: str, key: str, amount: int = 1) -> int:
        """A persistent counter (quota use, metrics that must survive restarts)."""
        ...

    # -- outboxes ------------------------------------------------------------------------------
    def outbox_append(self, lrs: str, items: Sequence[OutboxItem], *, now: datetime) -> int:
        """Add items due at `now`; returns how many were new."""
        ...

    def outbox_lease(
        self, lrs: str, *, max_items: int, lease_seconds: float, now: datetime
    ) -> Lease | None:
        """Take due items, oldest first, up to `max_items` units; None when nothing is due.

        Units are `item_weight`s: 1 per item, except the inbox's grouped items. The first item
        is always taken, even when it alone weighs more. Oldest = earliest due time; items due
        at the same instant come in no promised order.
        """
        ...

    def outbox_ack(self, lrs: str, lease_id: str, statement_ids: Sequence[str]) -> None:
        """Remove the ids whatever their state: even after the lease expired (and the items went
        back to ready or to another lease), the LRS has confirmed them."""
        ...

    def outbox_release(
        self,
        lrs: str,
        lease_id: str,
        statement_ids: Sequence[str],
        *,
        not_before: datetime,
        error: str | None = None,
        count_attempt: bool = True,
        now: datetime,
    ) -> None:
        """Only ids still held by `lease_id` move (after an expiry another lease may hold them).

        A release that counts an attempt or carries an error is a failure: `first_failure_at`
        is set to `now` the first time only; `last_error` is replaced only when `error` is given.
        """
        ...

    def outbox_stats(self, lrs: str, *, now: datetime) -> OutboxStats:
        """`ready`: every waiting item, due or not, including those of leases expired at `now`;
        `leased`: items of live leases; `oldest_enqueued_at`: over all undelivered items;
        `weight`: the units (`item_weight`) of all of them."""
        ...

    def outbox_next_due(self, lrs: str) -> datetime | None:
        """When the earliest waiting item becomes due (None: empty).

        A leased item counts as due at its lease's expiry, so a scheduler that trusts this value
        still comes back for the items of a worker that died.
        """
        ...

    # -- dead letters --------------------------------------------------------------------------
    def dlq_add(self, letter: DeadLetter) -> None:
        """Add, or on the same id update attempts/last_at/detail.

        On an existing id: attempts add up, `first_at` keeps the earliest, `last_at` the latest;
        stage, reason and detail come from the new letter; lrs, instance_id, statement_id, body,
        envelope and stored_version keep their old value when the new letter has None.
        """
        ...

    def dlq_list(self, flt: DeadLetterFilter) -> list[DeadLetter]:
        """Newest first."""
        ...

    def dlq_get(self, letter_id: str) -> DeadLetter | None: ...

    def dlq_delete(self, letter_ids: Sequence[str]) -> int: ...

    def dlq_count(self, *, lrs: str | None = None, stage: str | None = None) -> int: ...
