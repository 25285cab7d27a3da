"""Timestamp and duration formatting/parsing for xAPI and natural keys.

* :func:`format_timestamp` - the one statement timestamp form, ``YYYY-MM-DDThh:mm:ss.sssZ``.
* :func:`parse_timestamp` - lenient parser for vendor timestamps (vendors.md section 8.4).
* :func:`key_time` - whole-second UTC form used inside natural keys.
* :func:`format_duration` / :func:`parse_duration` - ISO 8601 durations, canonical form
  ``PT{h}H{m}M{s}S`` with zero components dropped and at most two decimals.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = [
    "format_duration",
    "format_timestamp",
    "is_canonical_duration",
    "is_iso_duration",
    "key_time",
    "parse_duration",
    "parse_strict_rfc3339",
    "parse_timestamp",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_ISO_TS = re.compile(
    r"""
    ^(?P<date>\d{4}-\d{2}-\d{2})
    (?:[Tt\ ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?)?
    \s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?$
    """,
    re.VERBOSE,
)
# Strict RFC 3339 with an in-range offset: exactly what `datetime.fromisoformat` and the general
# parser below read the same way (the general parser also takes what fromisoformat does not).
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)
_EPOCH_TEXT = re.compile(r"^(?P<sec>\d{1,12})(?:\.(?P<frac>\d{1,9}))?$")
_ZERO_DATE = re.compile(r"^0000-00-00(?:[T ]00:00(?::00(?:\.0+)?)?)?$")

_NUM = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"""
    ^P(?:
        (?P<weeks>{_NUM})W
      |
        (?:(?P<years>{_NUM})Y)?
        (?:(?P<months>{_NUM})M)?
        (?:(?P<days>{_NUM})D)?
        (?:T(?:(?P<hours>{_NUM})H)?(?:(?P<minutes>{_NUM})M)?(?:(?P<seconds>{_NUM})S)?)?
    )$
    """,
    re.VERBOSE,
)
# What `format_duration` writes: hours, minutes under 60, seconds under 60 with at most two
# decimals and no trailing zero, zero parts left out, "PT0S" for nothing. Most durations arrive
# in this form (the mapping helpers write it); recognising it is cheaper than parsing it.
_CANONICAL_DURATION = re.compile(
    r"PT0S|PT(?=\d)(?:[1-9]\d*H)?(?:(?:[1-9]|[1-5]\d)M)?"
    r"(?:(?:(?:[1-9]|[1-5]\d)(?:\.\d?[1-9])?|0\.\d?[1-9])S)?"
)
_DURATION_PARTS = ("years", "months", "days", "hours", "minutes", "seconds")
_SECONDS_PER = {
    "weeks": 604800,
    "days": 86400,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
}
_CENTI = Decimal("0.01")


def _require_aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()!r}: attach a time zone first")
    return dt.astimezone(UTC)


def format_timestamp(dt: datetime) -> str:
    """Format an aware datetime as UTC ``YYYY-MM-DDThh:mm:ss.sssZ`` (milliseconds truncated).

    Raises ``ValueError`` for naive datetimes.
    """
    # isoformat truncates to milliseconds (as this function always has) and is a third faster
    # than strftime; every statement's timestamp goes through here.
    return _require_aware(dt).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def key_time(dt: datetime) -> str:
    """UTC time truncated to whole seconds, ``YYYY-MM-DDTHH:MM:SSZ`` (natural-key form)."""
    return f"{_require_aware(dt):%Y-%m-%dT%H:%M:%S}Z"


def _from_epoch(seconds: int, micros: int = 0) -> datetime:
    return _EPOCH + timedelta(seconds=seconds, microseconds=micros)


def _frac_to_micros(frac: str | None) -> int:
    """Fractional-second digits -> microseconds, truncating beyond 6 digits."""
    if not frac:
        return 0
    return int(frac[:6].ljust(6, "0"))


def _parse_offset(tz: str) -> timedelta:
    if tz in ("Z", "z"):
        return timedelta(0)
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) > 2 else 0
    if hours > 23 or minutes > 59:
        raise ValueError(f"invalid UTC offset {tz!r}")
    return sign * timedelta(hours=hours, minutes=minutes)


def parse_strict_rfc3339(text: str) -> datetime | None:
    """``text`` as an aware UTC datetime when it is strict RFC 3339, else None.

    Strict: ``YYYY-MM-DDThh:mm:ss``, at most 6 fractional digits, ``Z`` or an in-range
    ``±hh:mm`` offset. That is the common case (most vendors, and every statement the hub
    writes), parsed in C by ``datetime.fromisoformat``; the timestamp parser and the statement
    validator try it first. Raises ValueError for an impossible date or time (``02-30``).
    """
    if _RFC3339.fullmatch(text) is None:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def parse_timestamp(text: str | int | None, *, assume_utc: bool = False) -> datetime | None:
    """Parse a vendor timestamp into an aware UTC datetime.

    Accepts ISO 8601 / RFC 3339 text (``T`` or space separator, any number of fractional
    digits, truncated to microseconds), epoch seconds as an ``int``, and Slack ``ts`` strings
    such as ``"1595926230.009600"`` (split on ``.``, no float math). ``None``, ``""`` and the
    MySQL zero date ``"0000-00-00 00:00:00"`` give ``None``. Text without a UTC offset is
    rejected unless ``assume_utc`` is true. Anything else raises ``ValueError``.
    """
    if text is None:
        return None
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise TypeError(f"unsupported timestamp type {type(text).__name__}")
    if isinstance(text, int):
        return _from_epoch(text)
    try:
        fast = parse_strict_rfc3339(text)
    except ValueError:
        fast = None  # e.g. February 30th: the general path below words the error
    if fast is not None:
        return fast
    value = text
    text = value.strip()
    if not text or _ZERO_DATE.match(text):
        return None
    epoch = _EPOCH_TEXT.match(text)
    if epoch:
        return _from_epoch(int(epoch["sec"]), _frac_to_micros(epoch["frac"]))
    match = _ISO_TS.match(text)
    if not match:
        raise ValueError(f"unrecognised timestamp {value!r}")
    try:
        year, month, day = (int(part) for part in match["date"].split("-"))
        local = datetime(
            year,
            month,
            day,
            hour=int(match["h"] or 0),
            minute=int(match["mi"] or 0),
            second=int(match["s"] or 0),
            microsecond=_frac_to_micros(match["frac"]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise ValueError(f"invalid timestamp {value!r}: {exc}") from exc
    tz = match["tz"]
    if tz is None:
        if not assume_utc:
            raise ValueError(f"timestamp {value!r} has no UTC offset (pass assume_utc=True)")
        offset = timedelta(0)
    else:
        offset = _parse_offset(tz)
    return local - offset


def _to_decimal(seconds: float | int | Decimal) -> Decimal:
    if isinstance(seconds, bool):
        raise TypeError("a bool is not a duration")
    try:
        dec = seconds if isinstance(seconds, Decimal) else Decimal(str(seconds))
    except InvalidOperation as exc:  # pragma: no cover - str(float) is always a number
        raise ValueError(f"invalid duration {seconds!r}") from exc
    if not dec.is_finite():
        raise ValueError(f"duration must be finite, got {seconds!r}")
    if dec < 0:
        raise ValueError(f"duration must not be negative, got {seconds!r}")
    return dec


def format_duration(seconds: float | int | Decimal) -> str:
    """Canonical ISO 8601 duration ``PT{h}H{m}M{s}S`` (zero parts dropped, centiseconds).

    ``0`` gives ``"PT0S"``; ``1152`` gives ``"PT19M12S"``; ``3.456`` gives ``"PT3.46S"``.
    """
    centis = int(_to_decimal(seconds).quantize(_CENTI, rounding=ROUND_HALF_UP) * 100)
    hours, rest = divmod(centis, 360000)
    minutes, sec_centis = divmod(rest, 6000)
    parts = []
    if hours:
        parts.append(f"{hours}H")
    if minutes:
        parts.append(f"{minutes}M")
    if sec_centis or not parts:
        whole, frac = divmod(sec_centis, 100)
        sec_text = str(whole) if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")
        parts.append(f"{sec_text}S")
    return "PT" + "".join(parts)


def _duration_match(text: str) -> re.Match[str] | None:
    match = _DURATION.match(text)
    if match is None:
        return None
    present = [name for name in ("weeks", *_DURATION_PARTS) if match[name] is not None]
    if not present:  # bare "P" or "PT"
        return None
    if text.endswith("T"):  # "P1DT" - a T needs at least one time component
        return None
    # Only the lowest-order (last) component may carry a decimal fraction.
    for name in present[:-1]:
        if any(sep in match[name] for sep in ".,"):
            return None
    return match


def is_canonical_duration(text: str) -> bool:
    """True when ``text`` is exactly what :func:`format_duration` writes for some length."""
    return _CANONICAL_DURATION.fullmatch(text) is not None


def is_iso_duration(text: str) -> bool:
    """True when ``text`` is an ISO 8601 duration as xAPI allows (``PnW`` not combined)."""
    return is_canonical_duration(text) or _duration_match(text) is not None


def parse_duration(text: str) -> Decimal:
    """Parse an ISO 8601 duration into seconds.

    ``PT15M51S`` -> 951, ``P0D`` -> 0, ``P1DT2H3M4S`` -> 93784, ``P1W`` -> 604800. Invalid
    text raises ``ValueError``; so do non-zero years or months, whose length in seconds
    depends on the calendar.
    """
    match = _duration_match(text)
    if match is None:
        raise ValueError(f"invalid ISO 8601 duration {text!r}")
    total = Decimal(0)
    for name, raw in match.groupdict().items():
        if raw is None:
            continue
        amount = Decimal(raw.replace(",", "."))
        if name in ("years", "months"):
            if amount:
                raise ValueError(f"duration {text!r} uses {name}; its length is calendar-dependent")
            continue
        total += amount * _SECONDS_PER[name]
    return total
