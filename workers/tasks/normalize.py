"""`hub.normalize_events`: drain the inbox into the per-LRS outboxes."""

from __future__ import annotations

import logging
import os
import random
import time

from hub.backoff import full_jitter
from hub.inbox import INBOX
from hub.pipeline import drain_inbox
from hub.runtime import HubRuntime
from workers import state
from workers.app import app
from workers.gate import DrainGate
from workers.kicks import kick

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 2.0
"""Keep draining this long per task; then hand over so other queues' work gets a turn."""

# At most two normalize tasks drain at once per process (see workers/gate.py for why and how
# no kick is lost); with threads, the others return at once and leave the pool to deliveries.
_gate = DrainGate(max(1, min(os.cpu_count() or 1, 2)))


@app.task(name="hub.normalize_events")
def normalize_events() -> int:
    return _gate.run(_drain)


def _drain() -> int:
    rt = state.runtime()
    rng = random.Random()  # noqa: S311 (backoff jitter, not security)

    started = time.monotonic()
    total = 0
    # Statements appended per LRS since this task started, until the first full batch: that
    # one is announced at once (force), not at the kick throttle's trailing edge. At the start
    # of a burst the deliverer has just looked, found a partial batch and gone to wait; without
    # this the LRS idled for up to a throttle window while a full batch sat in its outbox.
    appended: dict[str, int] = {}
    while True:
        report = drain_inbox(
            store=rt.store,
            clock=rt.clock,
            normalize_batch=rt.normalize,
            backoff=lambda attempt: full_jitter(attempt, base=2.0, cap=600.0, rng=rng),
        )
        total += report.leased
        if report.normalized is not None:
            rt.metrics.record_normalize(report.normalized)
            for lrs_name, count in report.normalized.produced.items():
                if count:
                    _announce(rt, lrs_name, report.normalized.appended.get(lrs_name, 0), appended)
        if not report.leased:
            break
        # Keep going while events keep coming (a burst arriving): the receivers' kicks are
        # throttled, so ending here would leave them waiting for the throttle's trailing edge.
        if not report.more_waiting and not rt.due_now(INBOX):
            break
        if time.monotonic() - started > DRAIN_SECONDS:
            kick(rt.store, "hub.normalize_events")
            break
    return total


def _announce(rt: HubRuntime, lrs_name: str, new: int, appended: dict[str, int]) -> None:
    """Kick the LRS's deliverer; at once, past the throttle, for this task's first full batch."""
    before = appended.get(lrs_name, 0)
    appended[lrs_name] = before + new
    try:
        batch = rt.lrs_config(lrs_name).batch_size
    except KeyError:
        batch = None
    first_full = batch is not None and before < batch <= appended[lrs_name]
    kick(rt.store, "hub.deliver_statements", (lrs_name,), force=first_full)
