"""Poll mode of the generic connector: report APIs without webhooks (vendors.md 7.2, 7.4, 7.6).

One `poll()` call is ONE request of the mapping (STYLE §2): the request is rendered from its
templates, sent through ``runtime.http``, classified by `hub.http.classify_source_response`,
decoded (JSON, CSV, or CSV inside JSON such as Together's ``{"report": "<CSV>"}``), exploded into
items by the same engine as webhook mode, and turned into `SourceEvent`s with ``via="poll"``.

Which rows are new is decided by the mapping's cursor kind:

* **watermark** (Sparkwise): a time window ``[mark - overlap, until]`` per request, where
  ``until`` is the worker's signpost; ``watermark_window`` splits a long catch-up into pages.
  After the last window the mark becomes the newest row time (``watermark`` expression) or the
  window end. The mark never passes ``until``; the overlap re-reads late rows, which the inbox
  drops by delivery id and the LRS by statement id.
* **snapshot** (Together): the whole report every time; a row is new when its ``row_id`` hash was
  not in the previous response. The hashes live in ``runtime.state`` under a *generation* that the
  cursor names, so the new snapshot only counts once the worker has saved the cursor, i.e. after
  the events were enqueued. A crash in between re-emits the rows (at-least-once), it never loses
  them.

Several requests (Together's user, pairing and session reports) are polled in turn: the cursor
names the next one and ``has_more`` stays true until each has been read in this cycle.

Rate limits: the mapping's ``rate_limit`` spaces requests (in-process with
`hub.ratelimit.RateLimiter`, and across processes and restarts through ``runtime.state``). A call
that comes too soon raises `RateLimited` with the wait and sends nothing. A 429 or 5xx answer
pushes the next allowed request out exponentially (``Retry-After`` wins when the vendor sends it).
"One request in flight" holds because the worker polls an instance under a lock.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from connectors.webhook.engine import (
    DEFAULT_EVENT_TYPE,
    UNKNOWN_EVENT_TYPE,
    ExplodedItem,
    MappingEngine,
)
from connectors.webhook.expressions import ENVELOPE_KEY, ExpressionError, Scope, compile_expression
from connectors.webhook.pollspec import PLACEHOLDER, PollRequestSpec, duration_seconds
from connectors.webhook.spec import MappingSpec
from hub import (
    BadRequest,
    Clock,
    ConfigError,
    ConnectorRuntime,
    ConnectorSettings,
    Cursor,
    KeyValue,
    PermanentError,
    PollResult,
    RateLimited,
    RateLimiter,
    SourceEvent,
    TransientError,
    classify_source_response,
    send_with_retry,
    signpost,
)
from hub.xapi import parse_timestamp

__all__ = ["PollCursor", "PollSettings", "Poller", "StreamCursor", "decode_rows"]

logger = logging.getLogger(__name__)

_STATE_PREFIX = "poll:"
_NOT_BEFORE = _STATE_PREFIX + "not-before"
_FAILURES = _STATE_PREFIX + "failures"
_DEFAULT_BACKOFF = 60.0
_HASH_CHARS = 32  # 128 bits of SHA-256: collisions are not a concern at report sizes


class PollSettings(ConnectorSettings):
    """Instance settings of poll mode (``settings.poll``); the mapping holds the rest."""

    base_url: HttpUrl = Field(
        description="the vendor API's base URL, e.g. https://api.togetherplatform.com "
        "(regional hosts differ); fills {base_url} in the request templates"
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="template variables, e.g. organization_id; override the mapping's variables",
    )
    columns: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per request name, {field: CSV header} overriding the mapping's assumed "
        "column names (fix them here after capturing a real export)",
    )
    start: AwareDatetime | None = Field(
        default=None,
        description="watermark mode: where the first poll starts (default: the mapping's "
        "watermark_start before now)",
    )


class StreamCursor(BaseModel):
    """Where one request stands: a time mark (watermark mode) or a snapshot generation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mark: AwareDatetime | None = None
    generation: int | None = Field(default=None, ge=1)


class PollCursor(Cursor):
    """The poll-mode cursor: the next request to read and each request's own position."""

    next_request: int = Field(default=0, ge=0)
    streams: dict[str, StreamCursor] = Field(default_factory=dict)


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime


def _fmt(dt: datetime, modifier: str | None) -> str:
    if modifier == "date":
        return f"{dt:%Y-%m-%d}"
    return f"{dt:%Y-%m-%dT%H:%M:%S}Z"


def _cell(value: Any) -> Any:
    # CSV has no null: an empty cell is null in poll mode, so coalesce()/exists() work.
    return None if value == "" else value


def decode_rows(text: str, columns: dict[str, str]) -> list[dict[str, Any]]:
    """CSV text -> rows; ``columns`` renames headers ``{field: header}``. Raises ValueError."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), restkey="_extra", restval="")
    header_to_field = {header: field for field, header in columns.items()}
    rows: list[dict[str, Any]] = []
    for row in reader:
        rows.append({header_to_field.get(k, k): _cell(v) for k, v in row.items()})
    if columns and reader.fieldnames is not None:
        missing = sorted(set(columns.values()) - set(reader.fieldnames))
        if missing and len(missing) == len(set(columns.values())):
            raise ValueError(
                f"none of the configured columns is in the CSV header (got {reader.fieldnames})"
            )
        if missing:
            logger.warning("CSV columns not found (their fields are null): %s", missing)
        for row in rows:
            for field in columns:
                row.setdefault(field, None)
    return rows


class Poller:
    """Runs the poll side of one generic-connector instance (see the module docstring)."""

    def __init__(
        self,
        *,
        spec: MappingSpec,
        engine: MappingEngine,
        settings: PollSettings,
        secret: Callable[[str], SecretStr | None],
        runtime: ConnectorRuntime,
        scope: Callable[[datetime], Scope],
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.settings = settings
        self.requests = spec.poll_requests
        self.runtime = runtime
        self._secret = secret
        self._scope = scope
        self.overlap = timedelta(seconds=duration_seconds(spec.watermark_overlap or "PT0S"))
        self.window = (
            timedelta(seconds=duration_seconds(spec.watermark_window))
            if spec.watermark_window
            else None
        )
        self.lookback = timedelta(seconds=duration_seconds(spec.watermark_start))
        self.snapshot = spec.snapshot is not None
        limit = spec.rate_limit
        self._limiter = (
            RateLimiter(rate=limit.requests / limit.per_seconds, burst=1, clock=runtime.clock)
            if limit
            else None
        )
        self._check_config()

    # --- configuration -----------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @property
    def state(self) -> KeyValue:
        return self.runtime.state

    def _variables(self) -> dict[str, str]:
        return {**self.spec.variables, **self.settings.variables}

    def columns(self, request: PollRequestSpec) -> dict[str, str]:
        """The request's ``{field: CSV header}``: the mapping's, overridden by the settings."""
        return {**request.columns, **self.settings.columns.get(request.name, {})}

    def _check_config(self) -> None:
        """Fail at start-up (ConfigError) for a missing variable or secret, not at 3 a.m."""
        unknown = sorted(set(self.settings.columns) - {r.name for r in self.requests})
        if unknown:
            raise ConfigError(f"settings.poll.columns names unknown requests {unknown}")
        probe = _Window(self.clock.now(), self.clock.now())
        for request in self.requests:
            self._render_request(request, probe)
            self.envelope(request)

    # --- templates ---------------------------------------------------------------------------

    def _render(self, template: str, window: _Window | None, *, secrets: bool = False) -> str:
        variables = self._variables()
        base_url = str(self.settings.base_url).rstrip("/")

        def fill(match: Any) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return str(token[0])
            name, modifier = match.group(1), match.group(2)
            if name == "base_url":
                return base_url
            if name == "now":
                return _fmt(self.clock.now(), modifier)
            if name in ("watermark", "until"):
                if window is None:
                    raise ConfigError(f"{{{name}}} is only available in watermark mode")
                return _fmt(window.start if name == "watermark" else window.end, modifier)
            if name == "secret":
                value = self._secret(modifier) if secrets else None
                if value is None:
                    raise ConfigError(
                        f"webhook {self.spec.source}: secret {modifier!r} is not in "
                        "settings.secrets"
                    )
                return value.get_secret_value()
            if name not in variables:
                raise ConfigError(
                    f"webhook {self.spec.source}: template variable {name!r} is not set "
                    "(settings.poll.variables)"
                )
            return variables[name]

        return str(PLACEHOLDER.sub(fill, template))

    def _render_request(self, request: PollRequestSpec, window: _Window | None) -> httpx.Request:
        url = self._render(request.url, window)
        params = {k: self._render(v, window) for k, v in request.params.items()}
        headers = {k: self._render(v, window, secrets=True) for k, v in request.headers.items()}
        return self.runtime.http.build_request(
            request.method, url, params=params or None, headers=headers
        )

    def envelope(self, request: PollRequestSpec) -> dict[str, Any]:
        """The literal envelope every row of `request` carries (``$envelope.request`` etc.)."""
        values: dict[str, Any] = {k: self._render(v, None) for k, v in request.envelope.items()}
        values["request"] = request.name
        return values

    # --- cursor ------------------------------------------------------------------------------

    def initial_cursor(self, since: datetime) -> PollCursor:
        """Every request starts at `since` (watermark mode) or with no snapshot."""
        if self.snapshot:
            return PollCursor()
        return PollCursor(streams={r.name: StreamCursor(mark=since) for r in self.requests})

    def _first_cursor(self, until: datetime) -> PollCursor:
        return self.initial_cursor(self.settings.start or until - self.lookback)

    # --- the poll ----------------------------------------------------------------------------

    def poll(self, cursor: PollCursor | None, *, until: datetime) -> PollResult[PollCursor]:
        """Read ONE request (see the module docstring)."""
        cursor = cursor or self._first_cursor(until)
        index = cursor.next_request % len(self.requests)
        request = self.requests[index]
        stream = cursor.streams.get(request.name, StreamCursor())
        now = self.clock.now()
        if self.snapshot:
            raw = self._fetch(request, None)
            items = self.items(request, raw, received_at=now)
            items, stream = self._diff(request, items, stream)
            done = True
        else:
            mark = stream.mark or self._first_cursor(until).streams[request.name].mark
            assert mark is not None  # noqa: S101 - watermark cursors always carry a mark
            window = self._window(mark, until)
            raw = self._fetch(request, window)
            items = self.items(request, raw, received_at=now)
            done = window.end >= until.replace(microsecond=0)
            stream = StreamCursor(mark=self._next_mark(mark, window, items, done, until, now))
        next_index = index + 1 if done else index
        has_more = next_index < len(self.requests)
        streams = {**cursor.streams, request.name: stream}
        next_cursor = PollCursor(next_request=next_index % len(self.requests), streams=streams)
        events = [self._event(item, now) for item in items]
        return PollResult(events=events, next_cursor=next_cursor, has_more=has_more)

    def _window(self, mark: datetime, until: datetime) -> _Window:
        end = until if self.window is None else min(until, mark + self.window)
        end = max(end, mark) if mark <= until else until  # a window never runs backwards
        end = end.replace(microsecond=0)  # requests carry whole seconds; so does the mark
        return _Window(start=(mark - self.overlap).replace(microsecond=0), end=end)

    def _next_mark(
        self,
        mark: datetime,
        window: _Window,
        items: list[ExplodedItem],
        done: bool,
        until: datetime,
        now: datetime,
    ) -> datetime:
        candidate = window.end
        if done and self.spec.watermark is not None:
            newest = self._newest(items, now)
            # The newest row time, never past the window end (rows dated in the future, e.g.
            # scheduled sessions, must not push the mark past data not yet read).
            candidate = mark if newest is None else min(window.end, newest)
        return signpost(until, max(mark, candidate))

    def _newest(self, items: list[ExplodedItem], now: datetime) -> datetime | None:
        if not items or self.spec.watermark is None:
            return None
        rows = [{k: v for k, v in i.payload.items() if k != ENVELOPE_KEY} for i in items]
        scope = self._scope(now)
        scope.root = rows
        try:
            value = compile_expression(self.spec.watermark).search(rows, scope)
            return parse_timestamp(value) if value is not None else None
        except (ExpressionError, ValueError, TypeError) as exc:
            raise PermanentError(
                f"{self.spec.source}: watermark expression failed: {exc}"
            ) from None

    # --- snapshot diff -----------------------------------------------------------------------

    def row_hash(self, request: PollRequestSpec, item: ExplodedItem, scope: Scope) -> str:
        """The snapshot identity of a row: hash of the request name and its ``row_id``."""
        assert self.spec.snapshot is not None  # noqa: S101 - snapshot mode only
        data = self.engine.data(item.payload)
        scope.root = data
        try:
            value = compile_expression(self.spec.snapshot.row_id).search(data, scope)
        except ExpressionError as exc:
            raise PermanentError(f"{self.spec.source}: snapshot.row_id failed: {exc}") from None
        if value is None:
            row = {k: v for k, v in item.payload.items() if k != ENVELOPE_KEY}
            value = json.dumps(row, sort_keys=True, separators=(",", ":"))
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        digest = hashlib.sha256(f"{request.name}\x1f{text}".encode()).hexdigest()
        return digest[:_HASH_CHARS]

    def _snapshot_key(self, request: PollRequestSpec, generation: int) -> str:
        return f"{_STATE_PREFIX}{request.name}:snapshot:{generation}"

    def _diff(
        self, request: PollRequestSpec, items: list[ExplodedItem], stream: StreamCursor
    ) -> tuple[list[ExplodedItem], StreamCursor]:
        scope = self._scope(self.clock.now())
        hashes = [self.row_hash(request, item, scope) for item in items]
        previous: set[str] = set()
        if stream.generation is not None:
            saved = self.state.get(self._snapshot_key(request, stream.generation))
            if saved is None:
                logger.warning(
                    "snapshot %s of %s is gone from the state store; all rows count as new",
                    stream.generation,
                    request.name,
                )
            else:
                previous = set(json.loads(saved))
        fresh: list[ExplodedItem] = []
        seen_now: set[str] = set()
        for item, digest in zip(items, hashes, strict=True):
            if digest not in previous and digest not in seen_now:
                fresh.append(item)
            seen_now.add(digest)
        generation = (stream.generation or 0) + 1
        try:
            self.state.set(self._snapshot_key(request, generation), json.dumps(sorted(seen_now)))
        except RuntimeError:
            raise ConfigError(
                "snapshot polling keeps the previous report in the hub's state store, and "
                "this runtime has none"
            ) from None
        if stream.generation is not None and stream.generation > 1:
            # The snapshot before the saved one is no longer referenced by any cursor.
            self.state.delete(self._snapshot_key(request, stream.generation - 1))
        return fresh, StreamCursor(generation=generation)

    # --- HTTP --------------------------------------------------------------------------------

    def _state_time(self, key: str) -> datetime | None:
        value = self.state.get(key)
        return parse_timestamp(value) if value else None

    def _state_set(self, key: str, value: str) -> None:
        try:
            self.state.set(key, value, ttl_seconds=86400 * 7)
        except RuntimeError:  # no state store: the in-process limiter still applies
            return

    def _gate(self, now: datetime) -> None:
        """Raise RateLimited when the next request is not allowed yet; else book the slot."""
        not_before = self._state_time(_NOT_BEFORE)
        if not_before is not None and now < not_before:
            wait = (not_before - now).total_seconds()
            raise RateLimited(
                f"{self.spec.source}: too soon for the vendor's rate limit", retry_after=wait
            )
        if self._limiter is not None:
            self._limiter.acquire(self.runtime.instance_id)
        if self.spec.rate_limit is not None:
            spacing = timedelta(seconds=self.spec.rate_limit.spacing)
            self._state_set(_NOT_BEFORE, (now + spacing).isoformat())

    def _backoff(self, failures: int) -> float:
        limit = self.spec.rate_limit
        base = max(limit.spacing, _DEFAULT_BACKOFF) if limit else _DEFAULT_BACKOFF
        cap = limit.backoff_max_seconds if limit else 3600.0
        return float(min(cap, base * 2 ** min(failures, 20)))

    def _failed(self, now: datetime, wait: float | None) -> float:
        """Record a 429/5xx: the next request waits `wait` or an exponential backoff."""
        failures = int(self.state.get(_FAILURES) or 0)
        delay = wait if wait is not None else self._backoff(failures)
        self._state_set(_FAILURES, str(failures + 1))
        self._state_set(_NOT_BEFORE, (now + timedelta(seconds=delay)).isoformat())
        return delay

    def _fetch(self, request: PollRequestSpec, window: _Window | None) -> bytes:
        now = self.clock.now()
        self._gate(now)
        http_request = self._render_request(request, window)
        response = send_with_retry(self.runtime.http, http_request)
        try:
            failures = int(self.state.get(_FAILURES) or 0)
            classify_source_response(
                response, now=now, fallback_retry_after=lambda: self._backoff(failures)
            )
        except RateLimited as exc:
            # retry_after is Retry-After when the vendor sent one, else the backoff above.
            self._failed(now, exc.retry_after)
            raise
        except TransientError:
            self._failed(now, None)
            raise
        finally:
            response.close()
        if self.state.get(_FAILURES):
            self.state.delete(_FAILURES)
        raw = response.content
        if len(raw) > request.max_response_bytes:
            raise PermanentError(
                f"{self.spec.source}: {request.name} answered {len(raw)} bytes, over "
                f"max_response_bytes={request.max_response_bytes}"
            )
        return raw

    # --- decoding ----------------------------------------------------------------------------

    def decode(self, request: PollRequestSpec, raw: bytes, scope: Scope) -> Any:
        """The response body as the ``items`` expression sees it (rows for CSV formats)."""
        where = f"{self.spec.source}: {request.name}"
        try:
            if request.format == "csv":
                return decode_rows(raw.decode("utf-8-sig"), self.columns(request))
            data = json.loads(raw)
            if request.format == "json":
                return data
            assert request.report_path is not None  # noqa: S101 - the spec requires it
            scope.root = data
            report = compile_expression(request.report_path).search(data, scope)
            if report is None:
                return []
            if not isinstance(report, str):
                raise ValueError(f"report_path gave a {type(report).__name__}, not CSV text")
            return decode_rows(report, self.columns(request))
        except (ValueError, ExpressionError, csv.Error, RecursionError) as exc:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors; the message never quotes
            # the body (reports hold personal data).
            raise PermanentError(
                f"{where}: cannot decode the response ({type(exc).__name__})"
            ) from (None)

    def items(
        self, request: PollRequestSpec, raw: bytes, *, received_at: datetime
    ) -> list[ExplodedItem]:
        """Decode a response and explode it into items, with envelope and delivery ids.

        The event type and the delivery id are computed after the request's envelope is added,
        so ``event_type: "$envelope.request"`` works. Without a ``delivery_id`` expression (or
        when it gives nothing) the id is a hash of the row, stable across polls; with several
        requests it is prefixed by the request name.
        """
        scope = self._scope(received_at)
        body = self.decode(request, raw, scope)
        try:
            exploded = self.engine.explode(body, raw=raw, scope=scope)
        except BadRequest as exc:
            raise PermanentError(f"{self.spec.source}: {request.name}: {exc.reason}") from None
        literal = self.envelope(request)
        prepared: list[tuple[dict[str, Any], str, str]] = []
        for item in exploded:
            payload = dict(item.payload)
            base = payload.get(ENVELOPE_KEY)
            if not isinstance(base, dict):
                base = {k: v for k, v in payload.items() if not isinstance(v, list)}
            payload[ENVELOPE_KEY] = {**base, **literal}
            scope.root = payload
            event_type = self._scalar(self.spec.event_type, payload, scope)
            if self.spec.event_type is None:
                event_type = DEFAULT_EVENT_TYPE
            delivery = self._scalar(self.spec.delivery_id, payload, scope)
            if delivery is None:
                row = {k: v for k, v in item.payload.items() if k != ENVELOPE_KEY}
                text = json.dumps(row, sort_keys=True, separators=(",", ":"))
                delivery = "row:" + hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]
            if len(self.requests) > 1:
                delivery = f"{request.name}:{delivery}"
            prepared.append((payload, event_type or UNKNOWN_EVENT_TYPE, delivery))
        counts = Counter(d for _, _, d in prepared)
        return [
            ExplodedItem(payload, event_type, f"{d}:{i}" if counts[d] > 1 else d)
            for i, (payload, event_type, d) in enumerate(prepared)
        ]

    @staticmethod
    def _scalar(expr: str | None, data: dict[str, Any], scope: Scope) -> str | None:
        if expr is None:
            return None
        try:
            value = compile_expression(expr).search(data, scope)
        except ExpressionError:
            return None
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int):
            return str(value)
        return value if isinstance(value, str) and value else None

    def _event(self, item: ExplodedItem, received_at: datetime) -> SourceEvent:
        return SourceEvent(
            instance_id=self.runtime.instance_id,
            event_type=item.event_type,
            payload=item.payload,
            delivery_id=item.delivery_id,
            received_at=received_at,
            via="poll",
        )

    def events_from_response(
        self, request_name: str, raw: bytes, *, received_at: datetime
    ) -> list[SourceEvent]:
        """The events a response body gives, without HTTP, cursor or state (fixtures, dry runs)."""
        matches = [r for r in self.requests if r.name == request_name]
        if not matches:
            raise ConfigError(f"no poll request named {request_name!r}")
        items = self.items(matches[0], raw, received_at=received_at)
        return [self._event(item, received_at) for item in items]
