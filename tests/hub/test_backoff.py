"""Full-jitter backoff and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from hub.backoff import full_jitter, parse_retry_after

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "window"), [(0, 1.0), (1, 2.0), (3, 8.0), (8, 256.0), (9, 300.0), (10_000, 300.0)]
)
def test_full_jitter_stays_in_window(attempt: int, window: float) -> None:
    rng = random.Random(7)
    delays = [full_jitter(attempt, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= window for d in delays)
    # Full jitter spreads over the whole window, not just near its top.
    assert min(delays) < window * 0.1
    assert max(delays) > window * 0.9


def test_full_jitter_is_reproducible_and_respects_base_and_cap() -> None:
    a = [full_jitter(n, base=0.5, cap=10.0, rng=random.Random(1)) for n in range(8)]
    b = [full_jitter(n, base=0.5, cap=10.0, rng=random.Random(1)) for n in range(8)]
    assert a == b
    assert all(d <= 10.0 for d in a)
    assert full_jitter(-3, rng=random.Random(1)) <= 1.0


def test_full_jitter_rejects_negative_parameters() -> None:
    with pytest.raises(ValueError, match="negative"):
        full_jitter(1, base=-1.0, rng=random.Random(1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-5", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 11:59:00 GMT", 0.0),
        ("Sat, 28 Nov 2026 12:01:00 -0000", 60.0),
        ("Saturday, 32 Foo 2026", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected
