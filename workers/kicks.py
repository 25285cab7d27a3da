"""Signals to workers: small Celery messages that only name what to work on.

A kick is a wake-up, not a unit of work: the task it starts drains whatever is there. So kicks
are throttled: one message per target per `WINDOW` (the leading edge), marked in the store so a
burst from many processes sends one. A throttled kick must not be lost, though: the message
already sent may have started its task before the caller appended, and then nobody would look at
the new work. So the first kick throttled in a window also sends a trailing message, due at the
window's end (`countdown`): its task starts after every kick of that window, so it sees their
work. At most two messages per target per window, and no kick is lost.

(The earlier time throttle had no trailing edge: a kick throttled while the running task was
past its last lease waited for the scheduler's periodic flush, or, without a scheduler, for about
a minute until something else kicked; the bench's last partial batches waited that way.)

Within one process, the leading edge is also throttled locally (a busy receiver need not ask the
store on every request), and a trailing message this process sent covers its later kicks until
it is due, without asking the store either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)

WINDOW = 0.2
"""Seconds between leading kicks per target; also the most a throttled kick waits."""


class Marks(Protocol):
    """What a kicker needs of the hub's `Store`: marks with a TTL."""

    def mark_seen(self, namespace: str, key: str, *, ttl_seconds: float) -> bool: ...

    def unmark_seen(self, namespace: str, key: str) -> None: ...


class Send(Protocol):
    def __call__(self, task: str, args: tuple[str, ...], countdown: float | None) -> None: ...


def _celery_send(task: str, args: tuple[str, ...], countdown: float | None) -> None:
    from workers.app import app

    app.send_task(task, args=args, countdown=countdown)


def target(task: str, args: tuple[str, ...] = ()) -> str:
    return f"{task}:{','.join(args)}"


class Kicker:
    """Sends kicks for one process; `send` and `clock` are injectable for tests."""

    def __init__(
        self,
        *,
        send: Send = _celery_send,
        clock: Callable[[], float] = time.monotonic,
        window: float = WINDOW,
    ) -> None:
        self._send = send
        self._clock = clock
        self.window = window
        self._lock = threading.Lock()
        self._sent: dict[str, float] = {}  # target -> when this process last sent a leading kick
        self._covered: dict[str, float] = {}  # target -> due time of our trailing kick

    def kick(
        self, store: Marks, task: str, args: tuple[str, ...] = (), *, force: bool = False
    ) -> bool:
        """Make sure a `task(*args)` runs after this call; True when a message went out now.

        `force` skips the throttle (the periodic flush: a lost message costs one flush interval).
        A broker error propagates after the store mark is cleared, so the next kick retries.
        """
        name = target(task, args)
        now = self._clock()
        with self._lock:
            if not force and now < self._covered.get(name, float("-inf")):
                return False  # our trailing kick is still to come and will see this work
            local_ok = now - self._sent.get(name, float("-inf")) >= self.window
        if force or (local_ok and store.mark_seen("kick", name, ttl_seconds=self.window)):
            self._deliver(store, "kick", name, task, args, countdown=None)
            with self._lock:
                self._sent[name] = now
            return True
        # Throttled: the leading message may already be running. One trailing message per window
        # (whichever process marks it first) starts after every kick of the window.
        if store.mark_seen("kick-trailing", name, ttl_seconds=self.window):
            self._deliver(store, "kick-trailing", name, task, args, countdown=self.window)
            with self._lock:
                self._covered[name] = now + self.window
        # Else another process's trailing kick is due later than now (its mark lives until then).
        return False

    def _deliver(
        self,
        store: Marks,
        mark: str,
        name: str,
        task: str,
        args: tuple[str, ...],
        *,
        countdown: float | None,
    ) -> None:
        try:
            self._send(task, args, countdown)
        except Exception:
            store.unmark_seen(mark, name)
            raise


_process = Kicker()


def kick(store: Marks, task: str, args: tuple[str, ...] = (), *, force: bool = False) -> bool:
    """Kick with this process's `Kicker` (see the module docstring)."""
    return _process.kick(store, task, args, force=force)
