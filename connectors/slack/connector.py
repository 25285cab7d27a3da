"""The Slack connector: Events API webhooks -> raw events -> statements (vendors.md section 6).

* `handshake()`: a ``url_verification`` body is verified (it is signed too), then answered
  ``200 text/plain`` with the challenge.
* `verify()`: slack-sdk's `SignatureVerifier` over the raw bytes with the hub's clock and the
  5-minute window. Headers are checked for shape first, so malformed input (non-numeric
  timestamps, non-hex signatures, non-UTF-8 bodies) is `InvalidSignature`, never a crash.
* `parse()`: one event per ``event_callback`` of a mapped type in an allowed channel, with
  ``delivery_id = event_id``: a retry (``X-Slack-Retry-Num``) or a duplicate delivery carries
  the same ``event_id``, so the receiver drops it. No I/O.
* `lookup_user()`: ``users.info`` through slack-sdk's `WebClient` (identity; the hub caches).

The deterministic statement ids come from the natural keys in `connectors.slack.mapping`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import ValidationError
from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from connectors.slack.client import SlackApi
from connectors.slack.mapping import MappingOptions, build_mapper
from connectors.slack.models import Envelope, UrlVerification
from connectors.slack.settings import SlackSettings
from hub import (
    BadRequest,
    Clock,
    ConfigError,
    Connector,
    ConnectorRuntime,
    InvalidSignature,
    Person,
    SourceEvent,
    StatementMapper,
    Webhook,
    WebhookRequest,
    WebhookResponse,
    load_json,
)

if TYPE_CHECKING:
    from hub import MappingContext, MapResult

__all__ = ["SlackConnector"]

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
RETRY_HEADER = "x-slack-retry-num"
TOLERANCE_SECONDS = 300  # slack-sdk's fixed window; vendors.md 6.2

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")
MAPPED_TYPES = frozenset({"message", "app_mention", "reaction_added", "member_joined_channel"})


class _HubClock(SlackClock):
    """slack-sdk's clock interface (epoch seconds) over the hub's injected `Clock`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


class SlackConnector(Connector[SlackSettings], Webhook):
    """Slack Events API (see the module docstring)."""

    name: ClassVar[str] = "slack"
    source: ClassVar[str] = "slack"
    platform: ClassVar[str] = "Slack"
    version: ClassVar[str] = "0.1.0"
    settings_model: ClassVar[type[SlackSettings]] = SlackSettings
    mapper: ClassVar[StatementMapper] = build_mapper(MappingOptions())

    def __init__(self, settings: SlackSettings, *, runtime: ConnectorRuntime) -> None:
        super().__init__(settings, runtime=runtime)
        self._verifier = SignatureVerifier(
            settings.signing_secret.get_secret_value(), clock=_HubClock(runtime.clock)
        )
        self._options = MappingOptions(
            include_message_text=settings.include_message_text,
            message_text_max_chars=settings.message_text_max_chars,
            mentions_as_questions=settings.mentions_as_questions,
            skip_external_users=settings.skip_external_users,
        )
        self._mapper = build_mapper(self._options)
        self._api: SlackApi | None = None

    # --- identity of the instance ---------------------------------------------------------------

    @property
    def tenant(self) -> str:
        return self.settings.team_id.lower()

    @property
    def account_home_page(self) -> str:
        return f"https://app.slack.com/client/{self.settings.team_id}"

    @property
    def api(self) -> SlackApi:
        """The Web API client (built on first use; ConfigError without a bot token)."""
        if self._api is None:
            token = self.settings.bot_token
            if token is None:
                raise ConfigError("Slack: bot_token is not set; Web API calls are unavailable")
            self._api = SlackApi(
                token=token.get_secret_value(),
                base_url=self.settings.api_base_url,
                rate_limit_retries=self.settings.rate_limit_retries,
                max_wait=self.settings.rate_limit_max_wait_seconds,
            )
        return self._api

    def check(self) -> None:
        """``auth.test`` with the bot token (nothing to call without one)."""
        if self.settings.bot_token is not None:
            self.api.auth_test()

    def lookup_user(self, source_user_id: str) -> Person | None:
        if self.settings.bot_token is None:
            return None
        user = self.api.users_info(source_user_id)
        if user is None:
            return None
        return Person(source_user_id=user.id, email=user.email, name=user.name)

    # --- webhook ------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        if b"url_verification" not in request.body:
            return None
        try:
            challenge = UrlVerification.model_validate_json(request.body)
        except ValidationError:
            return None
        if challenge.type != "url_verification":
            return None
        self.verify(request)  # the challenge is signed too: verify, then answer
        return WebhookResponse(
            status=200, body=challenge.challenge.encode(), content_type="text/plain"
        )

    def verify(self, request: WebhookRequest) -> None:
        timestamp = request.header(TIMESTAMP_HEADER)
        signature = request.header(SIGNATURE_HEADER)
        if timestamp is None or signature is None:
            raise InvalidSignature("missing Slack signature headers")
        timestamp, signature = timestamp.strip(), signature.strip()
        if not _TIMESTAMP.match(timestamp) or not _SIGNATURE.match(signature):
            raise InvalidSignature("malformed Slack signature headers")
        try:
            valid = self._verifier.is_valid(
                body=request.body, timestamp=timestamp, signature=signature
            )
        except (ValueError, TypeError):  # e.g. a body that is not UTF-8
            valid = False
        if not valid:
            stale = abs(self.runtime.clock.now().timestamp() - int(timestamp)) > TOLERANCE_SECONDS
            raise InvalidSignature("stale Slack timestamp" if stale else "bad Slack signature")

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        body = load_json(request.body)
        try:
            envelope = Envelope.model_validate(body)
        except ValidationError:
            raise BadRequest("not a Slack Events API envelope") from None
        if envelope.type == "app_rate_limited":
            logger.warning(
                "Slack rate-limited the app's events for %s (events above the limit are "
                "dropped by Slack; backfill with conversations.history)",
                self.instance_id,
            )
            return []
        if envelope.type != "event_callback" or envelope.event is None:
            return []
        if not envelope.event_id or envelope.event_time is None or not envelope.team_id:
            raise BadRequest("event_callback without event_id, event_time or team_id")
        if envelope.team_id != self.settings.team_id:
            logger.info("dropped an event of workspace %s (not configured)", envelope.team_id)
            return []
        event = envelope.event
        if event.type not in MAPPED_TYPES or not self._allowed(self._channel_of(body)):
            return []
        retry = request.header(RETRY_HEADER)
        if retry is not None:
            logger.info(
                "Slack retry %s (%s) of %s",
                retry,
                request.header("x-slack-retry-reason"),
                envelope.event_id,
            )
        return [
            SourceEvent(
                instance_id=self.instance_id,
                event_type=event.type,
                payload=body,
                delivery_id=envelope.event_id,
                received_at=request.received_at,
                via="webhook",
            )
        ]

    @staticmethod
    def _channel_of(body: object) -> str | None:
        event = body.get("event") if isinstance(body, dict) else None
        if not isinstance(event, dict):
            return None
        channel = event.get("channel")
        item = event.get("item")
        if channel is None and isinstance(item, dict):
            channel = item.get("channel")
        return channel if isinstance(channel, str) else None

    def _allowed(self, channel: str | None) -> bool:
        if channel is None:
            return False
        return self.settings.all_channels or channel in self.settings.channels

    # --- mapping --------------------------------------------------------------------------------

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        """Map with the instance's options (message text, mentions, external users)."""
        return self._mapper.map(event, ctx)

    def acknowledge(
        self, request: WebhookRequest, events: Sequence[SourceEvent]
    ) -> WebhookResponse:
        return WebhookResponse(status=200, body=b"", content_type="text/plain")
