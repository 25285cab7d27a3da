"""Signals to workers: small Celery messages that only name what to work on.

Kicks are throttled through the store (one per target per `THROTTLE` seconds) so a burst of
webhooks sends a handful of messages, not thousands; the periodic flush covers anything a
suppressed kick would have started.
"""

from __future__ import annotations

import logging

from hub.store.base import Store

logger = logging.getLogger(__name__)

THROTTLE = 0.2


def kick(store: Store, task: str, args: tuple[str, ...] = ()) -> None:
    from workers.app import app

    if store.mark_seen("kick", f"{task}:{','.join(args)}", ttl_seconds=THROTTLE):
        app.send_task(task, args=args)
