"""Retry timing: exponential backoff with full jitter, and the HTTP `Retry-After` header.

Both are pure functions. Randomness comes from an injected `random.Random` and time from an
explicit `now`, so the delivery tests can pin every countdown.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["full_jitter", "parse_retry_after"]

# 2**63 already dwarfs any sensible cap; clamping the exponent keeps the float math finite
# for items that have failed thousands of times.
_MAX_EXPONENT = 63


def full_jitter(
    attempt: int, *, base: float = 1.0, cap: float = 300.0, rng: random.Random
) -> float:
    """AWS "full jitter": a uniform delay in ``[0, min(cap, base * 2**attempt)]`` seconds.

    Spreading retries over the whole window (rather than around its end) is what stops a fleet of
    workers that failed together from retrying together.

    Args:
        attempt: how many attempts have already failed (0 for the first retry).
        base: the window for attempt 0, in seconds.
        cap: the largest window, in seconds.
        rng: the source of randomness (seeded in tests).
    """
    if base < 0 or cap < 0:
        raise ValueError("base and cap must not be negative")
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    window = min(cap, base * float(2**exponent))
    return rng.uniform(0.0, window)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or None when absent or unreadable.

    RFC 9110 §10.2.3 allows either delay-seconds or an HTTP-date. A date in the past, or a
    negative number (which the RFC does not allow but proxies send), means "now" (0). Anything
    else (garbage, NaN, infinity) is ignored, so the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now=now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _seconds_until_http_date(text: str, *, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # HTTP-dates are always GMT; email.utils returns a naive value for "-0000".
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
