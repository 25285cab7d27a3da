"""One delivery round for one LRS: lease from its outbox, POST, act on the classified answer.

`deliver_once` is what the ``hub.deliver_statements`` Celery task calls. It never sleeps: every
wait becomes either an item's ``not_before`` in the outbox or ``DeliveryReport.next_check_in``,
which the task turns into its next countdown. The round is bounded (at most ``2 * batch_size``
POSTs plus one GET per conflicting statement), so ``lease_seconds`` must exceed that many LRS
timeouts, or a slow round's lease expires and another worker sends the same (idempotent) bytes.

What each `Outcome` does (DESIGN §2 step 4, STYLE §5 idempotency rules):

* STORED: ack.
* CONFLICT: a batch is halved until the conflicting statements stand alone, so one conflict
  never drops its neighbours. A single one is read back by id and compared by xAPI's rules,
  ignoring the hub's own ``…/extensions/connector-version`` lineage key (a hub upgrade must not
  turn re-sends into conflicts): equivalent means stored; different means a dead letter holding
  both versions.
* REJECTED: the LRS refuses batches atomically, so bisect down to the culprits, dead-letter them
  with the LRS's message and deliver the rest.
* TOO_LARGE: halve; a single statement too large is dead-lettered.
* RETRY: everything not yet confirmed goes back with ``not_before`` = now + max(Retry-After,
  full-jitter backoff) and one more counted attempt; items failing for longer than the retry
  horizon are dead-lettered instead. The LRS's backoff gate (store kv) closes until the same
  instant, and its failure streak widens the next window, so rounds triggered meanwhile send
  nothing and a large backlog does not probe a dead LRS batch after batch.
* AUTH: open the LRS's circuit and put everything back uncounted (a credential problem is not the
  statements' fault). While open, rounds return at once; when the probe time comes one statement
  is sent as a probe: success closes the circuit, another AUTH doubles the probe interval.

Dead letters are written before the ack, so a crash in between leaves a duplicate dead letter
(same id, updated in place) rather than a lost statement.
"""

from __future__ import annotations

import json
import logging
import random
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from hub.backoff import full_jitter
from hub.clock import Clock
from hub.errors import DeliveryPermanent, DeliveryTransient
from hub.lrs import BatchOutcome, LrsClient, LrsUnauthorized, Outcome
from hub.store.base import DeadLetter, Lease, OutboxItem, Store
from hub.xapi.serialize import statement_from_bytes, statements_equivalent

__all__ = [
    "BACKOFF_NAMESPACE",
    "CIRCUIT_NAMESPACE",
    "BackoffGate",
    "CircuitState",
    "DeliveryReport",
    "LINEAGE_EXTENSION_SUFFIX",
    "circuit_state",
    "deliver_once",
]

logger = logging.getLogger(__name__)

#: Store kv namespace holding one `CircuitState` (JSON) per LRS name while that LRS is paused.
CIRCUIT_NAMESPACE = "circuit"

#: Store kv namespace holding one `BackoffGate` (JSON) per LRS name while that LRS answers
#: RETRY: rounds started before `until` (by a periodic flush or an enqueue) send nothing, so a
#: backlog does not cycle through a dead LRS batch after batch.
BACKOFF_NAMESPACE = "delivery_backoff"

#: Extension keys with this ending record which connector version built a statement. They are
#: ignored when deciding whether a 409 is a real conflict.
LINEAGE_EXTENSION_SUFFIX = "/extensions/connector-version"


class DeliveryReport(BaseModel):
    """What one round did; the task logs it, updates metrics and schedules the next round."""

    model_config = ConfigDict(extra="forbid")

    lrs: str
    stored: int = 0
    dead_lettered: int = 0
    retried: int = Field(default=0, description="items put back with a backoff")
    paused: bool = Field(default=False, description="the LRS's circuit is open")
    waiting: bool = Field(default=False, description="a partial batch waits for company")
    backing_off: bool = Field(default=False, description="the LRS asked for a pause (RETRY)")
    more_waiting: bool = Field(default=False, description="more items are due now: run again")
    next_check_in: float | None = Field(
        default=None, description="seconds until the next round is useful; None: nothing queued"
    )
    requests: int = Field(default=0, description="HTTP requests sent to the LRS")
    last_error: str | None = None
    stored_received_at: list[AwareDatetime] = Field(
        default_factory=list, description="received_at of the stored items (latency metric)"
    )


class CircuitState(BaseModel):
    """An open circuit: the LRS refused our credentials; probe again at `probe_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opened_at: AwareDatetime
    reason: str
    probe_at: AwareDatetime
    interval: float = Field(description="seconds between probes; doubles on each refused probe")


class BackoffGate(BaseModel):
    """The LRS answered RETRY: no round sends anything before `until`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    until: AwareDatetime
    failures: int = Field(description="consecutive RETRY rounds; drives the backoff window")
    reason: str


def _backoff_gate(store: Store, lrs_name: str) -> BackoffGate | None:
    raw = store.kv_get(BACKOFF_NAMESPACE, lrs_name)
    if raw is None:
        return None
    try:
        return BackoffGate.model_validate_json(raw)
    except ValueError:
        return None


def circuit_state(store: Store, lrs_name: str) -> CircuitState | None:
    """The open circuit of `lrs_name`, or None when it is closed (status page, alerts)."""
    raw = store.kv_get(CIRCUIT_NAMESPACE, lrs_name)
    if raw is None:
        return None
    try:
        return CircuitState.model_validate_json(raw)
    except ValueError:
        # A corrupt entry must not wedge delivery: treat it as "probe now".
        logger.warning("unreadable circuit state for LRS %s; probing", lrs_name)
        return None


def acquire_slot(
    store: Store, lrs_name: str, *, slots: int, owner: str, ttl_seconds: float
) -> str | None:
    """Take one of the `slots` delivery locks of an LRS; the lock's name, or None if all are
    held (at most `slots` rounds run against one LRS at a time, whatever the worker count)."""
    for slot in range(slots):
        name = f"deliver:{lrs_name}:{slot}"
        if store.acquire_lock(name, owner=owner, ttl_seconds=ttl_seconds):
            return name
    return None


def deliver_once(
    *,
    store: Store,
    lrs_name: str,
    client: LrsClient,
    clock: Clock,
    batch_size: int,
    max_batch_wait: float,
    lease_seconds: float,
    retry_horizon: float,
    rng: random.Random,
    max_batch_idle: float = 0.0,
    max_countdown: float = 300.0,
    max_retry_after: float = 3600.0,
    backoff_base: float = 1.0,
    probe_interval: float = 30.0,
    max_probe_interval: float = 600.0,
) -> DeliveryReport:
    """Run one delivery round for `lrs_name` and report what happened.

    Args:
        store: the hub's state (outbox, dead letters, circuit).
        lrs_name: the destination whose outbox is drained.
        client: the LRS client for that destination.
        clock: time source.
        batch_size: most statements per POST.
        max_batch_wait: seconds a partial batch may wait for company before it is sent anyway.
        max_batch_idle: a partial batch is also sent once no statement has joined it for this
            long (0: only max_batch_wait counts). A burst then ends without a max_batch_wait
            tail, and a steady stream still fills whole batches.
        lease_seconds: how long the leased items stay invisible to other workers.
        retry_horizon: seconds after an item's first failure at which it is dead-lettered.
        rng: randomness for the backoff jitter.
        max_countdown: cap of the backoff window and of `next_check_in` (keep it below the
            broker's visibility timeout).
        max_retry_after: the longest ``Retry-After`` honoured, so one odd header cannot park
            statements for days.
        backoff_base: the backoff window after the first failure, in seconds.
        probe_interval: first wait before probing a paused LRS; doubles up to
            `max_probe_interval`.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = clock.now()
    # An unreadable entry still counts as open (circuit None): the round probes right away.
    probing = store.kv_get(CIRCUIT_NAMESPACE, lrs_name) is not None
    circuit = circuit_state(store, lrs_name) if probing else None
    if circuit is not None and now < circuit.probe_at:
        return DeliveryReport(
            lrs=lrs_name,
            paused=True,
            next_check_in=_seconds(circuit.probe_at - now),
            last_error=circuit.reason,
        )
    gate = _backoff_gate(store, lrs_name)
    if not probing and gate is not None and now < gate.until:
        return DeliveryReport(
            lrs=lrs_name,
            backing_off=True,
            next_check_in=min(_seconds(gate.until - now), max_countdown),
            last_error=gate.reason,
        )
    lease = store.outbox_lease(
        lrs_name, max_items=1 if probing else batch_size, lease_seconds=lease_seconds, now=now
    )
    if lease is None:
        if probing:
            # Nothing to probe with: stay paused; the next statement will be the probe.
            interval = circuit.interval if circuit is not None else probe_interval
            return DeliveryReport(lrs=lrs_name, paused=True, next_check_in=interval)
        return DeliveryReport(
            lrs=lrs_name, next_check_in=_next_due_in(store, lrs_name, now, cap=max_countdown)
        )

    if not probing and len(lease.items) < batch_size:
        wait = _remaining_batch_wait(
            lease.items, now=now, max_batch_wait=max_batch_wait, max_batch_idle=max_batch_idle
        )
        if wait > 0:
            # Uncounted and due immediately: this is batching, not a failure.
            store.outbox_release(
                lrs_name,
                lease.lease_id,
                [item.statement_id for item in lease.items],
                not_before=now,
                count_attempt=False,
                now=now,
            )
            return DeliveryReport(lrs=lrs_name, waiting=True, next_check_in=wait)

    round_ = _Round(
        store=store,
        lrs=lrs_name,
        client=client,
        clock=clock,
        lease=lease,
        rng=rng,
        retry_horizon=retry_horizon,
        max_countdown=max_countdown,
        max_retry_after=max_retry_after,
        backoff_base=backoff_base,
        lrs_failures=gate.failures if gate is not None else 0,
    )
    stop = round_.run()
    report = round_.report

    if round_.retry_until is not None and stop is not None:
        failures = (gate.failures if gate is not None else 0) + 1
        _set_gate(store, lrs_name, until=round_.retry_until, failures=failures, stop=stop, now=now)
        report.backing_off = True
    elif gate is not None and stop is None:
        store.kv_delete(BACKOFF_NAMESPACE, lrs_name)

    if stop is not None and stop.kind is Outcome.AUTH:
        if circuit is not None:
            interval = min(circuit.interval * 2, max_probe_interval)
        else:
            interval = min(probe_interval, max_probe_interval)
        _open_circuit(store, lrs_name, reason=_describe(stop), interval=interval, now=clock.now())
        report.paused = True
        report.next_check_in = interval
        return report
    if probing:
        if round_.credentials_accepted:
            store.kv_delete(CIRCUIT_NAMESPACE, lrs_name)
            logger.info("LRS %s accepted the probe; circuit closed", lrs_name)
        else:
            # RETRY on the probe says nothing about the credentials: stay paused, same interval.
            # Keep the original refusal as the reason: it is what the admin must fix.
            if circuit is not None:
                interval, reason = circuit.interval, circuit.reason
            else:
                interval = probe_interval
                reason = _describe(stop) if stop is not None else "probe inconclusive"
            _open_circuit(store, lrs_name, reason=reason, interval=interval, now=clock.now())
            report.paused = True
            report.next_check_in = max(interval, report.next_check_in or 0.0)
            return report
    if stop is None:
        due_in = _next_due_in(store, lrs_name, clock.now(), cap=max_countdown)
        report.more_waiting = due_in == 0.0
        report.next_check_in = due_in
    elif report.next_check_in is None:
        # RETRY, but every item passed the horizon: only what else waits matters.
        report.next_check_in = _next_due_in(store, lrs_name, clock.now(), cap=max_countdown)
    return report


class _Round:
    """The sending part of one round: a work list of sub-batches, processed in order."""

    def __init__(
        self,
        *,
        store: Store,
        lrs: str,
        client: LrsClient,
        clock: Clock,
        lease: Lease,
        rng: random.Random,
        retry_horizon: float,
        max_countdown: float,
        max_retry_after: float,
        backoff_base: float,
        lrs_failures: int,
    ) -> None:
        self.store = store
        self.lrs = lrs
        self.client = client
        self.clock = clock
        self.lease = lease
        self.rng = rng
        self.retry_horizon = retry_horizon
        self.max_countdown = max_countdown
        self.max_retry_after = max_retry_after
        self.backoff_base = backoff_base
        self.lrs_failures = lrs_failures
        self.report = DeliveryReport(lrs=lrs)
        #: When the statements put back after a RETRY become due (None: no RETRY).
        self.retry_until: datetime | None = None
        #: Some answer proved the LRS took our credentials (even a 409 or 400 does).
        self.credentials_accepted = False

    def run(self) -> BatchOutcome | None:
        """Send everything; returns the RETRY/AUTH outcome that stopped the round, if any."""
        items = self.lease.items
        # Full bisection of n statements is 2n - 1 POSTs; the budget only guards against a bug
        # or a misbehaving LRS turning one round into an unbounded loop.
        budget = 2 * len(items)
        posts = 0
        work: deque[list[OutboxItem]] = deque([list(items)])
        stop: BatchOutcome | None = None
        while work:
            chunk = work.popleft()
            if posts >= budget:
                work.appendleft(chunk)
                break
            posts += 1
            outcome = self._post(chunk)
            kind = outcome.kind
            if kind is Outcome.STORED:
                self._ack_stored(chunk)
            elif len(chunk) > 1 and kind in (Outcome.CONFLICT, Outcome.REJECTED, Outcome.TOO_LARGE):
                mid = len(chunk) // 2
                work.appendleft(chunk[mid:])
                work.appendleft(chunk[:mid])
            elif kind is Outcome.CONFLICT:
                stop = self._resolve_conflict(chunk[0], outcome)
            elif kind is Outcome.REJECTED:
                self._dead_letter(chunk[0], reason="lrs_rejected", detail=_describe(outcome))
            elif kind is Outcome.TOO_LARGE:
                self._dead_letter(chunk[0], reason="too_large", detail=_describe(outcome))
            else:
                stop = outcome
            if kind not in (Outcome.RETRY, Outcome.AUTH):
                self.credentials_accepted = True
            if stop is not None:
                work.appendleft(chunk)  # not confirmed: goes back with the rest
                break
        leftovers = [item for chunk in work for item in chunk]
        if stop is None and leftovers:
            self._put_back(leftovers, error=None, count_attempt=False)
            self.report.more_waiting = True
        elif stop is not None and stop.kind is Outcome.RETRY:
            self._retry_later(leftovers, stop)
        elif stop is not None:
            self.report.last_error = _describe(stop)
            # No error recorded on the items: a store may start their retry-horizon clock on
            # any recorded error, and a paused LRS must never age statements into dead letters.
            # The reason lives in the circuit state instead.
            self._put_back(leftovers, error=None, count_attempt=False)
        return stop

    # -- outcomes ----------------------------------------------------------------------------
    def _post(self, chunk: Sequence[OutboxItem]) -> BatchOutcome:
        self.report.requests += 1
        return self.client.post_batch([item.body for item in chunk])

    def _ack_stored(self, chunk: Sequence[OutboxItem]) -> None:
        self.store.outbox_ack(self.lrs, self.lease.lease_id, [i.statement_id for i in chunk])
        self.report.stored += len(chunk)
        self.report.stored_received_at.extend(
            item.received_at for item in chunk if item.received_at is not None
        )

    def _resolve_conflict(self, item: OutboxItem, outcome: BatchOutcome) -> BatchOutcome | None:
        """Decide a single-statement 409; returns an outcome only when the round must stop."""
        self.report.requests += 1
        try:
            held = self.client.get_statement(item.statement_id)
        except DeliveryTransient as exc:
            return BatchOutcome(kind=Outcome.RETRY, detail=str(exc), retry_after=exc.retry_after)
        except LrsUnauthorized as exc:
            return BatchOutcome(kind=Outcome.AUTH, detail=str(exc))
        except DeliveryPermanent as exc:
            self._dead_letter(
                item,
                reason="conflict",
                detail=f"{_describe(outcome)}; the stored version could not be read: {exc}",
            )
            return None
        if held is None:
            # 409 but nothing readable: typically a voided statement (readable only through
            # voidedStatementId). Either way the LRS will never take these bytes.
            self._dead_letter(
                item,
                reason="conflict",
                detail=f"{_describe(outcome)}; the LRS returns no statement under this id "
                "(voided?)",
            )
            return None
        if _equivalent(statement_from_bytes(item.body), held):
            # Same statement, e.g. sent by an older hub version or by a crashed round.
            self._ack_stored([item])
            return None
        self._dead_letter(
            item,
            reason="conflict",
            detail=f"{_describe(outcome)}; the LRS holds different content under this id",
            stored_version=_dump(held),
        )
        return None

    def _dead_letter(
        self,
        item: OutboxItem,
        *,
        reason: str,
        detail: str,
        stored_version: bytes | None = None,
    ) -> None:
        now = self.clock.now()
        self.store.dlq_add(
            DeadLetter(
                id=f"deliver:{self.lrs}:{item.statement_id}",
                stage="deliver",
                lrs=self.lrs,
                instance_id=item.instance_id,
                statement_id=item.statement_id,
                reason=reason,
                detail=detail,
                attempts=item.attempts + 1,
                first_at=item.first_failure_at or now,
                last_at=now,
                body=item.body,
                stored_version=stored_version,
            )
        )
        self.store.outbox_ack(self.lrs, self.lease.lease_id, [item.statement_id])
        self.report.dead_lettered += 1
        self.report.last_error = detail
        logger.warning(
            "LRS %s: statement %s dead-lettered (%s): %s",
            self.lrs,
            item.statement_id,
            reason,
            detail,
            extra={"lrs": self.lrs, "instance": item.instance_id},
        )

    def _retry_later(self, leftovers: Sequence[OutboxItem], stop: BatchOutcome) -> None:
        now = self.clock.now()
        error = _describe(stop)
        self.report.last_error = error
        horizon = timedelta(seconds=self.retry_horizon)
        again: list[OutboxItem] = []
        for item in leftovers:
            if item.first_failure_at is not None and now - item.first_failure_at >= horizon:
                self._dead_letter(
                    item,
                    reason="retry_horizon_exceeded",
                    detail=f"still failing {self.retry_horizon:g}s after the first failure; "
                    f"last: {error}",
                )
            else:
                again.append(item)
        if not again:
            return
        # One delay for the whole remainder keeps it together as one batch next time. The LRS's
        # own failure streak counts too: fresh items meeting a dead LRS back off like old ones.
        attempts = max(max(item.attempts for item in again), self.lrs_failures)
        backoff = full_jitter(
            attempts, base=self.backoff_base, cap=self.max_countdown, rng=self.rng
        )
        asked = min(stop.retry_after or 0.0, self.max_retry_after)
        delay = max(backoff, asked)
        self.retry_until = now + _td(delay)
        self._put_back(again, error=error, count_attempt=True, not_before=self.retry_until)
        self.report.retried += len(again)
        # From the stored instant (microseconds), so it matches what the store will answer.
        self.report.next_check_in = min(_seconds(self.retry_until - now), self.max_countdown)

    def _put_back(
        self,
        items: Sequence[OutboxItem],
        *,
        error: str | None,
        count_attempt: bool,
        not_before: datetime | None = None,
    ) -> None:
        if not items:
            return
        now = self.clock.now()
        self.store.outbox_release(
            self.lrs,
            self.lease.lease_id,
            [item.statement_id for item in items],
            not_before=not_before if not_before is not None else now,
            error=error,
            count_attempt=count_attempt,
            now=now,
        )


def _equivalent(ours: dict[str, JsonValue], held: dict[str, JsonValue]) -> bool:
    # statements_equivalent ignores exact keys; the lineage key's base IRI is per deployment,
    # so collect the keys with our suffix that either side actually carries.
    lineage = _keys_ending(ours, LINEAGE_EXTENSION_SUFFIX) | _keys_ending(
        held, LINEAGE_EXTENSION_SUFFIX
    )
    return statements_equivalent(ours, held, ignore_extensions=lineage)


def _keys_ending(node: JsonValue, suffix: str) -> set[str]:
    """Every object key anywhere in `node` that ends with `suffix`.

    Over-collecting is harmless: only context extension keys are ever ignored by the comparison.
    """
    found: set[str] = set()
    stack: list[JsonValue] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            found.update(key for key in current if key.endswith(suffix))
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


def _set_gate(
    store: Store, lrs: str, *, until: datetime, failures: int, stop: BatchOutcome, now: datetime
) -> None:
    gate = BackoffGate(until=until, failures=failures, reason=_describe(stop))
    # The TTL only cleans up after an LRS nobody delivers to any more; `until` is what counts.
    ttl = max(_seconds(until - now), 0.0) + 3600.0
    store.kv_set(BACKOFF_NAMESPACE, lrs, gate.model_dump_json(), ttl_seconds=ttl)


def _open_circuit(store: Store, lrs: str, *, reason: str, interval: float, now: datetime) -> None:
    previous = circuit_state(store, lrs)
    state = CircuitState(
        opened_at=previous.opened_at if previous is not None else now,
        reason=reason,
        probe_at=now + _td(interval),
        interval=interval,
    )
    store.kv_set(CIRCUIT_NAMESPACE, lrs, state.model_dump_json())
    logger.warning(
        "LRS %s paused (circuit open, next probe in %gs): %s",
        lrs,
        interval,
        reason,
        extra={"lrs": lrs},
    )


def _remaining_batch_wait(
    items: Sequence[OutboxItem], *, now: datetime, max_batch_wait: float, max_batch_idle: float
) -> float:
    """Seconds a partial batch should still wait; 0 when it must go now: its oldest statement
    waited `max_batch_wait`, or (with `max_batch_idle` > 0) nothing joined it for that long."""
    if max_batch_wait <= 0 or any(item.attempts > 0 for item in items):
        # Items that already failed have waited their backoff; holding them longer only adds
        # latency.
        return 0.0
    wait = max_batch_wait - _seconds(now - min(item.enqueued_at for item in items))
    if max_batch_idle > 0:
        wait = min(wait, max_batch_idle - _seconds(now - max(item.enqueued_at for item in items)))
    return max(wait, 0.0)


def _next_due_in(
    store: Store, lrs: str, now: datetime, *, cap: float | None = None
) -> float | None:
    due = store.outbox_next_due(lrs)
    if due is None:
        return None
    seconds = max(_seconds(due - now), 0.0)
    return min(seconds, cap) if cap is not None else seconds


def _describe(outcome: BatchOutcome) -> str:
    status = f"HTTP {outcome.status}" if outcome.status is not None else "no HTTP answer"
    text = f"{status} ({outcome.kind.value})"
    return f"{text}: {outcome.detail}" if outcome.detail else text


def _dump(value: JsonValue) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def _td(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
