"""Signals to workers: small Celery messages that only name what to work on.

Kicks are throttled through the store (one per target per `THROTTLE` seconds) so a burst of
webhooks sends a handful of messages, not thousands; the periodic flush covers anything a
suppressed kick would have started.
"""

from __future__ import annotations

import logging
import time

from hub.store.base import Store

logger = logging.getLogger(__name__)

THROTTLE = 0.2

# The same throttle in process first: a busy receiver answers hundreds of webhooks a second, and
# asking the store each time would add a round trip to every one of them.
_last_local: dict[str, float] = {}


def kick(store: Store, task: str, args: tuple[str, ...] = ()) -> None:
    from workers.app import app

    target = f"{task}:{','.join(args)}"
    now = time.monotonic()
    if now - _last_local.get(target, -THROTTLE) < THROTTLE:
        return
    _last_local[target] = now
    if store.mark_seen("kick", target, ttl_seconds=THROTTLE):
        app.send_task(task, args=args)
