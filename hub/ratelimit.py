"""A client-side token-bucket rate limiter with an injectable clock.

Sources publish limits (Cornerstone: 400 requests per minute per view; Docebo: a contractual
rate). Staying under them is cheaper than meeting 429s. The limiter never sleeps: a task that
finds the bucket empty raises `RateLimited(retry_after=...)` and the worker re-schedules it
(STYLE §5: no sleeping in tasks).

The buckets live in the process (one per key, e.g. one per Cornerstone view). Several worker
processes each get their own buckets, so configure the rate per process with that in mind.

Example::

    limiter = RateLimiter(rate=400 / 60, burst=20, clock=runtime.clock)
    limiter.acquire("vw_rpt_transcript")      # raises RateLimited when empty
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hub.clock import Clock, SystemClock
from hub.errors import RateLimited

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass
class TokenBucket:
    """`burst` tokens, refilled at `rate` tokens per second."""

    rate: float
    burst: float
    tokens: float
    updated: float  # clock seconds (POSIX) of the last refill

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, cost: float) -> float:
        """Seconds until `cost` tokens are available (0 if they are)."""
        missing = cost - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate


class RateLimiter:
    """Keyed token buckets sharing one rate and burst."""

    def __init__(self, *, rate: float, burst: float, clock: Clock | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock: Clock = clock or SystemClock()
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(rate=self.rate, burst=self.burst, tokens=self.burst, updated=now)
            self._buckets[key] = bucket
        bucket.refill(now)
        return bucket

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def available(self, key: str) -> float:
        """Tokens in `key`'s bucket now."""
        with self._lock:
            return self._bucket(key, self._now()).tokens

    def acquire(self, key: str, cost: float = 1.0) -> None:
        """Take `cost` tokens from `key`'s bucket, or raise `RateLimited` with the wait."""
        with self._lock:
            bucket = self._bucket(key, self._now())
            wait = bucket.wait_for(cost)
            if wait > 0:
                raise RateLimited(
                    f"client-side rate limit for {key!r} reached", retry_after=round(wait, 3)
                )
            bucket.tokens -= cost

    def observe_remaining(self, key: str, remaining: int, *, low_water: int) -> None:
        """Drain `key`'s bucket when the server says few requests remain (e.g. Cornerstone's
        ``x-csod-requests-remaining-urilevel``): slowing down early beats a 429."""
        if remaining > low_water:
            return
        with self._lock:
            bucket = self._bucket(key, self._now())
            bucket.tokens = min(bucket.tokens, 0.0)
