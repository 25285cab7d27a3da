"""A beat scheduler that only schedules while it holds the deployment-wide beat lock.

Two `lxhub beat` processes (a second container by mistake, a rolling deploy) would send every
periodic task twice. Each beat tries to take a lock in the hub's store; the holder schedules and
refreshes it every tick, the others stand by and take over within `LOCK_TTL` seconds if the holder
dies.
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

from celery.beat import PersistentScheduler

from workers import state

logger = logging.getLogger(__name__)

LOCK = "beat"
LOCK_TTL = 30.0
STANDBY_CHECK = 5.0


class LockedScheduler(PersistentScheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._held = False
        super().__init__(*args, **kwargs)

    def _hold(self) -> bool:
        store = state.runtime().store
        if self._held:
            self._held = store.refresh_lock(LOCK, owner=self._owner, ttl_seconds=LOCK_TTL)
            if not self._held:
                logger.warning("lost the beat lock; standing by")
        else:
            self._held = store.acquire_lock(LOCK, owner=self._owner, ttl_seconds=LOCK_TTL)
            if self._held:
                logger.info("holding the beat lock as %s; scheduling", self._owner)
        return self._held

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            held = self._hold()
        except Exception as exc:  # store unreachable: do not schedule blind
            logger.warning("cannot reach the store for the beat lock (%s); standing by", exc)
            held = False
        if not held:
            return STANDBY_CHECK
        from workers.heartbeat import record

        try:
            record("beat")
        except Exception as exc:
            logger.warning("beat heartbeat not recorded: %s", exc)
        interval: float = super().tick(*args, **kwargs)
        return min(interval, LOCK_TTL / 3)

    def close(self) -> None:
        if self._held:
            try:
                state.runtime().store.release_lock(LOCK, owner=self._owner)
            except Exception:
                logger.warning("could not release the beat lock; it expires in %ss", LOCK_TTL)
        super().close()
