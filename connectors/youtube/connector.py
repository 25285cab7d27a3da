"""The YouTube connector: tracker batches -> Video Profile statements, metadata, WebSub.

One ``POST /webhooks/{instance_id}`` URL takes two kinds of request:

* **player batches** (JSON or ``text/plain`` from ``sendBeacon``) from the tracker
  ``/static/lxhub-youtube.js`` on the embedding site's pages, authenticated by a learner token
  (``Authorization: Bearer`` or, for beacons, a ``token`` field in the body) and by the page's
  ``Origin``;
* **WebSub notifications** (``application/atom+xml``) for the configured channels, signed with
  ``X-Hub-Signature``; and ``GET`` intent verifications of those subscriptions.

Why `map()` is overridden instead of pure mapper handlers: a Video Profile statement depends on
the whole session (played segments, progress, seek inference, initialized-first, completed-once,
nothing-after-terminated), and the tracker sends the session in many batches. `map()` loads the
session from the instance's state, runs the pure state machine (`session.advance`), builds the
statements with pure functions (`statements`), and saves the state in ONE write that also keeps
the statements of the last few deliveries: re-mapping the same envelope (a retry after a worker
crash, a replay) gives byte-identical statements, while a different batch that repeats ``seq``
numbers gives nothing for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.youtube.catalog import PlaylistCatalog
from connectors.youtube.dataapi import MetadataClient
from connectors.youtube.models import (
    BATCH_EVENT,
    DELETED_EVENT,
    VIDEO_EVENT,
    Learner,
    PlayerBatch,
    PlayerBatchPayload,
    PlayerEvent,
    VideoMeta,
    WebSubDeleted,
    WebSubVideo,
)
from connectors.youtube.session import SessionParams, SessionState, advance
from connectors.youtube.settings import YouTubeSettings
from connectors.youtube.statements import (
    VideoFacts,
    build_statements,
    posted_statement,
    registration_id,
)
from connectors.youtube.token import LearnerClaims, verify_learner_token
from connectors.youtube.websub import (
    SubscriptionState,
    check_signature,
    parse_feed,
    subscription_key,
    topic_for,
)
from hub import (
    BadRequest,
    ConfigError,
    Connector,
    ConnectorRuntime,
    InvalidSignature,
    MaintenanceIncomplete,
    MappingContext,
    MappingError,
    MapResult,
    SourceEvent,
    StatementMapper,
    TransientError,
    Unmapped,
    Webhook,
    WebhookRequest,
    WebhookResponse,
    load_json,
    media_type,
)
from hub.xapi import Statement

__all__ = ["YouTubeConnector"]

logger = logging.getLogger(__name__)

REPLAY_DELIVERIES = 4
"""Deliveries per session whose statements are kept for byte-identical re-mapping."""
REGISTRATION_TTL = 400 * 86400
IDLE_AFTER = timedelta(minutes=30)
"""A session silent this long is terminated by the server (vendors.md 4.6: the tab died)."""
IDLE_EVENT = "player.idle"
"""Raw event `maintain()` produces for an idle session; mapped like the unload it stands for."""
_OPEN_SESSIONS = "open-sessions"
_TRACK_ATTEMPTS = 50
_WEBSUB_TYPES = frozenset({"application/atom+xml", "application/xml", "text/xml"})
_PLAYER_TYPES = frozenset({None, "application/json", "text/plain"})
_MAX_CHALLENGE = 4096
_CORS_HEADERS = "authorization, content-type"
Kind = Literal["player", "websub"]
_M = TypeVar("_M", bound=BaseModel)


class _SessionRecord(BaseModel):
    """What is stored under ``session:{session_id}``: the state plus recent outputs."""

    model_config = ConfigDict(extra="forbid")

    state: SessionState
    replay: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    # For the idle sweep: who watched (the actor of a server-side `terminated`) and when the
    # hub last heard from the session. Absent in records written before the sweep existed.
    learner: Learner | None = None
    last_seen_at: datetime | None = None


class _Idle(NamedTuple):
    """An open session the sweep may terminate, with what the sweep needs of its record."""

    record: _SessionRecord
    learner: Learner
    last_seen: datetime


class YouTubeConnector(Connector[YouTubeSettings], Webhook):
    """Video Profile statements from the lxhub tracker, with Data API and WebSub metadata."""

    name: ClassVar[str] = "youtube"
    source: ClassVar[str] = "youtube"
    platform: ClassVar[str] = "YouTube"
    version: ClassVar[str] = "0.1.0"
    settings_model: ClassVar[type[BaseModel]] = YouTubeSettings
    # Empty on purpose: map() is overridden (the statements depend on server-side session state).
    mapper: ClassVar[StatementMapper] = StatementMapper()

    def __init__(self, settings: YouTubeSettings, *, runtime: ConnectorRuntime) -> None:
        super().__init__(settings, runtime=runtime)
        self.metadata = MetadataClient(
            settings, http=runtime.http, state=runtime.state, clock=runtime.clock
        )
        self.catalog = PlaylistCatalog(
            settings, metadata=self.metadata, state=runtime.state, clock=runtime.clock
        )

    # -- declared facts --------------------------------------------------------------------

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    @property
    def account_home_page(self) -> str:
        if self.settings.home_page is not None:
            return str(self.settings.home_page).rstrip("/")
        return f"https://{self.settings.tenant}"

    @property
    def audience(self) -> str:
        """The ``aud`` learner tokens must carry."""
        return self.settings.token_audience or self.instance_id

    def quota_used(self) -> int:
        """Data API units spent today (Pacific day); for the status page."""
        return self.metadata.quota_used()

    def status_details(self) -> dict[str, str]:
        """Data API units spent today and how far the playlist catalog is walked."""
        out: dict[str, str] = {}
        if self.settings.api_key is not None:
            used, budget = self.quota_used(), self.settings.daily_quota_units
            out["Data API units today"] = f"{used:,} of {budget:,} (Pacific day)"
        if self.settings.playlists:
            out["playlist catalog"] = self.catalog.summary()
        return out

    def check(self) -> None:
        """Look up one public video when an API key is configured (1 unit)."""
        if self.settings.api_key is None:
            return
        self.metadata.fetch([self.settings.check_video_id], parts="id")

    # -- request kinds, origins, tokens -------------------------------------------------------

    @staticmethod
    def _kind(request: WebhookRequest) -> Kind:
        return "websub" if media_type(request) in _WEBSUB_TYPES else "player"

    def _origin(self, request: WebhookRequest) -> str | None:
        """The request's allowed Origin, None when it sent none; refuses others with 403."""
        raw = request.header("origin")
        if raw is None:
            if self.settings.require_origin:
                raise InvalidSignature("player batch without Origin", status=403)
            return None
        origin = raw.strip().rstrip("/").lower()
        if origin not in self.settings.allowed_origins:
            raise InvalidSignature("origin not allowed", status=403)
        return origin

    def _token(self, request: WebhookRequest) -> str:
        header = request.header("authorization")
        if header is not None:
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise InvalidSignature("Authorization is not a Bearer token")
            return value.strip()
        # sendBeacon cannot set headers: the tracker puts the token in the body instead.
        try:
            body = load_json(request.body)
        except BadRequest:
            raise InvalidSignature("no learner token") from None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise InvalidSignature("no learner token")
        return token

    def _learner(self, request: WebhookRequest) -> LearnerClaims:
        return verify_learner_token(
            self._token(request),
            self.settings.token_secret.get_secret_value(),
            audience=self.audience,
            now=request.received_at,
            leeway_seconds=self.settings.token_leeway_seconds,
            max_lifetime_seconds=self.settings.token_max_lifetime_seconds,
        )

    def _cors(self, origin: str | None) -> dict[str, str]:
        if origin is None:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    # -- Webhook ---------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        """WebSub intent verification (GET ``hub.mode``), and CORS preflight (OPTIONS) should
        the receiver route it here."""
        if request.method == "OPTIONS":
            return self._preflight(request)
        if request.method == "GET" and request.query("hub.mode") is not None:
            return self._verify_intent(request)
        return None

    def verify(self, request: WebhookRequest) -> None:
        if self._kind(request) == "websub":
            self._verify_notification(request)
            return
        self._origin(request)
        self._learner(request)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        if self._kind(request) == "websub":
            return self._parse_notification(request)
        if media_type(request) not in _PLAYER_TYPES:
            raise BadRequest("player batches are JSON (or text/plain from sendBeacon)", status=415)
        claims = self._learner(request)  # verified already; decoded again, no I/O
        body = load_json(request.body)
        if not isinstance(body, dict):
            raise BadRequest("a player batch is a JSON object")
        body.pop("token", None)  # never put a credential on the queue
        try:
            batch = PlayerBatch.model_validate(body)
        except ValidationError as exc:
            where = "; ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
            raise BadRequest(f"not a player batch ({where})") from None
        payload = PlayerBatchPayload(
            learner=Learner(sub=claims.sub, email=claims.email, name=claims.name),
            origin=request.header("origin"),
            batch=batch,
        )
        data = payload.model_dump(mode="json", exclude_none=True)
        digest = hashlib.sha256(
            json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()[:16]
        seqs = sorted(e.seq for e in batch.events)
        return [
            SourceEvent(
                instance_id=self.instance_id,
                event_type=BATCH_EVENT,
                payload=data,
                delivery_id=f"player:{batch.session_id}:{seqs[0]}-{seqs[-1]}:{digest}",
                received_at=request.received_at,
            )
        ]

    def acknowledge(
        self, request: WebhookRequest, events: Sequence[SourceEvent]
    ) -> WebhookResponse:
        if self._kind(request) == "websub":
            # Byte-identical to the receiver's acknowledge-and-drop answer for a bad signature,
            # so a prober cannot tell them apart.
            return WebhookResponse(status=200, body=b"")
        return WebhookResponse(
            status=200,
            body=b'{"status":"ok"}',
            content_type="application/json",
            headers=self._cors(self._origin(request)),
        )

    def _preflight(self, request: WebhookRequest) -> WebhookResponse:
        try:
            origin = self._origin(request)
        except InvalidSignature:
            return WebhookResponse(status=403, body=b"")
        method = (request.header("access-control-request-method") or "").upper()
        if origin is None or method != "POST":
            return WebhookResponse(status=403, body=b"")
        headers = {
            **self._cors(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": _CORS_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        return WebhookResponse(status=204, body=b"", headers=headers)

    # -- WebSub ------------------------------------------------------------------------------

    def _websub_secret(self) -> bytes | None:
        secret = self.settings.websub_secret
        return secret.get_secret_value().encode() if secret is not None else None

    def _configured_topics(self) -> set[str]:
        return {topic_for(channel) for channel in self.settings.channels}

    def _known_topics(self) -> set[str]:
        raw = self.runtime.state.get("websub:topics")
        try:
            topics = json.loads(raw) if raw else []
        except ValueError:
            topics = []
        return {t for t in topics if isinstance(t, str)}

    def _save_topics(self, topics: set[str]) -> None:
        self.runtime.state.set("websub:topics", json.dumps(sorted(topics)))

    def subscription(self, topic: str) -> SubscriptionState | None:
        """The stored state of a topic's subscription (None if the hub never asked)."""
        raw = self.runtime.state.get(f"websub:{topic}")
        if raw is None:
            return None
        try:
            return SubscriptionState.model_validate_json(raw)
        except ValidationError:
            return None

    def _save_subscription(self, sub: SubscriptionState) -> None:
        self.runtime.state.set(f"websub:{sub.topic}", sub.model_dump_json())

    def callback_url(self, topic: str) -> str:
        """The ``hub.callback`` of a topic's subscription."""
        secret = self._websub_secret()
        if self.settings.public_url is None or secret is None:
            raise ConfigError("WebSub needs public_url and websub_secret")
        base = str(self.settings.public_url).rstrip("/")
        key = subscription_key(secret, topic)
        return f"{base}/webhooks/{self.instance_id}?key={key}"

    def _key_ok(self, request: WebhookRequest, topic: str) -> bool:
        secret = self._websub_secret()
        key = request.query("key")
        if secret is None or key is None:
            return False
        return hmac.compare_digest(key.encode(), subscription_key(secret, topic).encode())

    def _verify_intent(self, request: WebhookRequest) -> WebhookResponse:
        mode = request.query("hub.mode")
        topic = request.query("hub.topic") or ""
        challenge = request.query("hub.challenge")
        not_found = WebhookResponse(status=404, body=b"unknown subscription")
        if not topic or not self._key_ok(request, topic):
            return not_found
        if mode == "denied":
            denied = self.subscription(topic)
            if denied is None:
                return not_found
            denied.status = "denied"
            self._save_subscription(denied)
            logger.warning("WebSub hub denied the subscription to %s", topic,
                           extra={"instance": self.instance_id})  # fmt: skip
            return WebhookResponse(status=200, body=b"")
        if challenge is None or not challenge or len(challenge) > _MAX_CHALLENGE:
            return WebhookResponse(status=400, body=b"hub.challenge missing or too long")
        now = request.received_at
        if mode == "subscribe":
            if topic not in self._configured_topics():
                return not_found
            current = self.subscription(topic) or SubscriptionState(topic=topic)
            lease = _positive_int(request.query("hub.lease_seconds"))
            current.status = "active"
            current.verified_at = now
            current.lease_seconds = lease or self.settings.websub_lease_seconds
            self._save_subscription(current)
            self._save_topics(self._known_topics() | {topic})
        elif mode == "unsubscribe":
            pending = self.subscription(topic)
            if pending is None or pending.status != "unsubscribing":
                return not_found  # we did not ask to unsubscribe: refuse
            self.runtime.state.delete(f"websub:{topic}")
            self._save_topics(self._known_topics() - {topic})
        else:
            return not_found
        return WebhookResponse(
            status=200,
            body=challenge.encode(),
            content_type="text/plain; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    def _verify_notification(self, request: WebhookRequest) -> None:
        secret = self._websub_secret()
        topics = self._configured_topics() | self._known_topics()
        # Any failure answers 2xx and drops the content (WebSub; vendors.md 4.3).
        if secret is None or not any(self._key_ok(request, t) for t in topics):
            raise InvalidSignature("WebSub notification for an unknown callback key", status=200)
        if not check_signature(secret, request.body, request.header("x-hub-signature")):
            raise InvalidSignature("WebSub X-Hub-Signature does not match", status=200)

    def _parse_notification(self, request: WebhookRequest) -> list[SourceEvent]:
        try:
            items = parse_feed(request.body)
        except ValidationError:
            raise BadRequest("WebSub entry with an invalid video id") from None
        events: list[SourceEvent] = []
        for item in items:
            if isinstance(item, WebSubVideo):
                stamp = item.updated.isoformat() if item.updated else ""
                event_type, delivery = VIDEO_EVENT, f"websub:{item.video_id}:{stamp}"
            else:
                event_type, delivery = DELETED_EVENT, f"websub-deleted:{item.video_id}"
            events.append(
                SourceEvent(
                    instance_id=self.instance_id,
                    event_type=event_type,
                    payload=item.model_dump(mode="json"),
                    delivery_id=delivery,
                    received_at=request.received_at,
                )
            )
        return events

    def _hub_request(self, mode: Literal["subscribe", "unsubscribe"], topic: str) -> None:
        secret = self._websub_secret()
        if secret is None:  # settings guarantee it when channels are configured
            raise ConfigError("WebSub needs websub_secret")
        form = {
            "hub.callback": self.callback_url(topic),
            "hub.mode": mode,
            "hub.topic": topic,
            "hub.verify": "async",
            "hub.secret": secret.decode(),
        }
        if mode == "subscribe":
            form["hub.lease_seconds"] = str(self.settings.websub_lease_seconds)
        try:
            response = self.runtime.http.post(
                str(self.settings.websub_hub_url), data=form, timeout=15.0
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"WebSub {mode}: network error ({type(exc).__name__})") from None
        if response.status_code in (202, 204):
            return
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"WebSub {mode}: HTTP {response.status_code}")
        raise ConfigError(f"WebSub {mode}: HTTP {response.status_code} from the hub")

    def maintain(self) -> list[SourceEvent]:
        """Return an `IDLE_EVENT` for every session idle too long; renew WebSub subscriptions;
        walk the configured playlists into the metadata cache.

        The sweep's events go through the normalizer like any other (the hub enqueues them), so
        the server-side `terminated` is built, validated and delivered the usual way. A failing
        WebSub hub or Data API must not hold those back: each part runs, and their failures
        come back together in `MaintenanceIncomplete`, which still carries the events.
        """
        idle = self._idle_sessions()
        errors: list[str] = []
        try:
            self._maintain_websub()
        except (TransientError, ConfigError) as exc:
            errors.append(f"WebSub: {exc}")
        if self.settings.playlists:
            errors.extend(f"catalog: {e}" for e in self.catalog.refresh().errors)
        if errors:
            raise MaintenanceIncomplete(idle, errors)
        return idle

    def _maintain_websub(self) -> None:
        """Subscribe to configured channels, renew leases at 80 %, unsubscribe removed ones."""
        if self._websub_secret() is None:
            return
        now = self.runtime.clock.now()
        configured = self._configured_topics()
        known = self._known_topics()
        failures: list[str] = []
        for topic in sorted(configured):
            current = self.subscription(topic) or SubscriptionState(topic=topic)
            if not current.renew_due(now):
                continue
            try:
                self._hub_request("subscribe", topic)
            except (TransientError, ConfigError) as exc:
                failures.append(str(exc))
                continue
            current.requested_at = now
            if current.status != "active":
                current.status = "pending"
            self._save_subscription(current)
        for topic in sorted(known - configured):
            current = self.subscription(topic) or SubscriptionState(topic=topic)
            if current.status == "unsubscribing" and not current.renew_due(now):
                continue
            try:
                self._hub_request("unsubscribe", topic)
            except (TransientError, ConfigError) as exc:
                failures.append(str(exc))
                continue
            current.status = "unsubscribing"
            current.requested_at = now
            self._save_subscription(current)
        self._save_topics(known | configured)
        if failures:
            raise TransientError("; ".join(failures[:5]))

    # -- the idle sweep ----------------------------------------------------------------------

    def _open_sessions(self) -> set[str]:
        return _session_set(self.runtime.state.get(_OPEN_SESSIONS))

    def _track(self, session_id: str, *, open_: bool) -> None:
        # Compare-and-set, retried: normalizers on several workers open and close sessions at
        # the same moment, and a plain read-modify-write would let one drop the other's entry
        # (a session the sweep then never finds). A stale entry is harmless: the sweep finds
        # the session terminated or expired and drops it.
        state = self.runtime.state
        for _ in range(_TRACK_ATTEMPTS):
            raw = state.get(_OPEN_SESSIONS)
            sessions = _session_set(raw)
            if (session_id in sessions) == open_:
                return
            sessions = sessions | {session_id} if open_ else sessions - {session_id}
            if state.compare_and_set(
                _OPEN_SESSIONS, raw, json.dumps(sorted(sessions)),
                ttl_seconds=self.settings.session_ttl_seconds,
            ):  # fmt: skip
                return
        # Only under extreme contention; the batch is retried rather than the entry lost.
        raise TransientError(f"the open-session index kept changing ({_TRACK_ATTEMPTS} tries)")

    def _idle_record(self, session_id: str, at: datetime) -> _Idle | None:
        """The session if it is still open and was silent for `IDLE_AFTER` at `at`. A session
        that expired, ended, or cannot be swept (no learner) leaves the list."""
        record = self._load_session(session_id)
        if record is None or record.state.terminated or record.learner is None:
            self._track(session_id, open_=False)
            return None
        if record.last_seen_at is None or at - record.last_seen_at < IDLE_AFTER:
            return None
        return _Idle(record, record.learner, record.last_seen_at)

    def _idle_sessions(self) -> list[SourceEvent]:
        now = self.runtime.clock.now()
        events: list[SourceEvent] = []
        for session_id in sorted(self._open_sessions()):
            idle = self._idle_record(session_id, now)
            if idle is None:
                continue
            events.append(
                SourceEvent(
                    instance_id=self.instance_id,
                    event_type=IDLE_EVENT,
                    payload={"session_id": session_id,
                             "last_seen_at": idle.last_seen.isoformat()},
                    delivery_id=f"idle:{session_id}:{idle.record.state.last_seq}",
                    received_at=now,
                    via="poll",
                )  # fmt: skip
            )
        return events

    def _map_idle(self, event: SourceEvent, ctx: MappingContext) -> list[Statement]:
        session_id = event.payload.get("session_id") if isinstance(event.payload, dict) else None
        if not isinstance(session_id, str):
            raise MappingError(f"{IDLE_EVENT}: payload has no session_id")
        # None also when the session spoke again after the sweep saw it idle.
        idle = self._idle_record(session_id, event.received_at)
        if idle is None:
            return []
        record, last_seen = idle.record, idle.last_seen
        state = record.state
        # What an unload beacon would have said, from what the hub last heard: the position and
        # client time of the last observation. Statement times are those, not the sweep's.
        unload = PlayerEvent(
            seq=state.last_seq + 1,
            type="unload",
            client_ts=state.anchor_wall or last_seen,
            t=state.anchor_t,
        )
        batch = PlayerBatch(session_id=session_id, video_id=state.video_id, events=[unload])
        return self._apply(record, batch, idle.learner, ctx, received_at=last_seen,
                           delivery_id=event.delivery_id)  # fmt: skip

    # -- mapping -----------------------------------------------------------------------------

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        if event.event_type == BATCH_EVENT:
            return self._map_batch(event, ctx)
        if event.event_type == VIDEO_EVENT:
            return self._map_upload(event, ctx)
        if event.event_type == IDLE_EVENT:
            return self._map_idle(event, ctx)
        if event.event_type == DELETED_EVENT:
            gone = _validate(WebSubDeleted, event)
            self.metadata.forget(gone.video_id)
            return []
        return Unmapped(event.event_type)

    def _video_meta(self, video_id: str) -> VideoMeta | None:
        if self.settings.api_key is None:
            return self.metadata.cached(video_id)
        return self.metadata.lookup([video_id]).get(video_id)

    def _load_session(self, session_id: str) -> _SessionRecord | None:
        raw = self.runtime.state.get(f"session:{session_id}")
        if raw is None:
            return None
        try:
            return _SessionRecord.model_validate_json(raw)
        except ValidationError:
            logger.error("unreadable state of video session %s; starting over", session_id,
                         extra={"instance": self.instance_id})  # fmt: skip
            return None

    def _map_batch(self, event: SourceEvent, ctx: MappingContext) -> list[Statement]:
        payload = _validate(PlayerBatchPayload, event)
        batch, learner = payload.batch, payload.learner
        record = self._load_session(batch.session_id)
        if record is None:
            record = _SessionRecord(
                state=SessionState(
                    session_id=batch.session_id, video_id=batch.video_id, sub=learner.sub
                )
            )
        elif record.state.sub != learner.sub or record.state.video_id != batch.video_id:
            raise MappingError(
                f"session {batch.session_id} belongs to another learner or video; batch refused"
            )
        replayed = record.replay.get(event.delivery_id or "")
        if replayed is not None:
            return [Statement.model_validate(s) for s in replayed]
        fresh = record.last_seen_at is None
        record.learner = learner
        record.last_seen_at = max(record.last_seen_at or event.received_at, event.received_at)
        statements = self._apply(record, batch, learner, ctx, received_at=event.received_at,
                                 delivery_id=event.delivery_id)  # fmt: skip
        if fresh and not record.state.terminated:
            self._track(batch.session_id, open_=True)
        return statements

    def _apply(
        self,
        record: _SessionRecord,
        batch: PlayerBatch,
        learner: Learner,
        ctx: MappingContext,
        *,
        received_at: datetime,
        delivery_id: str | None,
    ) -> list[Statement]:
        """Advance the session by `batch`, build its statements, and save the session."""
        meta = self._video_meta(batch.video_id)
        meta_length: float | None = None
        if meta is not None:
            meta_length = meta.length if meta.length else (0.0 if meta.live else None)
        params = SessionParams(
            threshold=self.settings.completion_threshold,
            tolerance=self.settings.seek_tolerance_seconds,
            skew_limit=self.settings.clock_skew_limit_seconds,
            interactions=self.settings.interactions,
            meta_length=meta_length,
        )
        state, facts = advance(record.state, batch, params=params, received_at=received_at)
        registration = str(registration_id(ctx, sub=learner.sub, video_id=batch.video_id))
        total_wall = self._registration_wall(registration, state)
        statements = build_statements(
            ctx,
            facts,
            VideoFacts(
                session=state,
                learner=learner,
                meta=meta,
                threshold=self.settings.completion_threshold,
                registration_wall_seconds=total_wall,
            ),
        )
        record.state = state
        if delivery_id:
            record.replay[delivery_id] = [s.to_json() for s in statements]
            for old in list(record.replay)[:-REPLAY_DELIVERIES]:
                del record.replay[old]
        self.runtime.state.set(
            f"session:{batch.session_id}", record.model_dump_json(),
            ttl_seconds=self.settings.session_ttl_seconds,
        )  # fmt: skip
        if state.terminated:
            self._track(batch.session_id, open_=False)
        return statements

    def _registration_wall(self, registration: str, state: SessionState) -> float:
        """Playing wall time of every session of this learner on this video (result.duration
        of `completed` accumulates over the registration, vendors.md 4.5)."""
        key = f"regtime:{registration}"
        raw = self.runtime.state.get(key)
        try:
            per_session: dict[str, float] = json.loads(raw) if raw else {}
        except ValueError:
            per_session = {}
        if per_session.get(state.session_id) != state.wall_seconds:
            per_session[state.session_id] = state.wall_seconds
            # Written before the session record: a crash in between recomputes the same value.
            self.runtime.state.set(key, json.dumps(per_session), ttl_seconds=REGISTRATION_TTL)
        return sum(v for v in per_session.values() if isinstance(v, int | float))

    def _map_upload(self, event: SourceEvent, ctx: MappingContext) -> list[Statement]:
        video = _validate(WebSubVideo, event)
        found = (
            self.metadata.lookup([video.video_id], refresh=True).get(video.video_id)
            if self.settings.api_key is not None
            else None
        )
        if found is None:
            # No key or no quota: keep what the feed says (title edits notify again).
            cached = self.metadata.cached(video.video_id)
            update = {"title": video.title, "channel_id": video.channel_id}
            if cached is not None:
                self.metadata.remember(cached.model_copy(update={
                    k: v for k, v in update.items() if v is not None}))  # fmt: skip
            else:
                self.metadata.remember(
                    VideoMeta(
                        video_id=video.video_id,
                        title=video.title,
                        channel_id=video.channel_id,
                        published_at=video.published,
                        source="websub",
                    )  # fmt: skip
                )
        if not self.settings.publish_statements or not video.channel_id or not video.published:
            return []
        return [
            posted_statement(
                ctx,
                video_id=video.video_id,
                channel_id=video.channel_id,
                published=video.published,
            )  # fmt: skip
        ]


def _validate(model: type[_M], event: SourceEvent) -> _M:
    try:
        return model.model_validate(event.payload)
    except ValidationError as exc:
        raise MappingError(f"{event.event_type}: payload does not fit {model.__name__}: "
                           f"{exc.error_count()} errors") from None  # fmt: skip


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def _session_set(raw: str | None) -> set[str]:
    """The open-session index as stored (a JSON list of ids); unreadable counts as empty."""
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return set()
    return {s for s in found if isinstance(s, str)} if isinstance(found, list) else set()
