"""`hub.deliver_statements(lrs)`: deliver one LRS's outbox; `hub.flush`: periodic sweep."""

from __future__ import annotations

import logging
import random
import time
import uuid

from hub.delivery import acquire_slot, deliver_once
from hub.inbox import INBOX
from hub.metrics import record_delivered
from workers import state
from workers.app import app
from workers.celeryconfig import MAX_COUNTDOWN
from workers.kicks import kick

logger = logging.getLogger(__name__)

ROUND_SECONDS = 10.0
"""Keep delivering this long per task while full batches are due, then hand over."""


@app.task(name="hub.deliver_statements")
def deliver_statements(lrs: str) -> int:
    rt = state.runtime()
    try:
        cfg = rt.lrs_config(lrs)
    except KeyError:
        logger.error("no LRS named %r in hub.yaml; its outbox is kept", lrs, extra={"lrs": lrs})
        return 0
    if not cfg.enabled:
        return 0
    # At most `max_in_flight` deliverers per LRS (a lock per slot): a slow LRS occupies at most
    # that many worker threads, so it never delays deliveries to the others. Two (the default)
    # keep an LRS busy: the next batch is leased and encoded while the LRS stores the current one.
    owner = uuid.uuid4().hex
    lease_seconds = rt.config.delivery.lease_seconds
    lock = acquire_slot(
        rt.store, lrs, slots=cfg.max_in_flight, owner=owner, ttl_seconds=lease_seconds
    )
    if lock is None:
        return 0  # the slots' holders look again after releasing them (below)
    delivered = 0
    started = time.monotonic()
    rng = random.Random()  # noqa: S311 (backoff jitter, not security)
    client = rt.lrs_client(lrs)
    try:
        while True:
            round_started = time.monotonic()
            report = deliver_once(
                store=rt.store,
                lrs_name=lrs,
                client=client,
                clock=rt.clock,
                batch_size=cfg.batch_size,
                max_batch_wait=cfg.max_batch_wait,
                max_batch_idle=cfg.max_batch_idle,
                lease_seconds=lease_seconds,
                retry_horizon=cfg.retry_horizon,
                rng=rng,
                max_countdown=min(rt.config.delivery.max_countdown, MAX_COUNTDOWN),
                probe_interval=rt.config.delivery.probe_interval,
            )
            rt.metrics.record_delivery(
                report, now=rt.clock.now(), seconds=time.monotonic() - round_started
            )
            record_delivered(rt.store, report, now=rt.clock.now())
            delivered += report.stored
            if not report.more_waiting or time.monotonic() - started > ROUND_SECONDS:
                break
            if cfg.max_in_flight > 1:
                kick(rt.store, "hub.deliver_statements", (lrs,))  # fill a free slot (throttled)
            rt.store.refresh_lock(lock, owner=owner, ttl_seconds=lease_seconds)
    finally:
        rt.store.release_lock(lock, owner=owner)
    if report.more_waiting:
        kick(rt.store, "hub.deliver_statements", (lrs,))
    elif report.next_check_in is not None:
        # A partial batch waiting for max_batch_wait, a backoff or a paused LRS: come back when
        # it is due (one follow-up per LRS at a time). The scheduler's flush is only the safety
        # net, so delivery does not depend on the scheduler being up.
        wait = min(max(report.next_check_in, 0.05), MAX_COUNTDOWN)
        if rt.store.mark_seen("deliver-followup", lrs, ttl_seconds=wait):
            deliver_statements.apply_async((lrs,), countdown=wait)
    elif rt.due_now(lrs):
        # The last lease found the outbox empty, but statements came while we held the slot and
        # their kick found every slot busy and returned: look again now that the slot is free,
        # or they would wait for the scheduler's flush.
        kick(rt.store, "hub.deliver_statements", (lrs,))
    return delivered


@app.task(name="hub.flush")
def flush() -> None:
    """Kick whatever has due work: the normalizer for the inbox, a deliverer per LRS."""
    rt = state.runtime()
    if rt.due_now(INBOX):
        kick(rt.store, "hub.normalize_events", force=True)
    for lrs in rt.config.lrs:
        if lrs.enabled and rt.due_now(lrs.name):
            kick(rt.store, "hub.deliver_statements", (lrs.name,), force=True)
    rt.metrics.record_outboxes(rt, now=rt.clock.now())
