"""A gate that lets at most N threads of a process run a piece of work, without losing a call.

Used by `hub.normalize_events`: normalizing is CPU-bound, so more threads than cores only queue
on the GIL, and they would hold the pool threads that deliveries and polls need. A call that
finds the gate full returns at once instead of waiting: the runners inside drain all the work
there is. `pending` makes one of them look again if a call came in while they were finishing:
a caller sets it before trying the gate and a runner checks it after leaving the gate, so no
call falls between the two (either a runner sees the flag, or the caller gets in).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class DrainGate:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self._slots = threading.BoundedSemaphore(slots)
        self._pending = threading.Event()

    def run(self, work: Callable[[], int]) -> int:
        """Run `work` (which drains what is there and returns how much) until no call came in
        meanwhile; return 0 at once if the gate is full (a runner inside will look again)."""
        total = 0
        self._pending.set()
        while self._pending.is_set():
            if not self._slots.acquire(blocking=False):
                return total
            try:
                self._pending.clear()
                total += work()
            finally:
                self._slots.release()
        return total
