"""Timestamp and duration vectors (vendors.md 8.4, xapi.md 2)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from hub.xapi import (
    format_duration,
    format_timestamp,
    is_iso_duration,
    key_time,
    parse_duration,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("raw", "assume_utc", "expected"),
    [
        ("2024-03-13 14:58:26", True, "2024-03-13T14:58:26.000Z"),
        ("2025-06-05T18:54:38.973", True, "2025-06-05T18:54:38.973Z"),
        ("2025-06-05T18:54:38.973Z", False, "2025-06-05T18:54:38.973Z"),
        ("2021-02-02T10:30:34.9097561-08:00", False, "2021-02-02T18:30:34.909Z"),
        ("2021-03-16T18:59:52.2782182Z", False, "2021-03-16T18:59:52.278Z"),
        ("2015-03-09T19:05:24.552394234+00:00", False, "2015-03-09T19:05:24.552Z"),
        ("1595926230.009600", False, "2020-07-28T08:50:30.009Z"),
        (1599616881, False, "2020-09-09T02:01:21.000Z"),
    ],
)
def test_section_8_4_vectors(raw: str | int, assume_utc: bool, expected: str) -> None:
    parsed = parse_timestamp(raw, assume_utc=assume_utc)
    assert parsed is not None
    assert parsed.tzinfo is UTC
    assert format_timestamp(parsed) == expected


@pytest.mark.parametrize("raw", ["0000-00-00 00:00:00", "", None, "   "])
def test_empty_and_zero_dates_are_none(raw: str | None) -> None:
    assert parse_timestamp(raw, assume_utc=True) is None


def test_slack_ts_is_split_not_float() -> None:
    parsed = parse_timestamp("1595926230.009600")
    assert parsed == datetime(2020, 7, 28, 8, 50, 30, 9600, tzinfo=UTC)
    # Truncating float math, int((float(ts) % 1) * 1e6), gives 9599 here; the split must not.
    assert parse_timestamp("1599529504.000400") == datetime(2020, 9, 8, 1, 45, 4, 400, tzinfo=UTC)


def test_key_time_vectors() -> None:
    assert key_time(datetime(2024, 3, 13, 14, 58, 26, 999999, tzinfo=UTC)) == "2024-03-13T14:58:26Z"
    parsed = parse_timestamp("2024-03-13 14:58:26", assume_utc=True)
    assert parsed is not None
    assert key_time(parsed) == "2024-03-13T14:58:26Z"
    plus_one = timezone(timedelta(hours=1))
    assert key_time(datetime(2024, 1, 1, 0, 30, tzinfo=plus_one)) == "2023-12-31T23:30:00Z"


def test_missing_offset_rejected_without_assume_utc() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_timestamp("2025-06-05T18:54:38.973")


@pytest.mark.parametrize("raw", ["yesterday", "2024-13-01T00:00:00Z", "2024-03-13T25:00:00Z"])
def test_invalid_timestamps_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(raw)


def _general_parse(text: str) -> datetime | None | str:
    # A leading space skips parse_timestamp's strict-RFC-3339 fast path (it is stripped after).
    try:
        return parse_timestamp(" " + text)
    except (ValueError, OverflowError) as exc:
        return type(exc).__name__


def _any_parse(text: str) -> datetime | None | str:
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError) as exc:
        return type(exc).__name__


def test_fast_path_reads_rfc_3339_exactly_as_the_general_parser() -> None:
    rng = random.Random(20261129)
    cases = [
        "2024-02-29T23:59:59.999999Z",
        "2023-02-29T00:00:00Z",  # no such day: both refuse
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC: both overflow
        "9999-12-31T23:59:59-23:59",
        "2024-05-03T14:15:00+05:60",  # minutes out of range: the general parser words it
        "2024-05-03T14:15:00-00:00",
    ]
    for _ in range(2000):
        offset = rng.choice(
            ["Z", f"{rng.choice('+-')}{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}"]
        )
        frac = rng.choice(["", "." + "".join(rng.choices("0123456789", k=rng.randint(1, 6)))])
        cases.append(
            f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
            f"T{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 60):02d}"
            f"{frac}{offset}"
        )
    for text in cases:
        fast, general = _any_parse(text), _general_parse(text)
        assert fast == general, text
        if isinstance(fast, datetime):
            assert fast.tzinfo is UTC


def test_bool_is_not_an_epoch() -> None:
    with pytest.raises(TypeError):
        parse_timestamp(True)


def test_format_timestamp_naive_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_timestamp(datetime(2024, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        key_time(datetime(2024, 1, 1))  # noqa: DTZ001


def test_format_timestamp_converts_to_utc_and_truncates_millis() -> None:
    minus_eight = timezone(timedelta(hours=-8))
    moment = datetime(2021, 2, 2, 10, 30, 34, 909756, tzinfo=minus_eight)
    assert format_timestamp(moment) == "2021-02-02T18:30:34.909Z"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (2700, "PT45M"),
        (1152, "PT19M12S"),
        (0, "PT0S"),
        (0.004, "PT0S"),
        (951, "PT15M51S"),
        (93784, "PT26H3M4S"),
        (3600, "PT1H"),
        (3723.45, "PT1H2M3.45S"),
        (3.5, "PT3.5S"),
        (3.456, "PT3.46S"),
        (59.999, "PT1M"),
        (Decimal("7200.10"), "PT2H0.1S"),
    ],
)
def test_format_duration(seconds: float | Decimal, expected: str) -> None:
    assert format_duration(seconds) == expected


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_format_duration_rejects_bad_numbers(bad: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        format_duration(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT15M51S", Decimal(951)),
        ("P0D", Decimal(0)),
        ("P1DT2H3M4S", Decimal(93784)),
        ("PT1152S", Decimal(1152)),
        ("PT1H2M3.45S", Decimal("3723.45")),
        ("P1W", Decimal(604800)),
        ("PT0.5H", Decimal(1800)),
        ("P0Y0M1D", Decimal(86400)),
    ],
)
def test_parse_duration(text: str, seconds: Decimal) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "1 hour", "PT1.5M2S", "P1W2D", "PT01:02:03", "pt1s", "P-1D"]
)
def test_parse_duration_rejects_invalid(text: str) -> None:
    assert not is_iso_duration(text)
    with pytest.raises(ValueError, match="invalid"):
        parse_duration(text)


def test_parse_duration_rejects_calendar_units() -> None:
    assert is_iso_duration("P3Y")
    with pytest.raises(ValueError, match="calendar"):
        parse_duration("P3Y")


def test_duration_round_trip_is_canonical() -> None:
    assert format_duration(parse_duration("PT1152S")) == "PT19M12S"
    assert format_duration(parse_duration("P1DT2H3M4S")) == "PT26H3M4S"
