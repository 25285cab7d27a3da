"""The seam between receiving and processing: hand raw events to the ingest queue durably.

The web receiver and the poll task depend only on `Enqueuer`; the Celery implementation lives in
`workers/` and an in-memory one in `hub.testing`. `enqueue` returns only once the broker holds
the events (Redis LPUSH / SQLite commit), so answering 2xx or saving a cursor after it is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hub.errors import HubError
from hub.events import SourceEvent


class QueueUnavailable(HubError):
    """The broker could not take the events; the caller must not acknowledge them."""


class Enqueuer(Protocol):
    def enqueue(self, events: Sequence[SourceEvent]) -> None:
        """Durably enqueue raw events for normalization, or raise QueueUnavailable."""
        ...

    def ping(self) -> bool:
        """True when the broker is reachable (readiness)."""
        ...


class ListEnqueuer:
    """Keeps events in a list: for tests and for the in-process pipeline (dry runs, demo)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.events: list[SourceEvent] = []
        self.fail = fail

    def enqueue(self, events: Sequence[SourceEvent]) -> None:
        if self.fail:
            raise QueueUnavailable("queue unavailable (simulated)")
        self.events.extend(events)

    def ping(self) -> bool:
        return not self.fail
