"""Field expressions of mapping files: JMESPath plus a small registry of pure transforms.

JMESPath (the `jmespath` package) selects values; it has no `eval`, no I/O and no loops beyond
projections, so a mapping file cannot run code (vendors.md 7.6 E). On top of the standard
functions this module registers:

===========================================  ===================================================
``to_datetime(v[, format[, tz]])``           ISO 8601 (with/without offset), ``epoch_s``,
                                             ``epoch_ms``, ``slack_ts`` or a ``strptime`` format
                                             -> ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``; a naive value
                                             needs ``tz`` (an IANA zone name, e.g. ``UTC``)
``key_time(v)``                              a `to_datetime` string truncated to whole seconds
                                             (the natural-key form of vendors.md 8.2)
``now()``                                    the receipt time of the event; the engine then marks
                                             the statement ``timestamp-inferred``
``seconds_to_duration(n)``                   ``1152`` -> ``PT19M12S``
``minutes_to_duration(n)``                   ``45`` -> ``PT45M``
``iso_duration(s)``                          validate and normalise, ``PT951S`` -> ``PT15M51S``
``scale(raw, min, max[, formula])``          score object; ``formula`` ``ratio`` (default,
                                             ``raw/max``, vendors.md 1.5) or ``minmax``
``percent_to_score(p)``                      raw p, min 0, max 100, scaled p/100
``lower``, ``trim``, ``urlencode``           strings
``concat(a, b, ...)``                        string concatenation (null if any part is null)
``template(fmt[, data])``                    ``'{base}/x/{data.id}'``: ``{base}``, ``{tenant}``,
                                             ``{source}``, ``{vendor}`` or a JMESPath over the
                                             item (or over ``data``); null if a value is null
``activity_id(kind, id)``                    the hub's activity IRI (vendors.md 1.6)
``sha1_mailto(email)``                       SHA-1 of ``mailto:<trimmed lower email>``
``map(value, table[, default])``             lookup in an object literal (``map(&expr, array)``
                                             keeps its standard meaning)
``coalesce(a, b, ...)``, ``default(x, y)``   the first non-null value
``exists(x)``                                ``x != null``
``split(s, sep)``                            a string -> an array of strings
``regex_extract(v, pattern[, group])``       ``re.search``; null when there is no match
===========================================  ===================================================

Transforms return null for a null input so that ``default()``/``coalesce()`` can supply a
fallback and so that required fields fail loudly in the engine instead of carrying a made-up
value. Wrong types raise `ExpressionError`.

``$envelope`` in an expression is the envelope of a batched body (see the engine). JMESPath has
no variables, so the text is rewritten to the quoted identifier ``"$envelope"`` before compiling.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar, cast
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
import jmespath.exceptions
import jmespath.functions

from connectors.webhook.compiled import compile_node
from hub.xapi import activity_iri, format_duration, parse_duration, parse_timestamp

__all__ = [
    "ENVELOPE_KEY",
    "Expression",
    "ExpressionError",
    "Scope",
    "compile_expression",
    "format_time",
    "function_names",
    "render_vars",
]

ENVELOPE_KEY = "$envelope"
_F = TypeVar("_F", bound=Callable[..., Any])
# jmespath ships no type information; this cast keeps its decorator from untyping our methods.
_signature = cast("Callable[..., Callable[[_F], _F]]", jmespath.functions.signature)
_ANY: dict[str, Any] = {"types": []}
_MORE: dict[str, Any] = {"types": [], "variadic": True}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]+)\}")
_VARS = ("base", "tenant", "source", "vendor")
_SEGMENT_SAFE = "-._~:@"


class ExpressionError(ValueError):
    """An expression could not be compiled or evaluated (bad syntax, wrong types)."""


@dataclass
class Scope:
    """What an evaluation may see besides its data: hub variables and the receipt time.

    ``root`` is the item the expression runs on (templates resolve paths against it).
    ``inferred_now`` is set when ``now()`` was called, so the engine can flag the timestamp.
    """

    base_iri: str
    source: str
    tenant: str
    vendor: str
    received_at: datetime
    root: Any = None
    inferred_now: bool = field(default=False)
    # Built once per scope (one item), not once per expression: constructing the function
    # table and options for each of the ~13 expressions of a template was a measured hot spot.
    _options: Any = field(default=None, repr=False, compare=False)

    def jmespath_options(self) -> Any:
        if self._options is None:
            self._options = jmespath.Options(custom_functions=_HubFunctions(self))
        return self._options

    def var(self, name: str) -> str:
        if name == "base":
            return self.base_iri.rstrip("/")
        return {"tenant": self.tenant, "source": self.source, "vendor": self.vendor}[name]


def format_time(dt: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ``, with ``.ffffff`` (trailing zeros dropped) when non-zero."""
    utc = dt.astimezone(UTC)
    text = f"{utc:%Y-%m-%dT%H:%M:%S}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _number(name: str, value: Any) -> int | float | None:
    """A JSON number, or a numeric string (CSV and form sources send text)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ExpressionError(f"{name}() needs a number, got a boolean")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            raise ExpressionError(f"{name}() needs a number, got {value!r}") from None
        if not dec.is_finite():
            raise ExpressionError(f"{name}() needs a finite number, got {value!r}")
        return int(dec) if dec == dec.to_integral_value() else float(dec)
    raise ExpressionError(f"{name}() needs a number, got {type(value).__name__}")


def _text(name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ExpressionError(f"{name}() needs a string, got {type(value).__name__}")


def _scalar_text(name: str, value: Any) -> str:
    """Text form of a scalar for templates and concat: ids may be numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise ExpressionError(f"{name}(): cannot use a {type(value).__name__} as text")


def _zone(tz: Any) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise ExpressionError("to_datetime() tz must be an IANA zone name such as 'UTC'")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"to_datetime(): unknown time zone {tz!r}") from None


def _epoch(value: Any, divisor: int) -> datetime:
    num = _number("to_datetime", value)
    if num is None:  # pragma: no cover - callers check for null first
        raise ExpressionError("to_datetime(): null epoch")
    dec = Decimal(str(num)) / divisor
    seconds = int(dec)
    micros = int((dec - seconds) * 1_000_000)
    result = parse_timestamp(seconds)
    assert result is not None  # noqa: S101 - parse_timestamp(int) never returns None
    return result.replace(microsecond=micros) if micros >= 0 else result


def _to_datetime(value: Any, fmt: Any, tz: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if fmt in ("epoch_s", "epoch_ms"):
        return _epoch(value, 1000 if fmt == "epoch_ms" else 1)
    if fmt is not None and fmt not in ("iso", "slack_ts"):
        if not isinstance(fmt, str) or "%" not in fmt:
            raise ExpressionError(f"to_datetime(): unknown format {fmt!r}")
        text = _text("to_datetime", value)
        assert text is not None  # noqa: S101 - value is not None here
        try:
            parsed = datetime.strptime(text, fmt)  # noqa: DTZ007 - zone attached below
        except ValueError:
            raise ExpressionError(f"to_datetime(): {text!r} does not match {fmt!r}") from None
        if parsed.tzinfo is None:
            if tz is None:
                raise ExpressionError("to_datetime(): naive time; give tz (e.g. 'UTC')")
            parsed = parsed.replace(tzinfo=_zone(tz))
        return parsed.astimezone(UTC)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ExpressionError(f"to_datetime() cannot parse a {type(value).__name__}")
    if isinstance(value, float):
        return _epoch(value, 1)
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        if tz is None or "no UTC offset" not in str(exc):
            raise ExpressionError(f"to_datetime(): {exc}") from None
    # A naive wall-clock time in a named zone (CoachAccountable's account timezone): parse it
    # as if UTC, then re-read the same wall-clock fields in the zone.
    try:
        as_utc = parse_timestamp(value, assume_utc=True)
    except ValueError as exc:  # pragma: no cover - the first parse only failed on the offset
        raise ExpressionError(f"to_datetime(): {exc}") from None
    assert as_utc is not None  # noqa: S101 - empty/zero dates returned above
    return as_utc.replace(tzinfo=_zone(tz)).astimezone(UTC)


def _score(raw: Any, low: Any, high: Any, formula: str) -> dict[str, Any] | None:
    r, lo, hi = (_number("scale", v) for v in (raw, low, high))
    if r is None:
        return None
    if lo is None or hi is None:
        # vendors.md 1.5: never invent a max.
        raise ExpressionError("scale() needs min and max")
    if not lo < hi:
        raise ExpressionError(f"scale(): min {lo} must be below max {hi}")
    if not lo <= r <= hi:
        raise ExpressionError(f"scale(): raw {r} outside [{lo}, {hi}]")
    if formula == "ratio":
        if hi <= 0:
            raise ExpressionError("scale(): the raw/max formula needs a positive max")
        scaled = r / hi
    elif formula == "minmax":
        scaled = (r - lo) / (hi - lo)
    else:
        raise ExpressionError(f"scale(): unknown formula {formula!r} (ratio or minmax)")
    if not -1 <= scaled <= 1:
        raise ExpressionError(f"scale(): scaled {scaled} outside [-1, 1]")
    return {"scaled": scaled, "raw": r, "min": lo, "max": hi}


class _HubFunctions(jmespath.functions.Functions):
    """The transform registry. One instance per evaluation, bound to its `Scope`."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    # jmespath's "variadic" means "this argument or more", so optional arguments are declared
    # as one variadic slot and their count is checked by hand.
    @_signature(_MORE)
    def _func_to_datetime(self, value: Any, *rest: Any) -> str | None:
        if len(rest) > 2:
            raise ExpressionError("to_datetime() takes 1 to 3 arguments")
        fmt = rest[0] if rest else None
        tz = rest[1] if len(rest) > 1 else None
        dt = _to_datetime(value, fmt, tz)
        return None if dt is None else format_time(dt)

    @_signature(_ANY)
    def _func_key_time(self, value: Any) -> str | None:
        dt = _to_datetime(value, None, None)
        return None if dt is None else f"{dt:%Y-%m-%dT%H:%M:%S}Z"

    @_signature()
    def _func_now(self) -> str:
        # The receipt time, not the wall clock: a replay of the event gives the same value.
        self.scope.inferred_now = True
        return format_time(self.scope.received_at)

    @_signature(_ANY)
    def _func_seconds_to_duration(self, value: Any) -> str | None:
        num = _number("seconds_to_duration", value)
        if num is None:
            return None
        if num < 0:
            raise ExpressionError(f"seconds_to_duration(): negative duration {num}")
        return format_duration(Decimal(str(num)))

    @_signature(_ANY)
    def _func_minutes_to_duration(self, value: Any) -> str | None:
        num = _number("minutes_to_duration", value)
        if num is None:
            return None
        if num < 0:
            raise ExpressionError(f"minutes_to_duration(): negative duration {num}")
        return format_duration(Decimal(str(num)) * 60)

    @_signature(_ANY)
    def _func_iso_duration(self, value: Any) -> str | None:
        text = _text("iso_duration", value)
        if text is None:
            return None
        try:
            return format_duration(parse_duration(text.strip()))
        except ValueError as exc:
            raise ExpressionError(f"iso_duration(): {exc}") from None

    @_signature(_ANY, _ANY, _MORE)
    def _func_scale(self, raw: Any, low: Any, high: Any, *rest: Any) -> dict[str, Any] | None:
        if len(rest) > 1:
            raise ExpressionError("scale() takes 3 or 4 arguments")
        formula = rest[0] if rest else "ratio"
        return _score(raw, low, high, formula if isinstance(formula, str) else "?")

    @_signature(_ANY)
    def _func_percent_to_score(self, value: Any) -> dict[str, Any] | None:
        return _score(value, 0, 100, "ratio")

    @_signature(_ANY)
    def _func_lower(self, value: Any) -> str | None:
        text = _text("lower", value)
        return None if text is None else text.lower()

    @_signature(_ANY)
    def _func_trim(self, value: Any) -> str | None:
        text = _text("trim", value)
        return None if text is None else text.strip()

    @_signature(_ANY)
    def _func_urlencode(self, value: Any) -> str | None:
        if value is None:
            return None
        return quote(_scalar_text("urlencode", value), safe="")

    @_signature(_MORE)
    def _func_concat(self, *parts: Any) -> str | None:
        if any(p is None for p in parts):
            return None
        return "".join(_scalar_text("concat", p) for p in parts)

    @_signature(_MORE)
    def _func_template(self, fmt: Any, *rest: Any) -> str | None:
        if not isinstance(fmt, str):
            raise ExpressionError("template() needs a format string")
        if len(rest) > 1:
            raise ExpressionError("template() takes 1 or 2 arguments")
        data = rest[0] if rest else self.scope.root
        return _render(fmt, self.scope, data, allow_paths=True)

    @_signature(_ANY, _ANY)
    def _func_activity_id(self, kind: Any, source_id: Any) -> str | None:
        if source_id is None:
            return None
        if not isinstance(kind, str):
            raise ExpressionError("activity_id() needs a kind string")
        try:
            return activity_iri(
                self.scope.base_iri,
                source=self.scope.source,
                tenant=self.scope.tenant,
                kind=kind,
                source_id=_scalar_text("activity_id", source_id),
            )
        except ValueError as exc:
            raise ExpressionError(f"activity_id(): {exc}") from None

    @_signature(_ANY)
    def _func_sha1_mailto(self, value: Any) -> str | None:
        text = _text("sha1_mailto", value)
        if text is None or not text.strip():
            return None
        iri = "mailto:" + text.strip().lower()
        return hashlib.sha1(iri.encode("utf-8"), usedforsecurity=False).hexdigest()

    @_signature(_ANY, _MORE)
    def _func_map(self, first: Any, second: Any, *rest: Any) -> Any:
        if type(first).__name__ == "_Expression":
            # The standard map(&expr, array), which a table lookup must not break.
            if rest or not isinstance(second, list):
                raise ExpressionError("map(&expr, array) takes an expression and an array")
            return [first.visit(first.expression, item) for item in second]
        if not isinstance(second, dict):
            raise ExpressionError("map(value, table[, default]) needs an object table")
        if len(rest) > 1:
            raise ExpressionError("map() takes 2 or 3 arguments")
        fallback = rest[0] if rest else None
        if first is None:
            return fallback
        return second.get(_scalar_text("map", first), fallback)

    @_signature(_MORE)
    def _func_coalesce(self, *values: Any) -> Any:
        return next((v for v in values if v is not None), None)

    @_signature(_ANY, _ANY)
    def _func_default(self, value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    @_signature(_ANY)
    def _func_exists(self, value: Any) -> bool:
        return value is not None

    @_signature(_ANY, _ANY)
    def _func_split(self, value: Any, sep: Any) -> list[str] | None:
        text = _text("split", value)
        if not isinstance(sep, str) or not sep:
            raise ExpressionError("split() needs a non-empty separator string")
        return None if text is None else text.split(sep)

    @_signature(_ANY, _MORE)
    def _func_regex_extract(self, value: Any, pattern: Any, *rest: Any) -> str | None:
        text = _text("regex_extract", value)
        if not isinstance(pattern, str):
            raise ExpressionError("regex_extract() needs a pattern string")
        if len(rest) > 1:
            raise ExpressionError("regex_extract() takes 2 or 3 arguments")
        group = rest[0] if rest else 1
        if text is None:
            return None
        try:
            match = _regex(pattern).search(text)
            if match is None:
                return None
            found = match.group(group)
        except (re.error, IndexError, TypeError) as exc:
            raise ExpressionError(f"regex_extract(): {exc}") from None
        return found if isinstance(found, str) else None


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def function_names() -> frozenset[str]:
    """Every function an expression may call (standard JMESPath plus the hub's transforms)."""
    return frozenset(_HubFunctions.FUNCTION_TABLE)


def _rewrite_envelope(text: str) -> str:
    """Quote ``$envelope`` outside string literals so JMESPath reads it as an identifier."""
    out: list[str] = []
    quote_char: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote_char is not None:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote_char:
                quote_char = None
        elif ch in "'\"`":
            quote_char = ch
            out.append(ch)
        elif text.startswith(ENVELOPE_KEY, i):
            out.append(f'"{ENVELOPE_KEY}"')
            i += len(ENVELOPE_KEY)
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _functions_used(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if current.get("type") == "function_expression":
                found.add(str(current.get("value")))
            stack.extend(current.get("children", []))
        elif isinstance(current, list):
            stack.extend(current)
    return found


class Expression:
    """A compiled JMESPath expression; compile errors and unknown functions fail at config time."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            # jmespath only warns about its deprecated literal forms (e.g. `foo` for a string);
            # a mapping is new code, so those are errors here.
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                self._parsed = jmespath.compile(_rewrite_envelope(text))
        except (jmespath.exceptions.JMESPathError, ValueError, Warning) as exc:
            raise ExpressionError(f"invalid expression {text!r}: {exc}") from None
        unknown = _functions_used(self._parsed.parsed) - function_names()
        if unknown:
            raise ExpressionError(f"unknown function(s) {sorted(unknown)} in {text!r}")
        # The common shapes run as plain closures (same semantics); the rest is interpreted.
        self._compiled = compile_node(self._parsed.parsed)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def search(self, data: Any, scope: Scope) -> Any:
        """Evaluate over ``data``; `ExpressionError` for any evaluation failure."""
        try:
            if self._compiled is not None:
                return self._compiled(data, scope)
            return self._parsed.search(data, options=scope.jmespath_options())
        except ExpressionError:
            raise
        except jmespath.exceptions.JMESPathError as exc:
            raise ExpressionError(f"{self.text!r}: {exc}") from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            # Standard functions can still trip over odd data (e.g. sort of mixed types).
            raise ExpressionError(f"{self.text!r}: {exc}") from None


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> Expression:
    """Compile (and cache) an expression."""
    return Expression(text)


_LITERAL, _VAR, _PATH, _ERROR = 0, 1, 2, 3


@lru_cache(maxsize=1024)
def _template_parts(fmt: str, allow_paths: bool) -> tuple[tuple[tuple[int, Any], ...], bool]:
    """A template split once into literal text, hub variables and compiled paths, plus whether
    its tail has unbalanced braces (reported at render time, after the parts, as before)."""
    parts: list[tuple[int, Any]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(fmt):
        if match.start() > pos:
            parts.append((_LITERAL, fmt[pos : match.start()]))
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append((_LITERAL, token[0]))
            continue
        name = match.group(1).strip()
        if name in _VARS:
            parts.append((_VAR, name))
        elif not allow_paths:
            parts.append((_ERROR, f"unknown placeholder {{{name}}} (use {', '.join(_VARS)})"))
        else:
            parts.append((_PATH, compile_expression(name)))
    tail = fmt[pos:]
    if tail:
        parts.append((_LITERAL, tail))
    return tuple(parts), "{" in tail or "}" in tail


def _render(fmt: str, scope: Scope, data: Any, *, allow_paths: bool) -> str | None:
    parts, bad_tail = _template_parts(fmt, allow_paths)
    out: list[str] = []
    for kind, part in parts:
        if kind == _LITERAL:
            out.append(part)
        elif kind == _VAR:
            out.append(scope.var(part))
        elif kind == _ERROR:
            raise ExpressionError(part)
        else:
            value = part.search(data, scope)
            if value is None:
                return None
            out.append(_scalar_text("template", value))
    if bad_tail:
        raise ExpressionError(f"unbalanced braces in template {fmt!r}")
    return "".join(out)


def render_vars(text: str, scope: Scope) -> str:
    """Fill only the hub variables (``{base}``, ``{tenant}``, ...): used for extension keys."""
    rendered = _render(text, scope, None, allow_paths=False)
    assert rendered is not None  # noqa: S101 - no paths, so never null
    return rendered


def check_vars(text: str) -> None:
    """Raise ExpressionError unless ``text`` uses only hub-variable placeholders."""
    probe = Scope("https://x.invalid", "s", "t", "v", datetime(2000, 1, 1, tzinfo=UTC))
    render_vars(text, probe)


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """``value`` if it is a JSON object, else None."""
    return value if isinstance(value, dict) else None
