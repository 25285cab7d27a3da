"""`hub.normalize_events`: drain the inbox into the per-LRS outboxes."""

from __future__ import annotations

import logging
import os
import random
import time

from hub.backoff import full_jitter
from hub.pipeline import drain_inbox
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
                    kick(rt.store, "hub.deliver_statements", (lrs_name,))
        if not report.more_waiting:
            break
        if time.monotonic() - started > DRAIN_SECONDS:
            kick(rt.store, "hub.normalize_events")
            break
    return total
