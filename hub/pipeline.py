"""The plain functions the Celery tasks call: poll one page, normalize raw events.

Nothing here knows Celery. Each function takes its collaborators explicitly (store, enqueuer,
clock, the bound connector instances), so the same code runs in a worker, in `lxhub backfill`,
in the demo and in tests.

Ordering rules that make the delivery guarantee hold:
* poll: events are enqueued (durably) BEFORE the cursor is saved; a crash in between replays a
  page, and deterministic statement ids make the replay harmless.
* normalize: statements are appended to every routed outbox, and failures are dead-lettered,
  BEFORE the task returns (and so before Celery acknowledges the message: acks_late).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from hub import health
from hub.clock import Clock
from hub.connector import Connector, Polling
from hub.errors import (
    HubError,
    MaintenanceIncomplete,
    MappingError,
    TransientError,
    UnresolvedActor,
)
from hub.events import SourceEvent, not_of_instance
from hub.mapping import ActorResolver, MappingContext, Unmapped
from hub.queue import Enqueuer
from hub.store.base import DeadLetter, OutboxItem, Store, item_weight
from hub.xapi import Statement, StatementJson, statement_verb_id
from hub.xapi.serialize import canonical_bytes
from hub.xapi.validation import StatementInvalid

logger = logging.getLogger(__name__)

XapiVersion = Literal["1.0.3", "2.0.0"]


@dataclass(frozen=True)
class Destination:
    """An LRS as the normalizer sees it: its name, version and routing filters."""

    name: str
    xapi_version: XapiVersion = "1.0.3"
    instances: frozenset[str] | None = None
    verbs: frozenset[str] | None = None

    def accepts(self, instance_id: str, verb_iri: str) -> bool:
        if self.instances is not None and instance_id not in self.instances:
            return False
        if self.verbs is None:
            return True
        # Admins may name a verb by IRI or by its last path segment ("completed").
        short = verb_iri.rstrip("/").rsplit("/", 1)[-1]
        return verb_iri in self.verbs or short in self.verbs


class BoundInstance(Protocol):
    """A configured, instantiated connector: what the pipeline needs of an instance."""

    @property
    def instance_id(self) -> str: ...

    @property
    def connector(self) -> Connector[Any]: ...

    @property
    def lrs(self) -> frozenset[str] | None:
        """Names of the destinations this instance routes to (None: all)."""
        ...


def mapping_context(
    bound: BoundInstance, event: SourceEvent, *, base_iri: str, actors: ActorResolver
) -> MappingContext:
    return MappingContext.for_connector(
        bound.connector, event, base_iri=base_iri, actors=actors, instance_id=bound.instance_id
    )


def envelope_id(event: SourceEvent) -> str:
    """A stable id for a raw envelope (dead letters of the same event collapse into one)."""
    raw = json.dumps(
        event.model_dump(mode="json", exclude={"received_at", "attempt", "via"}),
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass
class NormalizeReport:
    events: int = 0
    statements: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    appended: dict[str, int] = field(default_factory=dict)
    """New outbox items per LRS (duplicates of waiting items are not counted)."""
    produced: dict[str, int] = field(default_factory=dict)
    """Statements routed per LRS."""


def _dead_letter(
    store: Store,
    event: SourceEvent,
    *,
    stage: str,
    reason: str,
    detail: str,
    now: datetime,
    report: NormalizeReport,
) -> None:
    logger.warning(
        "dead-lettered %s event: %s",
        event.event_type,
        reason,
        extra={"instance": event.instance_id, "reason": reason},
    )
    store.dlq_add(
        DeadLetter(
            id=f"{stage}:{event.instance_id}:{envelope_id(event)}",
            stage=stage,
            instance_id=event.instance_id,
            reason=reason,
            detail=detail[:2000],
            attempts=event.attempt + 1,
            first_at=now,
            last_at=now,
            envelope=event.model_dump(mode="json"),
        )
    )
    report.dead_lettered[reason] = report.dead_lettered.get(reason, 0) + 1


def normalize(
    events: Sequence[SourceEvent],
    *,
    instances: Callable[[str], BoundInstance | None],
    destinations: Sequence[Destination],
    store: Store,
    clock: Clock,
    base_iri: str,
    actors: ActorResolver,
) -> NormalizeReport:
    """Map raw events to statements and append their canonical bytes to each routed outbox.

    Raises TransientError (e.g. a user-API lookup failed) so the caller retries the whole batch;
    everything else that goes wrong with one event is dead-lettered with its reason, and the
    other events go on.
    """
    report = NormalizeReport(events=len(events))
    now = clock.now()
    batches: dict[str, list[OutboxItem]] = defaultdict(list)
    contexts: dict[str, MappingContext] = {}  # per instance: its facts are read once a batch
    for event in events:
        bound = instances(event.instance_id)
        if bound is None:
            _dead_letter(
                store,
                event,
                stage="normalize",
                reason="unknown_instance",
                detail=f"no enabled connector instance {event.instance_id!r}; enable it, then "
                "replay with `lxhub dlq replay`",
                now=now,
                report=report,
            )
            continue
        known = contexts.get(event.instance_id)
        if known is None:
            ctx = contexts[event.instance_id] = mapping_context(
                bound, event, base_iri=base_iri, actors=actors
            )
        else:
            ctx = replace(known, event=event)
        try:
            result = bound.connector.map(event, ctx)
        except TransientError:
            raise
        except UnresolvedActor as exc:
            _dead_letter(
                store,
                event,
                stage="identity",
                reason="unresolved_actor",
                detail=f"{exc}; add the person to the identity map, then replay",
                now=now,
                report=report,
            )
            continue
        except MappingError as exc:
            _dead_letter(
                store,
                event,
                stage="normalize",
                reason="mapping_failed",
                detail=str(exc),
                now=now,
                report=report,
            )
            continue
        except HubError as exc:
            _dead_letter(
                store,
                event,
                stage="normalize",
                reason=type(exc).__name__,
                detail=str(exc),
                now=now,
                report=report,
            )
            continue
        except Exception as exc:  # a connector bug must not block the other events
            logger.exception(
                "connector %s crashed mapping %s",
                bound.connector.name,
                event.event_type,
                extra={"instance": event.instance_id},
            )
            _dead_letter(
                store,
                event,
                stage="normalize",
                reason="mapper_crashed",
                detail=f"{type(exc).__name__}: {exc}",
                now=now,
                report=report,
            )
            continue
        if isinstance(result, Unmapped):
            report.unmapped[result.event_type] = report.unmapped.get(result.event_type, 0) + 1
            continue
        _route(
            result,
            event=event,
            bound=bound,
            destinations=destinations,
            store=store,
            now=now,
            batches=batches,
            report=report,
        )
    for lrs_name, items in batches.items():
        report.appended[lrs_name] = store.outbox_append(lrs_name, items, now=now)
    return report


def routed_destinations(
    destinations: Sequence[Destination], bound: BoundInstance
) -> list[Destination]:
    """The destinations an instance sends to: those its `lrs:` list names, or all."""
    return [d for d in destinations if bound.lrs is None or d.name in bound.lrs]


def encode_for_targets(
    statement: Statement | StatementJson,
    destinations: Sequence[Destination],
    *,
    instance_id: str,
    now: datetime,
) -> tuple[str, list[Destination], dict[XapiVersion, bytes]]:
    """The statement's verb IRI, the destinations whose routes accept it, and its canonical
    bytes for each xAPI version those speak. Raises `StatementInvalid`.

    The normalizer appends those bytes to the outboxes; the backfill dry run only counts them:
    one function so the dry run's answer is the normalizer's.
    """
    verb_iri = statement_verb_id(statement)
    targets = [d for d in destinations if d.accepts(instance_id, verb_iri)]
    encoded = {
        version: canonical_bytes(statement, version=version, now=now)
        for version in {d.xapi_version for d in targets}
    }
    return verb_iri, targets, encoded


def _route(
    statements: Sequence[Statement | StatementJson],
    *,
    event: SourceEvent,
    bound: BoundInstance,
    destinations: Sequence[Destination],
    store: Store,
    now: datetime,
    batches: dict[str, list[OutboxItem]],
    report: NormalizeReport,
) -> None:
    routed = routed_destinations(destinations, bound)
    for statement in statements:
        try:
            verb_iri, targets, encoded = encode_for_targets(
                statement, routed, instance_id=bound.instance_id, now=event.received_at
            )
        except StatementInvalid as exc:
            _dead_letter(
                store,
                event,
                stage="normalize",
                reason="invalid_statement",
                detail=f"connector {bound.connector.name!r} mapped {event.event_type!r} to an "
                f"invalid statement: {exc}; fix the mapping, then replay",
                now=now,
                report=report,
            )
            continue
        report.statements += 1
        sid = str(statement.id or uuid.uuid4())
        for dest in targets:
            batches[dest.name].append(
                OutboxItem(
                    statement_id=sid,
                    body=encoded[dest.xapi_version],
                    instance_id=bound.instance_id,
                    verb=verb_iri,
                    enqueued_at=now,
                    received_at=event.received_at,
                )
            )
            report.produced[dest.name] = report.produced.get(dest.name, 0) + 1


@dataclass
class PollReport:
    instance_id: str
    skipped: bool = False
    events: int = 0
    has_more: bool = False
    cursor: str | None = None
    total_hint: int | None = None
    seconds: float = 0.0


def run_poll(
    bound: BoundInstance,
    *,
    store: Store,
    enqueuer: Enqueuer,
    clock: Clock,
    safety_lag: timedelta = timedelta(seconds=30),
    cursor_key: str | None = None,
    until: datetime | None = None,
    lock_ttl: float = 300.0,
) -> PollReport:
    """Poll ONE page for an instance: lock, read cursor, fetch, enqueue, then save the cursor.

    `cursor_key` lets a backfill keep its own cursor beside the live one. Errors propagate to
    the caller (the task maps them to retry / wait / unhealthy) after being recorded in health.
    """
    connector = bound.connector
    if not isinstance(connector, Polling):
        raise TypeError(f"connector {connector.name!r} cannot poll")
    key = cursor_key or bound.instance_id
    owner = uuid.uuid4().hex
    lock = f"poll:{key}"
    started = time.monotonic()
    if not store.acquire_lock(lock, owner=owner, ttl_seconds=lock_ttl):
        return PollReport(instance_id=bound.instance_id, skipped=True)
    try:
        raw = store.get_cursor(key)
        cursor = connector.cursor_model.model_validate_json(raw) if raw else None
        now = clock.now()
        limit = until if until is not None else now - safety_lag
        try:
            page = connector.poll(cursor, until=limit)
        except HubError as exc:
            health.record_error(
                store, bound.instance_id, at=now, error=f"{type(exc).__name__}: {exc}"
            )
            raise
        if page.events:
            enqueuer.enqueue(page.events)  # durable first ...
        saved = None
        if page.next_cursor is not None:
            saved = page.next_cursor.model_dump_json()
            store.set_cursor(key, saved)  # ... cursor second
        if cursor_key is None:
            health.record_success(
                store, bound.instance_id, at=now, events=len(page.events), cursor=saved
            )
        return PollReport(
            instance_id=bound.instance_id,
            events=len(page.events),
            has_more=page.has_more,
            cursor=saved,
            total_hint=page.total_hint,
            seconds=time.monotonic() - started,
        )
    finally:
        store.release_lock(lock, owner=owner)


def run_maintain(bound: BoundInstance, *, enqueuer: Enqueuer) -> int:
    """Run an instance's upkeep and enqueue the events it returns; how many were enqueued.

    Events that name another instance, or are not `SourceEvent`s, are a plugin bug: refused
    with a `TypeError` naming the connector, before anything is enqueued. When the upkeep
    raises `MaintenanceIncomplete`, the events it carries are enqueued first and the exception
    is raised again, for the caller to record the failed part.
    """
    incomplete: MaintenanceIncomplete | None = None
    try:
        found = bound.connector.maintain()
    except MaintenanceIncomplete as exc:
        found, incomplete = exc.events, exc
    events = list(found or ())
    bad = not_of_instance(events, bound.instance_id)
    if bad:
        raise TypeError(
            f"connector {bound.connector.name!r}: maintain() returned {len(bad)} event(s) that "
            f"are not SourceEvents of instance {bound.instance_id!r}"
        )
    enqueuer.enqueue(events)
    if incomplete is not None:
        raise incomplete
    return len(events)


@dataclass
class DrainReport:
    leased: int = 0
    normalized: NormalizeReport | None = None
    retried: int = 0
    dead_lettered: int = 0
    more_waiting: bool = False


def drain_inbox(
    *,
    store: Store,
    clock: Clock,
    normalize_batch: Callable[[Sequence[SourceEvent]], NormalizeReport],
    max_items: int = 200,
    lease_seconds: float = 120.0,
    max_attempts: int = 12,
    backoff: Callable[[int], float],
) -> DrainReport:
    """Lease raw events from the inbox, normalize them, and only then remove them.

    A TransientError (a user-API lookup failed) puts the whole lease back with backoff; after
    `max_attempts` the envelopes go to the dead letters (replayable), never silently away.
    """
    from hub.inbox import INBOX, read_item  # local: inbox imports this module

    now = clock.now()
    lease = store.outbox_lease(INBOX, max_items=max_items, lease_seconds=lease_seconds, now=now)
    if lease is None:
        return DrainReport()
    ids = [item.statement_id for item in lease.items]
    # Units, not items: a grouped inbox item holds several events (hub.inbox.to_items).
    units = sum(item_weight(sid) for sid in ids)
    report = DrainReport(leased=units, more_waiting=units >= max_items)
    events: list[SourceEvent] = []
    for item in lease.items:
        good, bad = read_item(item)
        events.extend(good)
        for line in bad:  # an envelope written by an incompatible version: only it stops here
            suffix = f":{line.number}" if item_weight(item.statement_id) > 1 else ""
            store.dlq_add(
                DeadLetter(
                    id=f"ingest:{item.statement_id}{suffix}",
                    stage="ingest",
                    instance_id=item.instance_id,
                    reason="bad_envelope",
                    detail=line.error[:2000],
                    first_at=now,
                    last_at=now,
                    body=line.raw,
                )
            )
            report.dead_lettered += 1
    try:
        report.normalized = normalize_batch(events)
    except TransientError as exc:
        attempts = max((item.attempts for item in lease.items), default=0) + 1
        if attempts >= max_attempts:
            nreport = NormalizeReport()
            for event in events:
                _dead_letter(
                    store,
                    event,
                    stage="normalize",
                    reason="lookup_unavailable",
                    detail=f"gave up after {attempts} attempts: {exc}",
                    now=now,
                    report=nreport,
                )
            report.dead_lettered += len(events)
        else:
            store.outbox_release(
                INBOX,
                lease.lease_id,
                ids,
                not_before=now + timedelta(seconds=backoff(attempts)),
                error=str(exc)[:500],
                count_attempt=True,
                now=now,
            )
            report.retried = len(ids)
            return report
    store.outbox_ack(INBOX, lease.lease_id, ids)
    return report
