"""The Teams connector: Graph change notifications (webhook), delta reconciliation and
attendance reports (polling), subscription upkeep (maintain). vendors.md section 5.

Webhook (``POST /webhooks/{id}``):

* `handshake()`: ``?validationToken=…`` is answered ``200 text/plain`` with the URL-decoded
  token, on the notification and the lifecycle URL alike.
* `verify()`: Graph signs nothing; each item carries the subscription's ``clientState``. Every
  subscription's clientState is derived from `client_state_secret` and its channel
  (HMAC-SHA256), so it is checked without the store. A request with no valid item is refused
  with ``202`` (acknowledge and drop: Graph must not retry it).
* `parse()` (pure): items with a wrong clientState are dropped one by one; encrypted resource
  data is checked (HMAC) and decrypted (`connectors.teams.crypto`) into ``channelMessage``
  events. Lifecycle items and items without resource data produce no event.
* `acknowledge()`: ``202``; lifecycle items and items without resource data are recorded in the
  instance state for `maintain()` and the next delta poll.

`maintain()` (every few minutes): creates missing subscriptions, renews those expiring within
`renew_within_hours`, answers ``reauthorizationRequired`` (reauthorize; recreate on 403/404),
recreates after ``subscriptionRemoved`` or expiry, and flags channels for a delta resync after
``missed``/``subscriptionRemoved``/recreation.

`poll()`: one page per call over a work list (each channel's delta, then each live session's
attendance reports). The cursor keeps one deltaLink per channel; a 410 restarts that channel.
Delta messages map to the same statement ids as notifications.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from connectors.teams.auth import GraphAuth
from connectors.teams.client import GraphClient, GraphStatusError
from connectors.teams.crypto import ContentError, decrypt_content, load_private_key
from connectors.teams.mapping import EMAIL_KEY_PREFIX, MappingOptions, build_mapper
from connectors.teams.models import (
    ChatMessage,
    Notification,
    NotificationBatch,
    parse_resource,
)
from connectors.teams.settings import ChannelRef, LiveSession, TeamsSettings
from connectors.teams.tokens import SigningKeys, TokenInvalid, check_validation_tokens
from hub import (
    BadRequest,
    ConfigError,
    Connector,
    ConnectorRuntime,
    Cursor,
    HubError,
    InvalidSignature,
    MaintenanceIncomplete,
    PaginationLoop,
    Person,
    Polling,
    PollResult,
    SourceEvent,
    StatementMapper,
    Webhook,
    WebhookRequest,
    WebhookResponse,
    load_json,
)

if TYPE_CHECKING:
    from hub import MappingContext, MapResult

__all__ = ["SubscriptionRecord", "TeamsConnector", "TeamsCursor"]

logger = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"
_MAX_TOKEN = 4096
_CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})


class TeamsCursor(Cursor):
    """Where the reconciliation stands: a work-list position plus per-channel delta links."""

    position: int = 0
    next_link: str | None = None
    seen_links: tuple[str, ...] = ()
    delta_links: dict[str, str] = Field(default_factory=dict)
    reports_seen: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class SubscriptionRecord(BaseModel):
    """A Graph subscription the instance owns (kept in ``runtime.state``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    resource: str
    expires_at: datetime


def _graph_time(dt: datetime) -> str:
    return f"{dt:%Y-%m-%dT%H:%M:%S}.0000000Z"


class TeamsConnector(Connector[TeamsSettings], Webhook, Polling[TeamsCursor]):
    """Microsoft Teams via Microsoft Graph (see the module docstring)."""

    name: ClassVar[str] = "teams"
    source: ClassVar[str] = "msteams"
    platform: ClassVar[str] = "Microsoft Teams"
    version: ClassVar[str] = "0.1.0"
    settings_model: ClassVar[type[TeamsSettings]] = TeamsSettings
    mapper: ClassVar[StatementMapper] = build_mapper(MappingOptions())
    cursor_model: ClassVar[type[Cursor]] = TeamsCursor
    default_interval: ClassVar[timedelta] = timedelta(minutes=10)

    def __init__(self, settings: TeamsSettings, *, runtime: ConnectorRuntime) -> None:
        super().__init__(settings, runtime=runtime)
        self._mapper = build_mapper(
            MappingOptions(
                include_message_text=settings.include_message_text,
                message_text_max_chars=settings.message_text_max_chars,
                attendance_threshold=settings.attendance_threshold,
            )
        )
        graph = httpx.URL(settings.graph_base_url)
        cert = None
        if settings.client_certificate_private_key is not None:
            cert = {
                "private_key": settings.client_certificate_private_key.get_secret_value(),
                "thumbprint": settings.client_certificate_thumbprint or "",
            }
        self.auth = GraphAuth(
            http=runtime.http,
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            authority_host=settings.authority_host,
            scope=f"{graph.scheme}://{graph.netloc.decode()}/.default",
            client_secret=(
                settings.client_secret.get_secret_value() if settings.client_secret else None
            ),
            certificate=cert,
        )
        self.graph = GraphClient(
            http=runtime.http, base_url=settings.graph_base_url, auth=self.auth, clock=runtime.clock
        )
        self._states = {ch.key: self._derive_client_state(ch) for ch in settings.channels}
        self.signing_keys = SigningKeys(
            settings.signing_keys_url,
            http=runtime.http,
            state=runtime.state,
            clock=runtime.clock.now,
        )
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        enc = settings.encryption
        if enc is not None:
            try:
                self._keys[enc.certificate_id] = load_private_key(
                    enc.private_key.get_secret_value()
                )
                for old in enc.retired:
                    self._keys[old.certificate_id] = load_private_key(
                        old.private_key.get_secret_value()
                    )
            except ValueError as exc:
                raise ConfigError(f"teams encryption: {exc}") from None

    # --- identity of the instance ---------------------------------------------------------------

    @property
    def tenant(self) -> str:
        return self.settings.tenant_id.lower()

    @property
    def account_home_page(self) -> str:
        return f"{self.settings.authority_host.rstrip('/')}/{self.tenant}/"

    def check(self) -> None:
        """A token, then a read of the first configured channel (or live session organizer)."""
        if self.settings.channels:
            ch = self.settings.channels[0]
            self.graph.get_json(f"teams/{ch.team_id}/channels/{ch.channel_id}")
        elif self.settings.live_sessions:
            self.graph.get_json(f"users/{self.settings.live_sessions[0].organizer_id}")
        else:
            self.auth.token()

    def lookup_user(self, source_user_id: str) -> Person | None:
        """Entra object id -> ``mail`` (or the UPN when `upn_is_email`); None when unknown."""
        if source_user_id.startswith(EMAIL_KEY_PREFIX):
            return None  # an external attendee known by email only: nothing to ask Graph
        try:
            data = self.graph.get_json(
                f"users/{source_user_id}",
                params={"$select": "id,displayName,mail,userPrincipalName"},
                handle=frozenset({404}),
            )
        except GraphStatusError:
            return None
        user = data if isinstance(data, dict) else {}
        mail = user.get("mail")
        upn = user.get("userPrincipalName")
        email = mail if isinstance(mail, str) and mail.strip() else None
        if (
            email is None
            and self.settings.upn_is_email
            and isinstance(upn, str)
            and "#EXT#" not in upn.upper()
        ):
            email = upn
        name = user.get("displayName")
        return Person(
            source_user_id=source_user_id,
            email=email,
            name=name if isinstance(name, str) else None,
        )

    # --- clientState ----------------------------------------------------------------------------

    def _derive_client_state(self, channel: ChannelRef) -> str:
        secret = self.settings.client_state_secret.get_secret_value().encode()
        msg = f"msteams|{self.tenant}|{channel.key}".encode()
        digest = hmac.new(secret, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def client_state(self, channel: ChannelRef) -> str:
        """The clientState of the channel's subscription (≤ 128 characters)."""
        return self._states[channel.key]

    def _channel_for(self, item: Notification) -> ChannelRef | None:
        """The configured channel whose clientState the item carries, else None."""
        given = item.client_state
        if not given:
            return None
        if item.tenant_id and item.tenant_id.lower() != self.tenant:
            return None
        path = parse_resource(item.resource) if item.resource else None
        candidates = [
            ch
            for ch in self.settings.channels
            if path is None or (ch.key == f"{path.team_id}/{path.channel_id}")
        ]
        for ch in candidates:
            if hmac.compare_digest(self._states[ch.key].encode(), given.encode()):
                return ch
        return None

    def _batch(self, request: WebhookRequest) -> NotificationBatch:
        try:
            return NotificationBatch.model_validate(load_json(request.body))
        except (BadRequest, ValidationError):
            return NotificationBatch()

    def _items(self, request: WebhookRequest) -> list[Notification]:
        return self._notifications(self._batch(request))

    @staticmethod
    def _notifications(batch: NotificationBatch) -> list[Notification]:
        items: list[Notification] = []
        for raw in batch.value:
            try:
                items.append(Notification.model_validate(raw))
            except ValidationError:
                continue
        return items

    # --- webhook ----------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        token = request.query("validationToken")
        if token is None:
            return None
        if len(token) > _MAX_TOKEN:
            raise BadRequest("validationToken too long")
        return WebhookResponse(status=200, body=token.encode(), content_type=_TEXT)

    def verify(self, request: WebhookRequest) -> None:
        batch = self._batch(request)
        items = [item for item in self._notifications(batch) if self._channel_for(item)]
        if not items:
            # 202: acknowledge and drop, so Graph does not retry a forged or stale delivery.
            raise InvalidSignature("no notification carries a valid clientState", status=202)
        if self.settings.validate_tokens and any(item.encrypted_content for item in items):
            # Resource data: Graph proves the batch is its own with validationTokens, checked
            # before anything is decrypted. A failure is acknowledged and dropped (202), as
            # vendors.md 5.4 says; key-set trouble on our side is a 5xx, so Graph retries.
            try:
                check_validation_tokens(
                    batch.validation_tokens,
                    keys=self.signing_keys,
                    app_id=self.settings.client_id,
                    tenant_id=self.settings.tenant_id,
                    now=self.runtime.clock.now(),
                )
            except TokenInvalid as exc:
                raise InvalidSignature(f"validationTokens: {exc.reason}", status=202) from None

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        events: list[SourceEvent] = []
        for item in self._items(request):
            channel = self._channel_for(item)
            if channel is None:
                logger.warning("dropped a Graph notification with a wrong clientState")
                continue
            if item.lifecycle_event or item.encrypted_content is None:
                continue  # recorded by acknowledge()
            event = self._decrypted_event(item, channel, request)
            if event is not None:
                events.append(event)
        return events

    def _decrypted_event(
        self, item: Notification, channel: ChannelRef, request: WebhookRequest
    ) -> SourceEvent | None:
        content = item.encrypted_content
        path = parse_resource(item.resource or "")
        if content is None or path is None or item.change_type not in _CHANGE_TYPES:
            logger.warning("dropped a Graph notification that is not a channel message change")
            return None
        key = self._keys.get(content.encryption_certificate_id or "")
        if key is None:
            logger.warning(
                "dropped a Graph notification encrypted for unknown certificate %r",
                content.encryption_certificate_id,
            )
            return None
        try:
            plain = decrypt_content(
                key, data=content.data, data_signature=content.data_signature,
                data_key=content.data_key,
            )  # fmt: skip
            message = load_json(plain)
            parsed = ChatMessage.model_validate(message)
        except ContentError as exc:
            logger.warning("dropped a Graph notification: %s", exc.reason)
            return None
        except (BadRequest, ValidationError):
            logger.warning("dropped a Graph notification whose content is not a chatMessage")
            return None
        etag = message.get("etag") if isinstance(message, dict) else None
        version = etag or (message.get("lastModifiedDateTime") if isinstance(message, dict) else "")
        payload: dict[str, JsonValue] = {
            "tenantId": self.tenant,
            "teamId": path.team_id,
            "channelId": path.channel_id,
            "changeType": item.change_type,
            "replyToId": path.message_id if path.reply_id else None,
            "message": message,
        }
        return SourceEvent(
            instance_id=self.instance_id,
            event_type="channelMessage",
            payload=payload,
            delivery_id=(
                f"notification:{item.change_type}:{channel.key}/{parsed.id}:{version or ''}"
            ),
            received_at=request.received_at,
            via="webhook",
        )

    def acknowledge(
        self, request: WebhookRequest, events: Sequence[SourceEvent]
    ) -> WebhookResponse:
        try:
            for item in self._items(request):
                channel = self._channel_for(item)
                if channel is None:
                    continue
                if item.lifecycle_event in LIFECYCLE_EVENTS:
                    self._record_lifecycle(channel, item.lifecycle_event)
                elif item.lifecycle_event is None and item.encrypted_content is None:
                    self.request_resync(channel, "notification without resource data")
        except Exception:  # the events are enqueued; never fail the acknowledgement
            logger.exception("could not record Graph lifecycle/resync requests")
        return WebhookResponse(status=202, body=b"", content_type=_TEXT)

    # --- state ------------------------------------------------------------------------------------

    def _record_lifecycle(self, channel: ChannelRef, event: str) -> None:
        key = f"lifecycle:{channel.key}"
        pending = set(json.loads(self.runtime.state.get(key) or "[]"))
        pending.add(event)
        self.runtime.state.set(key, json.dumps(sorted(pending)))
        logger.info("Graph lifecycle %s for channel %s recorded", event, channel.key)

    def pending_lifecycle(self, channel: ChannelRef) -> frozenset[str]:
        raw = self.runtime.state.get(f"lifecycle:{channel.key}")
        return frozenset(json.loads(raw)) if raw else frozenset()

    def request_resync(self, channel: ChannelRef, reason: str) -> None:
        """Flag a channel for a delta resync (the next poll covers it and clears the flag)."""
        self.runtime.state.set(f"resync:{channel.key}", self.runtime.clock.now().isoformat())
        logger.info("delta resync of %s requested: %s", channel.key, reason)

    def resync_requested(self, channel: ChannelRef) -> bool:
        return self.runtime.state.get(f"resync:{channel.key}") is not None

    def status_details(self) -> dict[str, str]:
        """Change-notification subscriptions: how many are live and when the next expires."""
        if not self.settings.channels or self.settings.notification_url is None:
            return {}
        now = self.runtime.clock.now()
        live = [r for c in self.settings.channels if (r := self.subscription(c)) is not None
                and r.expires_at > now]  # fmt: skip
        text = f"{len(live)} of {len(self.settings.channels)} channels"
        if live:
            soonest = min(r.expires_at for r in live) - now
            text += f", next expiry in {soonest.total_seconds() / 3600:.1f} h"
        return {"Graph subscriptions": text}

    def subscription(self, channel: ChannelRef) -> SubscriptionRecord | None:
        raw = self.runtime.state.get(f"subscription:{channel.key}")
        if raw is None:
            return None
        try:
            return SubscriptionRecord.model_validate_json(raw)
        except ValidationError:
            return None

    def _save(self, channel: ChannelRef, record: SubscriptionRecord) -> None:
        self.runtime.state.set(f"subscription:{channel.key}", record.model_dump_json())

    # --- subscriptions (maintain) ------------------------------------------------------------

    def maintain(self) -> None:
        if not self.settings.channels:
            return
        if self.settings.notification_url is None:
            logger.info("teams %s: no notification_url; delta polling only", self.instance_id)
            return
        # One channel's failure (Graph throttling it, a team deleted) must not leave the other
        # channels' subscriptions to expire: each is kept up, the failures reported together.
        errors: list[str] = []
        for channel in self.settings.channels:
            try:
                self._maintain_channel(channel)
            except HubError as exc:
                errors.append(f"channel {channel.key}: {type(exc).__name__}: {exc}")
        if errors:
            raise MaintenanceIncomplete([], errors)

    def _maintain_channel(self, channel: ChannelRef) -> None:
        now = self.runtime.clock.now()
        events = self.pending_lifecycle(channel)
        record = self.subscription(channel)
        if record is None:
            self._create(channel)
        elif "subscriptionRemoved" in events or record.expires_at <= now:
            self._create(channel)
            self.request_resync(channel, "subscription removed or expired")
        else:
            if "reauthorizationRequired" in events:
                record = self._reauthorize(channel, record)
            if "missed" in events:
                self.request_resync(channel, "Graph reported missed notifications")
            window = timedelta(hours=self.settings.renew_within_hours)
            if record.expires_at - now <= window:
                self._renew(channel, record)
        if events:
            self.runtime.state.delete(f"lifecycle:{channel.key}")

    def _resource(self, channel: ChannelRef) -> str:
        return f"/teams/{channel.team_id}/channels/{channel.channel_id}/messages"

    def _expiry(self) -> datetime:
        return self.runtime.clock.now() + timedelta(
            minutes=self.settings.subscription_lifetime_minutes
        )

    def _record_from(self, channel: ChannelRef, data: JsonValue) -> SubscriptionRecord:
        body = data if isinstance(data, dict) else {}
        sub_id = body.get("id")
        expires = body.get("expirationDateTime")
        if not isinstance(sub_id, str) or not isinstance(expires, str):
            raise ConfigError("Graph answered a subscription without id/expirationDateTime")
        from hub.xapi import parse_timestamp

        when = parse_timestamp(expires)
        if when is None:
            raise ConfigError("Graph answered a subscription without expirationDateTime")
        return SubscriptionRecord(id=sub_id, resource=self._resource(channel), expires_at=when)

    def _create(self, channel: ChannelRef) -> SubscriptionRecord:
        body: dict[str, JsonValue] = {
            "changeType": "created,updated",
            "notificationUrl": self.settings.notification_url,
            "lifecycleNotificationUrl": self.settings.lifecycle_url,
            "resource": self._resource(channel),
            "expirationDateTime": _graph_time(self._expiry()),
            "clientState": self.client_state(channel),
            "includeResourceData": self.settings.encryption is not None,
        }
        enc = self.settings.encryption
        if enc is not None:
            body["encryptionCertificate"] = _certificate_b64(enc.certificate)
            body["encryptionCertificateId"] = enc.certificate_id
        record = self._record_from(
            channel, self.graph.request("POST", "subscriptions", json=body).json()
        )
        self._save(channel, record)
        logger.info("created Graph subscription %s for %s", record.id, channel.key)
        return record

    def _renew(self, channel: ChannelRef, record: SubscriptionRecord) -> SubscriptionRecord:
        try:
            response = self.graph.request(
                "PATCH",
                f"subscriptions/{record.id}",
                json={"expirationDateTime": _graph_time(self._expiry())},
                handle=frozenset({404}),
            )
        except GraphStatusError:
            self.request_resync(channel, "subscription vanished before renewal")
            return self._create(channel)
        renewed = self._record_from(channel, response.json())
        self._save(channel, renewed)
        return renewed

    def _reauthorize(self, channel: ChannelRef, record: SubscriptionRecord) -> SubscriptionRecord:
        try:
            self.graph.request(
                "POST", f"subscriptions/{record.id}/reauthorize", handle=frozenset({403, 404})
            )
        except GraphStatusError:
            self.request_resync(channel, "reauthorization refused; subscription recreated")
            return self._create(channel)
        return record

    # --- polling (delta + attendance) ------------------------------------------------------

    def initial_cursor(self, since: datetime) -> TeamsCursor:
        """Delta has no start time (it covers 8 months): a first run reads everything."""
        return TeamsCursor()

    def _work(self) -> list[ChannelRef | LiveSession]:
        return [*self.settings.channels, *self.settings.live_sessions]

    def poll(self, cursor: TeamsCursor | None, *, until: datetime) -> PollResult[TeamsCursor]:
        cursor = cursor or self.initial_cursor(until)
        work = self._work()
        if not work:
            return PollResult(events=[], next_cursor=cursor, has_more=False)
        position = cursor.position if cursor.position < len(work) else 0
        item = work[position]
        if isinstance(item, ChannelRef):
            return self._poll_channel(item, cursor, position, len(work))
        return self._poll_session(item, cursor, position, len(work))

    def _advance(
        self, cursor: TeamsCursor, position: int, size: int, **updates: object
    ) -> tuple[TeamsCursor, bool]:
        nxt = position + 1
        more = nxt < size
        changed = {"position": nxt if more else 0, "next_link": None, "seen_links": (), **updates}
        return cursor.model_copy(update=changed), more

    @staticmethod
    def _loop_check(cursor: TeamsCursor, url: str, next_link: str | None) -> None:
        if next_link is not None and (next_link == url or next_link in cursor.seen_links):
            raise PaginationLoop(f"Graph returned the page link {next_link[:80]}… twice")

    def _poll_channel(
        self, ch: ChannelRef, cursor: TeamsCursor, position: int, size: int
    ) -> PollResult[TeamsCursor]:
        url = (
            cursor.next_link
            or cursor.delta_links.get(ch.key)
            or self.graph.url(
                f"teams/{ch.team_id}/channels/{ch.channel_id}/messages/delta"
                f"?$top={self.settings.delta_page_size}&$expand=replies"
            )
        )
        try:
            page = self.graph.get_page(url, handle=frozenset({410}))
        except GraphStatusError:
            # The deltaLink expired (long gap): restart this channel with a full delta.
            links = {k: v for k, v in cursor.delta_links.items() if k != ch.key}
            self.request_resync(ch, "deltaLink expired (410)")
            restarted = cursor.model_copy(
                update={"position": position, "next_link": None, "seen_links": (),
                        "delta_links": links}
            )  # fmt: skip
            return PollResult(events=[], next_cursor=restarted, has_more=True)
        self._loop_check(cursor, url, page.next_link)
        events = self._delta_events(ch, page.value)
        if page.next_link is not None:
            nxt = cursor.model_copy(
                update={"next_link": page.next_link, "seen_links": (*cursor.seen_links, url),
                        "position": position}
            )  # fmt: skip
            return PollResult(events=events, next_cursor=nxt, has_more=True)
        links = dict(cursor.delta_links)
        if page.delta_link:
            links[ch.key] = page.delta_link
        self.runtime.state.delete(f"resync:{ch.key}")
        nxt, more = self._advance(cursor, position, size, delta_links=links)
        return PollResult(events=events, next_cursor=nxt, has_more=more)

    def _delta_events(self, ch: ChannelRef, values: Sequence[JsonValue]) -> list[SourceEvent]:
        events: list[SourceEvent] = []
        for raw in values:
            if not isinstance(raw, dict):
                continue
            replies = raw.get("replies")
            root = {k: v for k, v in raw.items() if k != "replies"}
            messages = (
                [root] + [r for r in replies if isinstance(r, dict)]
                if isinstance(replies, list)
                else [root]
            )
            for message in messages:
                msg_id = message.get("id")
                if not isinstance(msg_id, str):
                    continue
                version = message.get("etag") or message.get("lastModifiedDateTime") or ""
                payload: dict[str, JsonValue] = {
                    "tenantId": self.tenant,
                    "teamId": ch.team_id.lower(),
                    "channelId": ch.channel_id,
                    "changeType": "delta",
                    "replyToId": None,
                    "message": message,
                }
                events.append(
                    SourceEvent(
                        instance_id=self.instance_id,
                        event_type="channelMessage",
                        payload=payload,
                        delivery_id=f"delta:{ch.key}/{msg_id}:{version}",
                        received_at=self.runtime.clock.now(),
                        via="poll",
                    )
                )
        return events

    def _poll_session(
        self, s: LiveSession, cursor: TeamsCursor, position: int, size: int
    ) -> PollResult[TeamsCursor]:
        base = f"users/{s.organizer_id}/onlineMeetings/{s.meeting_id}/attendanceReports"
        url = cursor.next_link or self.graph.url(base)
        page = self.graph.get_page(url)
        self._loop_check(cursor, url, page.next_link)
        seen = list(cursor.reports_seen.get(s.key, ()))
        events: list[SourceEvent] = []
        for raw in page.value:
            report_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(report_id, str) or report_id in seen:
                continue
            report = self.graph.get_json(
                f"{base}/{report_id}", params={"$expand": "attendanceRecords"}
            )
            payload: dict[str, JsonValue] = {
                "tenantId": self.tenant,
                "organizerId": s.organizer_id.lower(),
                "meetingId": s.meeting_id,
                "subject": s.subject,
                "report": report,
            }
            events.append(
                SourceEvent(
                    instance_id=self.instance_id,
                    event_type="attendanceReport",
                    payload=payload,
                    delivery_id=f"attendance:{s.key}/{report_id}",
                    received_at=self.runtime.clock.now(),
                    via="poll",
                )
            )
            seen.append(report_id)
        reports = {**cursor.reports_seen, s.key: tuple(seen)}
        if page.next_link is not None:
            nxt = cursor.model_copy(
                update={"next_link": page.next_link, "seen_links": (*cursor.seen_links, url),
                        "position": position, "reports_seen": reports}
            )  # fmt: skip
            return PollResult(events=events, next_cursor=nxt, has_more=True)
        nxt, more = self._advance(cursor, position, size, reports_seen=reports)
        return PollResult(events=events, next_cursor=nxt, has_more=more)

    # --- mapping ------------------------------------------------------------------------------

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        """Map with the instance's options (message text, attendance threshold)."""
        return self._mapper.map(event, ctx)


def _certificate_b64(certificate: str) -> str:
    """Base64 DER of the public certificate (PEM input is unwrapped)."""
    text = certificate.strip()
    if "-----BEGIN CERTIFICATE-----" in text:
        body = text.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----")[0]
        return "".join(body.split())
    return "".join(text.split())
