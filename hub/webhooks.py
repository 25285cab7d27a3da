"""The webhook receive algorithm (DESIGN §2 step 1, vendors §1.7), independent of any web framework.

`Receiver.receive(instance_id, request)` takes the raw request a source pushed and returns the
answer. It never raises: every outcome is a `WebhookResponse`. In order:

1. find the instance: unknown, disabled, or not a `Webhook` connector -> 404;
2. bound the body: declared or actual size over the cap -> 413; a gzip body is inflated with the
   same cap (a zip bomb stops at the cap -> 413); another content coding -> 415;
3. `handshake()`: a challenge answer is returned as is, nothing is enqueued;
4. `verify()`: `InvalidSignature` -> its `status` (401 by default; 2xx means acknowledge-and-drop);
5. `parse()`: `BadRequest` -> its status (400, 413 or 415);
6. dedupe each event with a delivery id by `store.mark_seen(instance, "delivery:<id>")` BEFORE
   enqueueing; only new events are enqueued; a store failure -> 503;
7. enqueue: `QueueUnavailable` -> the keys marked in 6 are released and the answer is 503 with
   Retry-After, so the source's retry is accepted rather than dropped as a duplicate;
8. `acknowledge()`: the 2xx answer, also when every event was a duplicate.

Any unexpected exception from the connector -> 500 with a generic body, nothing enqueued, logged
with the instance id and the traceback frames but not the exception text (it may quote payload).

The ASGI layer (`hub.web`) streams the body and calls `admit()` first, so a request for an unknown
instance or with an oversized Content-Length is refused before a byte of its body is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar, cast

from pydantic import JsonValue

from hub.clock import Clock
from hub.connector import Connector, Webhook
from hub.errors import BadRequest, InvalidSignature
from hub.events import SourceEvent, WebhookRequest, WebhookResponse, not_of_instance
from hub.queue import Enqueuer, QueueUnavailable

__all__ = [
    "DEDUPE_TTL_SECONDS",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "DedupeStore",
    "Reason",
    "Receiver",
    "ReceiverInstance",
    "ReceiverStats",
    "StatsSnapshot",
    "decode_body",
    "dedupe_key",
    "json_body",
    "json_depth",
    "load_json",
    "media_type",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576  # vendors §7.6 A.3: 1 MiB default cap
MAX_JSON_DEPTH = 64  # vendors §7.6 A.3
DEDUPE_TTL_SECONDS = 7 * 86400  # vendors §7.6 D: inbox dedupe keys live 7 days
RETRY_AFTER_SECONDS = 30
# Delivery ids come from the (authenticated) source; hash very long ones so a key stays small.
_MAX_DELIVERY_KEY_CHARS = 200
# Stats label for ids that match no instance: per-id labels would let anyone grow memory.
UNKNOWN_INSTANCE_LABEL = "(unknown)"


class Reason(StrEnum):
    """Why a request was refused: stable strings, used as metric labels and in error bodies."""

    UNKNOWN_INSTANCE = "unknown_instance"
    DISABLED = "disabled"
    NOT_A_WEBHOOK = "not_a_webhook"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    INVALID_SIGNATURE = "invalid_signature"
    BAD_REQUEST = "bad_request"
    STORE_UNAVAILABLE = "store_unavailable"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    CONNECTOR_ERROR = "connector_error"


# -- stats -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the counters (for the metrics exporter and tests)."""

    received: dict[str, int]
    rejected: dict[tuple[str, Reason], int]
    duplicates: dict[str, int]
    enqueued: dict[str, int]

    def rejections(self, reason: Reason, instance_id: str | None = None) -> int:
        """Requests refused for `reason`, for one instance or all."""
        return sum(
            n
            for (inst, r), n in self.rejected.items()
            if r is reason and (instance_id is None or inst == instance_id)
        )


class ReceiverStats:
    """Counters per instance: requests received, requests rejected by reason, duplicate events
    dropped, events enqueued. Thread-safe: `receive()` runs in a thread pool.

    A duplicate is an event dropped from an accepted request, not a rejected request, so it has
    its own counter rather than a `Reason`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: Counter[str] = Counter()
        self._rejected: Counter[tuple[str, Reason]] = Counter()
        self._duplicates: Counter[str] = Counter()
        self._enqueued: Counter[str] = Counter()

    def count_received(self, instance: str) -> None:
        with self._lock:
            self._received[instance] += 1

    def count_rejected(self, instance: str, reason: Reason) -> None:
        with self._lock:
            self._rejected[(instance, reason)] += 1

    def count_duplicates(self, instance: str, n: int) -> None:
        if n:
            with self._lock:
                self._duplicates[instance] += n

    def count_enqueued(self, instance: str, n: int) -> None:
        if n:
            with self._lock:
                self._enqueued[instance] += n

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                received=dict(self._received),
                rejected=dict(self._rejected),
                duplicates=dict(self._duplicates),
                enqueued=dict(self._enqueued),
            )


# -- body helpers (also for connectors' parse()) ---------------------------------------------------


def media_type(request: WebhookRequest) -> str | None:
    """The request's media type, lower-cased and without parameters (`application/json`)."""
    raw = request.header("content-type")
    if raw is None:
        return None
    value = raw.split(";", 1)[0].strip().lower()
    return value or None


def _reject_constant(name: str) -> JsonValue:
    # NaN/Infinity are not JSON (RFC 8259) and cannot be re-serialized for the queue.
    raise ValueError(f"non-standard JSON constant {name}")


def json_depth(value: object, *, stop_above: int | None = None) -> int:
    """Nesting depth of a parsed JSON value: a scalar is 0, `{}` and `[1]` are 1.

    Level by level, so a deep document cannot exhaust the stack; stops early once `stop_above`
    is exceeded (the caller only needs to know that it is too deep). It runs on every webhook
    body: one pass over each level's children, no per-node tuple or stack entry: on a 50-event
    body about a fifth of the time of the depth-first walk it replaced.
    """
    if not isinstance(value, (dict, list)):
        return 0
    level: list[dict[object, object] | list[object]] = [value]
    depth = 0
    while level:
        depth += 1
        if stop_above is not None and depth > stop_above:
            return depth
        below: list[dict[object, object] | list[object]] = []
        append = below.append
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                # Exact types first: most children are scalars, and isinstance() on each of
                # them was most of the cost. Subclasses (an OrderedDict hook) still count.
                kind = type(child)
                if (
                    kind is dict
                    or kind is list
                    or (kind not in _JSON_SCALARS and isinstance(child, (dict, list)))
                ):
                    append(child)  # type: ignore[arg-type]
        level = below
    return depth


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def load_json(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> JsonValue:
    """Parse a JSON body strictly, or raise `BadRequest` (400).

    Rejects malformed JSON, NaN/Infinity, and nesting deeper than `max_depth` levels (vendors
    §7.6 A.3): deep documents make every later recursive walk (mapping, validation) a risk.
    Accepts UTF-8/16/32 bytes, as `json.loads` does.
    """
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        # The C decoder gives up far below the stack limit; that is deeper than we allow anyway.
        raise BadRequest(f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        # The message has a position only, never payload text.
        raise BadRequest(f"malformed JSON body: {exc.msg} at char {exc.pos}") from None
    except ValueError:
        # UnicodeDecodeError, NaN/Infinity, integers over the digit limit.
        raise BadRequest("malformed JSON body") from None
    if json_depth(value, stop_above=max_depth) > max_depth:
        raise BadRequest(f"JSON nested deeper than {max_depth} levels")
    return cast(JsonValue, value)


def json_body(request: WebhookRequest, *, max_depth: int = MAX_JSON_DEPTH) -> JsonValue:
    """`load_json` on a request that must be `application/json` (or `*/*+json`), else 415."""
    mt = media_type(request)
    if mt is None or not (mt == "application/json" or mt.endswith("+json")):
        raise BadRequest(
            f"unsupported content type {mt or '(none)'!r}; send application/json", status=415
        )
    return load_json(request.body, max_depth=max_depth)


def _gunzip_bounded(data: bytes, *, limit: int) -> bytes:
    out = bytearray()
    pending = data
    while True:  # one pass per gzip member (RFC 1952 allows concatenated members)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # max_length >= 1 here (len(out) <= limit), and bounds what is ever held in memory.
            out += inflater.decompress(pending, limit + 1 - len(out))
        except zlib.error:
            raise BadRequest("malformed gzip body") from None
        if len(out) > limit:
            raise BadRequest(f"body over {limit} bytes once decompressed", status=413)
        if not inflater.eof:
            raise BadRequest("truncated gzip body")
        pending = inflater.unused_data
        if not pending:
            return bytes(out)


def decode_body(body: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """Undo a `Content-Encoding` with a bound: the result never exceeds `limit` bytes (413).

    Only `gzip` (CSOD sends it) and `identity` are accepted; anything else is 415 (RFC 7694).
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return body
    if codings not in (["gzip"], ["x-gzip"]):
        raise BadRequest(f"unsupported content encoding {', '.join(codings)!r}", status=415)
    return _gunzip_bounded(body, limit=limit)


def dedupe_key(delivery_id: str) -> str:
    """The `mark_seen` key of a delivery id (the namespace is the instance id)."""
    if len(delivery_id) > _MAX_DELIVERY_KEY_CHARS:
        digest = hashlib.sha256(delivery_id.encode("utf-8")).hexdigest()
        return f"delivery:sha256:{digest}"
    return f"delivery:{delivery_id}"


# -- the receiver ----------------------------------------------------------------------------------


class DedupeStore(Protocol):
    """The part of `hub.store.Store` the receiver uses; every `Store` satisfies it."""

    def mark_seen_many(
        self, namespace: str, keys: Sequence[str], *, ttl_seconds: float
    ) -> list[bool]: ...

    def unmark_seen(self, namespace: str, key: str) -> None: ...


@dataclass(frozen=True)
class ReceiverInstance:
    """A configured connector instance as the receiver sees it."""

    connector: Connector[Any]
    enabled: bool = True


class _Rejection(Exception):
    """Internal control flow: stop processing and answer with an error (or `response`)."""

    def __init__(
        self,
        reason: Reason,
        status: int,
        message: str,
        *,
        log: str,
        level: int = logging.INFO,
        headers: Mapping[str, str] | None = None,
        response: WebhookResponse | None = None,
    ) -> None:
        super().__init__(log)
        self.reason = reason
        self.level = level
        self.log = log
        body = json.dumps({"error": reason.value, "message": message[:300]}).encode()
        self.response = response or WebhookResponse(
            status=status, body=body, content_type="application/json", headers=dict(headers or {})
        )


T = TypeVar("T")


class Receiver:
    """Receives webhooks for a set of connector instances (see the module docstring).

    `instances` is kept by reference, so a config reload may update it in place. `receive()` does
    blocking I/O (store, broker): call it from a worker thread in async code.
    """

    def __init__(
        self,
        instances: Mapping[str, ReceiverInstance],
        *,
        store: DedupeStore,
        enqueuer: Enqueuer,
        clock: Clock,
        max_body_bytes: int = MAX_BODY_BYTES,
        dedupe_ttl: float = DEDUPE_TTL_SECONDS,
        retry_after_seconds: int = RETRY_AFTER_SECONDS,
        stats: ReceiverStats | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        self._instances = instances
        self._store = store
        self._enqueuer = enqueuer
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self._dedupe_ttl = dedupe_ttl
        self._retry_after = retry_after_seconds
        self.stats = stats if stats is not None else ReceiverStats()

    # -- entry points: each request is counted as received exactly once -------------------------

    def admit(
        self, instance_id: str, *, method: str, content_length: int | None
    ) -> WebhookResponse | None:
        """The checks that need no body; None when the body should be read."""
        try:
            self._resolve(instance_id)
            self._check_method(method)
            self._check_length(content_length)
        except _Rejection as rejection:
            self.stats.count_received(self._label(instance_id))  # receive() will not run
            return self._refused(instance_id, rejection)
        return None

    def body_too_large(self, instance_id: str) -> WebhookResponse:
        """The answer when the streamed body passed the cap (the ASGI layer stopped reading)."""
        self.stats.count_received(self._label(instance_id))
        return self._refused(instance_id, self._too_large())

    def receive(self, instance_id: str, request: WebhookRequest) -> WebhookResponse:
        """Run the whole algorithm on one request; never raises."""
        self.stats.count_received(self._label(instance_id))
        try:
            return self._receive(instance_id, request)
        except _Rejection as rejection:
            return self._refused(instance_id, rejection)

    # -- the algorithm ----------------------------------------------------------------------------

    def _receive(self, instance_id: str, request: WebhookRequest) -> WebhookResponse:
        connector, webhook = self._resolve(instance_id)
        self._check_method(request.method)
        self._check_length(_content_length(request))
        if len(request.body) > self.max_body_bytes:
            raise self._too_large()
        request = self._decoded(request)

        extra = _log_extra(instance_id, connector)
        answer = self._call(instance_id, connector, "handshake", webhook.handshake, request)
        if answer is not None:
            logger.info("answered a handshake for %s", instance_id, extra=extra)
            return answer
        if request.method != "POST":
            # GET exists only for handshakes (WebSub hub.challenge); nothing else may use it.
            raise _Rejection(
                Reason.METHOD_NOT_ALLOWED, 405, "GET only answers handshakes",
                headers={"Allow": "POST"}, log="GET that is not a handshake",
            )  # fmt: skip
        self._call(instance_id, connector, "verify", webhook.verify, request)
        events = self._call(instance_id, connector, "parse", webhook.parse, request)
        self._check_events(instance_id, connector, events)

        new_events, marked = self._dedupe(instance_id, events)
        duplicates = len(events) - len(new_events)
        self.stats.count_duplicates(instance_id, duplicates)
        if new_events:
            self._enqueue(instance_id, connector, new_events, marked)
            self.stats.count_enqueued(instance_id, len(new_events))
        # DEBUG: one line per delivery would flood the log at volume; the stats count them.
        logger.debug(
            "received %d events for %s (%d new, %d duplicate)",
            len(events), instance_id, len(new_events), duplicates, extra=extra,
        )  # fmt: skip
        try:
            return webhook.acknowledge(request, events)
        except Exception as exc:
            # The events are already held durably: a 5xx now would only cause a redundant retry.
            _log_crash(instance_id, connector, "acknowledge", exc, "answering 200")
            return WebhookResponse(status=200, body=b"")

    def _resolve(self, instance_id: str) -> tuple[Connector[Any], Webhook]:
        instance = self._instances.get(instance_id)
        if instance is None or not instance.enabled:
            reason = Reason.UNKNOWN_INSTANCE if instance is None else Reason.DISABLED
            # One answer for both, so the endpoint does not reveal which ids exist.
            raise _Rejection(
                reason, 404, "no enabled connector instance with this id",
                log=f"webhook for a {reason.value.replace('_', ' ')}",
            )  # fmt: skip
        connector = instance.connector
        if not isinstance(connector, Webhook):
            raise _Rejection(
                Reason.NOT_A_WEBHOOK, 404,
                "this connector instance does not accept webhooks (it is polled)",
                level=logging.WARNING,
                log=f"webhook for {type(connector).__name__}, which has no Webhook capability",
            )  # fmt: skip
        return connector, connector

    @staticmethod
    def _check_method(method: str) -> None:
        if method not in ("GET", "POST"):
            raise _Rejection(
                Reason.METHOD_NOT_ALLOWED, 405, f"method {method} not allowed",
                headers={"Allow": "GET, POST"}, log=f"method {method} not allowed",
            )  # fmt: skip

    def _check_length(self, content_length: int | None) -> None:
        if content_length is not None and content_length > self.max_body_bytes:
            raise self._too_large()

    def _too_large(self) -> _Rejection:
        return _Rejection(
            Reason.TOO_LARGE, 413, f"body over {self.max_body_bytes} bytes",
            level=logging.WARNING, log="body over the size cap",
        )  # fmt: skip

    def _decoded(self, request: WebhookRequest) -> WebhookRequest:
        encoding = request.header("content-encoding")
        if encoding is None:
            return request
        try:
            body = decode_body(request.body, encoding, limit=self.max_body_bytes)
        except BadRequest as exc:
            raise _bad_request(exc, stage="decode") from None
        # The connector sees the body as if it had been sent plain: the coding is transport.
        headers = {k: v for k, v in request.headers.items() if k != "content-encoding"}
        headers["content-length"] = str(len(body))
        return request.model_copy(update={"body": body, "headers": headers})

    def _call(
        self,
        instance_id: str,
        connector: Connector[Any],
        stage: str,
        fn: Callable[[WebhookRequest], T],
        request: WebhookRequest,
    ) -> T:
        """Call one connector method, turning its exceptions into answers."""
        try:
            return fn(request)
        except InvalidSignature as exc:
            status = exc.status if 200 <= exc.status < 300 or 400 <= exc.status < 500 else 401
            # A 2xx is acknowledge-and-drop (WebSub): the sender must not learn it was refused.
            drop = WebhookResponse(status=status, body=b"") if status < 300 else None
            raise _Rejection(
                Reason.INVALID_SIGNATURE, status, "invalid signature", response=drop,
                level=logging.WARNING, log=f"{stage}: invalid signature: {exc.reason}",
            ) from None  # fmt: skip
        except BadRequest as exc:
            raise _bad_request(exc, stage=stage) from None
        except Exception as exc:
            _log_crash(instance_id, connector, stage, exc, "nothing enqueued")
            raise _internal_error(f"{stage}: {type(exc).__name__}") from None

    def _check_events(self, instance_id: str, connector: Connector[Any], events: object) -> None:
        # A plugin bug must not put mis-attributed envelopes on the queue: refuse the request.
        if not isinstance(events, list) or not_of_instance(events, instance_id):
            logger.error(
                "connector %s parse() returned events that are not SourceEvents of instance %s",
                type(connector).__name__, instance_id, extra=_log_extra(instance_id, connector),
            )  # fmt: skip
            raise _internal_error("parse: bad events")

    def _dedupe(
        self, instance_id: str, events: Sequence[SourceEvent]
    ) -> tuple[list[SourceEvent], list[str]]:
        """Mark every delivery id (one store call); return the new events and the keys this
        request marked. Events without a delivery id are new here: the deterministic statement
        id dedupes them later."""
        per_event = [None if e.delivery_id is None else dedupe_key(e.delivery_id) for e in events]
        keys = [key for key in per_event if key is not None]
        try:
            firsts = iter(
                self._store.mark_seen_many(instance_id, keys, ttl_seconds=self._dedupe_ttl)
            )
        except Exception as exc:
            logger.error(
                "store unavailable while de-duplicating for %s: %s",
                instance_id, type(exc).__name__, extra={"instance": instance_id},
            )  # fmt: skip
            # Whether any mark landed is unknown: release them all. At worst a key another
            # request holds is released and its retry enqueued twice, which the deterministic
            # statement ids absorb; keeping one could drop the source's retry, which nothing would.
            self._release(instance_id, keys)
            raise self._unavailable(Reason.STORE_UNAVAILABLE) from None
        new: list[SourceEvent] = []
        marked: list[str] = []
        for event, key in zip(events, per_event, strict=True):
            if key is None:
                new.append(event)
            elif next(firsts):
                new.append(event)
                marked.append(key)
        return new, marked

    def _enqueue(
        self,
        instance_id: str,
        connector: Connector[Any],
        events: Sequence[SourceEvent],
        marked: Sequence[str],
    ) -> None:
        try:
            self._enqueuer.enqueue(events)
        except QueueUnavailable as exc:
            logger.error(
                "ingest queue unavailable for %s (%s); answering 503",
                instance_id, exc, extra=_log_extra(instance_id, connector),
            )  # fmt: skip
            self._release(instance_id, marked)
            raise self._unavailable(Reason.QUEUE_UNAVAILABLE) from None
        except Exception as exc:
            # An enqueuer that fails without saying QueueUnavailable: the events are not held
            # either way, so the source must retry; same answer, louder log.
            _log_crash(instance_id, connector, "enqueue", exc, "answering 503")
            self._release(instance_id, marked)
            raise self._unavailable(Reason.QUEUE_UNAVAILABLE) from None

    def _release(self, instance_id: str, keys: Sequence[str]) -> None:
        """Undo `mark_seen` so the source's retry is not dropped as a duplicate."""
        stuck: list[str] = []
        for key in keys:
            try:
                self._store.unmark_seen(instance_id, key)
            except Exception:
                stuck.append(key)
        if stuck:
            # These deliveries would now be dropped as duplicates until the TTL ends; the ids
            # (not secrets) are logged so an operator can replay them from the source.
            logger.error(
                "could not release %d dedupe keys for %s; retries of them will be dropped: %s",
                len(stuck), instance_id, ", ".join(stuck[:50]), extra={"instance": instance_id},
            )  # fmt: skip

    def _unavailable(self, reason: Reason) -> _Rejection:
        return _Rejection(
            reason, 503, "temporarily unavailable; retry later",
            headers={"Retry-After": str(self._retry_after)},
            level=logging.DEBUG, log=reason.value,  # the cause was logged where it happened
        )  # fmt: skip

    def _label(self, instance_id: str) -> str:
        return instance_id if instance_id in self._instances else UNKNOWN_INSTANCE_LABEL

    def _refused(self, instance_id: str, rejection: _Rejection) -> WebhookResponse:
        label = self._label(instance_id)
        self.stats.count_rejected(label, rejection.reason)
        logger.log(
            rejection.level, "refused webhook for %s with %d (%s): %s",
            label, rejection.response.status, rejection.reason.value, rejection.log,
            extra={"instance": label},
        )  # fmt: skip
        return rejection.response


def _bad_request(exc: BadRequest, *, stage: str) -> _Rejection:
    status = exc.status if 400 <= exc.status < 500 else 400
    reason = {413: Reason.TOO_LARGE, 415: Reason.UNSUPPORTED_MEDIA}.get(status, Reason.BAD_REQUEST)
    return _Rejection(reason, status, exc.reason, log=f"{stage}: {exc.reason}")


def _internal_error(log: str) -> _Rejection:
    # DEBUG: the cause was already logged with its frames by the caller.
    return _Rejection(Reason.CONNECTOR_ERROR, 500, "internal error", level=logging.DEBUG, log=log)


def _log_crash(
    instance_id: str, connector: Connector[Any], stage: str, exc: Exception, outcome: str
) -> None:
    # Type and frames only: the exception's text can quote payload or secrets.
    logger.error(
        "%s raised %s in %s() for %s; %s\n%s",
        type(connector).__name__, type(exc).__name__, stage, instance_id, outcome,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
        extra=_log_extra(instance_id, connector),
    )  # fmt: skip


def _content_length(request: WebhookRequest) -> int | None:
    raw = request.header("content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _log_extra(instance_id: str, connector: object) -> dict[str, str]:
    return {"instance": instance_id, "connector": str(getattr(connector, "name", "?"))}
