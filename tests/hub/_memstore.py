"""A minimal in-memory `Store` for delivery tests (hub/store/memory.py does not exist).

It follows the outbox semantics documented in `hub.store.base`: idempotent append by statement
id, leases of due items oldest first, expired leases returning their items, attempts and
first_failure_at kept on counted releases, dead letters updated in place by id.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub.store.base import (
    DeadLetter,
    DeadLetterFilter,
    Lease,
    OutboxItem,
    OutboxStats,
    item_weight,
    units_prefix,
)
from hub.testing import MemoryDedupeStore


@dataclass
class _Waiting:
    item: OutboxItem
    not_before: datetime
    lease_id: str | None = None
    lease_expires: datetime | None = None


@dataclass
class MemoryStore(MemoryDedupeStore):  # mark_seen / mark_seen_many / unmark_seen
    outboxes: dict[str, dict[str, _Waiting]] = field(default_factory=dict)
    dead: dict[str, DeadLetter] = field(default_factory=dict)
    kv: dict[tuple[str, str], str] = field(default_factory=dict)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    locks: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # -- health ---------------------------------------------------------------------------------
    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass

    # -- cursors and locks ------------------------------------------------------------------------
    def get_cursor(self, instance_id: str) -> str | None:
        return self.cursors.get(instance_id)

    def set_cursor(self, instance_id: str, value: str) -> None:
        self.cursors[instance_id] = value

    def delete_cursor(self, instance_id: str) -> None:
        self.cursors.pop(instance_id, None)

    def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool:
        if name in self.locks:
            return self.locks[name] == owner
        self.locks[name] = owner
        return True

    def refresh_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool:
        return self.locks.get(name) == owner

    def release_lock(self, name: str, *, owner: str) -> None:
        if self.locks.get(name) == owner:
            del self.locks[name]

    # -- small state ------------------------------------------------------------------------------
    def kv_get(self, namespace: str, key: str) -> str | None:
        return self.kv.get((namespace, key))

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None:
        self.kv[(namespace, key)] = value

    def kv_delete(self, namespace: str, key: str) -> None:
        self.kv.pop((namespace, key), None)

    def kv_compare_and_set(
        self,
        namespace: str,
        key: str,
        *,
        expected: str | None,
        value: str,
        ttl_seconds: float | None = None,
    ) -> bool:
        if self.kv.get((namespace, key)) != expected:
            return False
        self.kv[(namespace, key)] = value
        return True

    def kv_items(self, namespace: str) -> list[tuple[str, str]]:
        return [(k, v) for (ns, k), v in self.kv.items() if ns == namespace]

    def incr(self, namespace: str, key: str, amount: int = 1) -> int:
        value = self.counters.get((namespace, key), 0) + amount
        self.counters[(namespace, key)] = value
        return value

    # -- outboxes ---------------------------------------------------------------------------------
    def _box(self, lrs: str) -> dict[str, _Waiting]:
        return self.outboxes.setdefault(lrs, {})

    def _expire(self, lrs: str, now: datetime) -> None:
        for waiting in self._box(lrs).values():
            if waiting.lease_expires is not None and waiting.lease_expires <= now:
                waiting.lease_id = None
                waiting.lease_expires = None

    def outbox_append(self, lrs: str, items: Sequence[OutboxItem], *, now: datetime) -> int:
        box = self._box(lrs)
        new = 0
        for item in items:
            if item.statement_id not in box:
                box[item.statement_id] = _Waiting(item=item, not_before=now)
                new += 1
        return new

    def outbox_lease(
        self, lrs: str, *, max_items: int, lease_seconds: float, now: datetime
    ) -> Lease | None:
        self._expire(lrs, now)
        ordered = sorted(
            (w for w in self._box(lrs).values() if w.lease_id is None and w.not_before <= now),
            key=lambda w: (w.item.enqueued_at, w.item.statement_id),
        )
        due = ordered[: units_prefix([w.item.statement_id for w in ordered], max_items)]
        if not due:
            return None
        lease_id = f"lease-{next(self._ids)}"
        expires = now + timedelta(seconds=lease_seconds)
        for waiting in due:
            waiting.lease_id = lease_id
            waiting.lease_expires = expires
        return Lease(lease_id=lease_id, lrs=lrs, items=[w.item for w in due], expires_at=expires)

    def _leased(self, lrs: str, lease_id: str, statement_ids: Sequence[str]) -> list[_Waiting]:
        box = self._box(lrs)
        return [box[sid] for sid in statement_ids if sid in box and box[sid].lease_id == lease_id]

    def outbox_ack(self, lrs: str, lease_id: str, statement_ids: Sequence[str]) -> None:
        box = self._box(lrs)
        for waiting in self._leased(lrs, lease_id, statement_ids):
            del box[waiting.item.statement_id]

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
        for waiting in self._leased(lrs, lease_id, statement_ids):
            item = waiting.item
            if count_attempt:
                item = item.model_copy(
                    update={
                        "attempts": item.attempts + 1,
                        "first_failure_at": item.first_failure_at or now,
                        "last_error": error,
                    }
                )
            elif error is not None:
                item = item.model_copy(update={"last_error": error})
            waiting.item = item
            waiting.not_before = not_before
            waiting.lease_id = None
            waiting.lease_expires = None

    def outbox_stats(self, lrs: str, *, now: datetime) -> OutboxStats:
        self._expire(lrs, now)
        box = self._box(lrs).values()
        leased = sum(1 for w in box if w.lease_id is not None)
        oldest = min((w.item.enqueued_at for w in box), default=None)
        weight = sum(item_weight(w.item.statement_id) for w in box)
        return OutboxStats(
            ready=len(box) - leased, leased=leased, oldest_enqueued_at=oldest, weight=weight
        )

    def outbox_next_due(self, lrs: str) -> datetime | None:
        return min(
            (w.not_before for w in self._box(lrs).values() if w.lease_id is None), default=None
        )

    # -- dead letters -----------------------------------------------------------------------------
    def dlq_add(self, letter: DeadLetter) -> None:
        old = self.dead.get(letter.id)
        if old is not None:
            letter = letter.model_copy(update={"first_at": old.first_at})
        self.dead[letter.id] = letter

    def dlq_list(self, flt: DeadLetterFilter) -> list[DeadLetter]:
        found = [
            d
            for d in self.dead.values()
            if (flt.stage is None or d.stage == flt.stage)
            and (flt.lrs is None or d.lrs == flt.lrs)
            and (flt.instance_id is None or d.instance_id == flt.instance_id)
            and (flt.reason is None or d.reason == flt.reason)
            and (flt.since is None or d.last_at >= flt.since)
            and (flt.until is None or d.last_at < flt.until)
        ]
        found.sort(key=lambda d: d.last_at, reverse=True)
        return found[: flt.limit] if flt.limit is not None else found

    def dlq_get(self, letter_id: str) -> DeadLetter | None:
        return self.dead.get(letter_id)

    def dlq_delete(self, letter_ids: Sequence[str]) -> int:
        return sum(1 for i in letter_ids if self.dead.pop(i, None) is not None)

    def dlq_count(self, *, lrs: str | None = None, stage: str | None = None) -> int:
        return sum(
            1
            for d in self.dead.values()
            if (lrs is None or d.lrs == lrs) and (stage is None or d.stage == stage)
        )

    # -- test helpers -----------------------------------------------------------------------------
    def waiting(self, lrs: str) -> dict[str, _Waiting]:
        return self._box(lrs)
