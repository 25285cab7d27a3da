"""The poll part of the mapping-file format (``mode: poll``), vendors.md 7.6 and 7.7.

A poll mapping names one or more report **requests** (URL, params and header templates, the
response format), how rows are told apart between polls (a **watermark** time window with an
overlap, or a **snapshot** diff keyed by ``snapshot.row_id``) and the vendor's **rate limit**.
The routes that turn rows into statements are the same as in webhook mode.

Templates (``url``, ``params``, ``headers``, ``envelope``) use ``{name}`` placeholders:

* ``{base_url}``: the instance's ``settings.poll.base_url`` (never in the mapping: it is tenant
  configuration, e.g. Together's regional host);
* ``{watermark}``, ``{until}``: the start and end of the time window (watermark mode only), with
  the ``:date`` suffix for ``YYYY-MM-DD`` (``{watermark:date}``); ``{now}`` is the clock;
* ``{<variable>}``: ``settings.poll.variables``, falling back to the mapping's ``variables``;
* ``{secret:<name>}``: a value from ``settings.secrets``, in **headers only** (query strings end
  up in access logs and in httpx's request log).

This module depends on `expressions` only, so `spec` can import it without a cycle. Field names
avoid the words the conformance kit reads as secrets (``key``, ``token``): the kit walks the
mapping model too.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from connectors.webhook.expressions import ExpressionError, compile_expression
from hub.xapi import parse_duration

__all__ = [
    "PLACEHOLDER",
    "WINDOW_NAMES",
    "Duration",
    "PollRequestSpec",
    "PollRequests",
    "RateLimitSpec",
    "SnapshotSpec",
    "duration_seconds",
    "placeholders",
]

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z0-9_.\-]+))?\}")
"""``{name}``, ``{name:modifier}`` (``{secret:api_key}``, ``{watermark:date}``), ``{{``, ``}}``."""
WINDOW_NAMES = frozenset({"watermark", "until"})
"""Placeholders that exist only in watermark mode."""
_BUILTIN = frozenset({"base_url", "now", "secret", *WINDOW_NAMES})
_DATE_MODIFIERS = frozenset({"date", "datetime"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def placeholders(template: str) -> list[tuple[str, str | None]]:
    """The ``(name, modifier)`` placeholders of a template; ValueError on unbalanced braces."""
    found: list[tuple[str, str | None]] = []
    rest = PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise ValueError(f"unbalanced or invalid placeholder in {template!r}")
    for match in PLACEHOLDER.finditer(template):
        if match.group(1) is not None:
            found.append((match.group(1), match.group(2)))
    return found


def _check_template(template: str, *, secrets: bool) -> None:
    for name, modifier in placeholders(template):
        if name == "secret":
            if not secrets:
                raise ValueError(f"{{secret:…}} is allowed in headers only: {template!r}")
            if modifier is None:
                raise ValueError(f"name the secret: {{secret:<name>}} in {template!r}")
        elif name in ("watermark", "until", "now"):
            if modifier is not None and modifier not in _DATE_MODIFIERS:
                raise ValueError(f"{{{name}:{modifier}}}: use :date or :datetime")
        elif modifier is not None:
            raise ValueError(f"{{{name}:{modifier}}}: only times and secrets take a modifier")


def duration_seconds(text: str) -> float:
    """Seconds of an ISO 8601 duration (``P1D``, ``PT1M``); ValueError otherwise."""
    return float(parse_duration(text))


def _duration(text: str) -> str:
    if duration_seconds(text) <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return text


def _expr(value: str) -> str:
    try:
        compile_expression(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return value


Duration = Annotated[str, AfterValidator(_duration)]
"""A positive ISO 8601 duration, kept as text (``P1D``)."""
Expr = Annotated[str, Field(min_length=1), AfterValidator(_expr)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PollRequestSpec(_Spec):
    """One report request. Several requests (Together's user, pairing and session reports)
    are polled in turn, one per `poll()` call."""

    name: Annotated[str, Field(pattern=_NAME.pattern)] = "default"
    method: Literal["GET", "POST"] = "GET"
    url: str
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    format: Literal["json", "csv", "csv_in_json"] = "json"
    report_path: Expr | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    envelope: dict[str, str] = Field(default_factory=dict)
    max_response_bytes: int = Field(default=50 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> PollRequestSpec:
        if self.format == "csv_in_json" and self.report_path is None:
            raise ValueError("format csv_in_json needs report_path (where the CSV text is)")
        if self.format != "csv_in_json" and self.report_path is not None:
            raise ValueError("report_path is for format csv_in_json only")
        if self.columns and self.format == "json":
            raise ValueError("columns renames CSV headers: use it with csv or csv_in_json")
        if not self.url.startswith(("{base_url}", "https://")):
            raise ValueError("url must start with {base_url} or https://")
        _check_template(self.url, secrets=False)
        for value in self.params.values():
            _check_template(value, secrets=False)
        for header, value in self.headers.items():
            if not _HEADER.match(header):
                raise ValueError(f"{header!r} is not a header name")
            _check_template(value, secrets=True)
        for field, value in self.envelope.items():
            if field == "request":
                raise ValueError("envelope.request is reserved (it holds the request name)")
            _check_template(value, secrets=False)
            if any(name in WINDOW_NAMES or name == "now" for name, _ in placeholders(value)):
                # Envelope values end up in events; time-window values would make the same row
                # look different on every poll.
                raise ValueError("envelope values cannot use {watermark}, {until} or {now}")
        return self

    def templates(self) -> list[str]:
        """Every template string of the request (for placeholder checks)."""
        return [
            self.url,
            *self.params.values(),
            *self.headers.values(),
            *self.envelope.values(),
        ]

    def variables_used(self) -> set[str]:
        """Variable names (not built-ins) the templates use."""
        return {
            name for t in self.templates() for name, _ in placeholders(t) if name not in _BUILTIN
        }

    def uses_window(self) -> bool:
        return any(name in WINDOW_NAMES for t in self.templates() for name, _ in placeholders(t))


def _requests(value: Any) -> Any:
    """``request:`` is one object or a list of them."""
    if isinstance(value, dict):
        return [value]
    return value


PollRequests = Annotated[list[PollRequestSpec], BeforeValidator(_requests)]


class SnapshotSpec(_Spec):
    """Snapshot diff: a row is new when its ``row_id`` was not in the previous response.

    ``row_id`` should include whatever makes a row a new *fact* (Together: the record id and its
    status, so a session that turns Completed is new). A null ``row_id`` falls back to a hash of
    the whole row.
    """

    row_id: Expr


class RateLimitSpec(_Spec):
    """The vendor's published limit: ``requests`` per ``per_seconds`` (Together: 1 per 60).

    Requests are spaced evenly (``per_seconds / requests`` apart); a call that comes too soon
    raises RateLimited with the wait, without touching the vendor's API.
    """

    requests: int = Field(default=1, ge=1)
    per_seconds: float = Field(gt=0)
    backoff_max_seconds: float = Field(default=3600, gt=0)

    @property
    def spacing(self) -> float:
        return self.per_seconds / self.requests
