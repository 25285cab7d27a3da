"""Liveness of workers and the scheduler, recorded in the store (works on every broker; kombu's
SQLAlchemy transport has no broadcast, so `celery inspect ping` cannot be the health check)."""

from __future__ import annotations

import logging
import socket
from typing import Any

from celery import bootsteps

from workers import state

logger = logging.getLogger(__name__)

NAMESPACE = "heartbeat"
INTERVAL = 15.0
TTL = 60.0


def beat_key(role: str, host: str | None = None) -> str:
    return f"{role}:{host or socket.gethostname()}"


def record(role: str) -> None:
    rt = state.runtime()
    rt.store.kv_set(NAMESPACE, beat_key(role), rt.clock.now().isoformat(), ttl_seconds=TTL)


class WorkerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        self._beat()
        self.tref = worker.timer.call_repeatedly(INTERVAL, self._beat, priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()

    @staticmethod
    def _beat() -> None:
        try:
            record("worker")
        except Exception as exc:  # the store may be briefly unreachable
            logger.warning("worker heartbeat not recorded: %s", exc)
