"""The generic, declarative webhook connector (vendors.md 7.6): one class, many vendors.

Everything vendor-specific is in the instance's mapping (a shipped preset, an inline mapping or
a mapping file, see `spec`): how requests are authenticated, which handshakes to answer, how a
body splits into items and how items become statements. Onboarding a new vendor is a mapping
file plus fixtures, with no code.

Per instance, not per class:

* ``source`` is ``webhook:<vendor>`` (vendors.md 1.4), so two vendors behind this one plugin
  never share statement ids. `Connector.source` is a class attribute for hand-written
  connectors; here the instance shadows it, and the pipeline reads ``connector.source``.
* ``platform`` is the mapping's product name, or the instance's ``settings.platform``.

The class has both capabilities, and the mapping's ``mode`` decides which one an instance uses:

* ``mode: webhook``: ``poll()`` is a no-op (no request, no events, no cursor), and the instance's
  ``default_interval`` is a day, so the scheduler's call costs nothing.
* ``mode: poll`` (`connectors.webhook.poll`): ``poll()`` reads the vendor's report API, and the
  webhook endpoint answers **404** ("this instance polls") from ``handshake()``, before any
  verifier runs, like the receiver's answer for connectors without the Webhook capability.
  ``parse()`` stays usable (pure) so fixture bodies can be dry-run through the mapping.

`active_capabilities` tells which capability an instance really uses.
"""

from __future__ import annotations

import contextlib
import csv
import io
import ipaddress
import json
import logging
import re
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

import orjson
from pydantic import SecretStr, ValidationError

from connectors.webhook.engine import MappingEngine, truthy
from connectors.webhook.expressions import ExpressionError, Scope, compile_expression
from connectors.webhook.poll import PollCursor, Poller
from connectors.webhook.pollspec import duration_seconds
from connectors.webhook.settings import GenericWebhookSettings
from connectors.webhook.spec import (
    BasicAuthSpec,
    EchoJsonFieldSpec,
    EchoQueryParamSpec,
    HmacChallengeSpec,
    HmacSpec,
    IpAllowlistSpec,
    JsonFieldEqualsSpec,
    MappingSpec,
    QueryTokenSpec,
    StaticHeaderSpec,
    StaticResponseSpec,
)
from hub import (
    BadRequest,
    BasicAuthVerifier,
    Capability,
    ConfigError,
    Connector,
    ConnectorRuntime,
    HmacVerifier,
    InvalidSignature,
    Polling,
    PollResult,
    QueryTokenVerifier,
    SourceEvent,
    StatementMapper,
    StaticHeaderVerifier,
    Verifier,
    Webhook,
    WebhookRequest,
    WebhookResponse,
    hmac_digest,
    json_depth,
    matches_any,
    secret_bytes,
)

if TYPE_CHECKING:
    from hub import MappingContext, MapResult

__all__ = ["GenericWebhookConnector"]

logger = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"
_MAX_CHALLENGE = 4096
_IDLE_INTERVAL = timedelta(days=1)
"""``default_interval`` of a webhook-mode instance, whose poll() does nothing."""


class _IpAllowlist:
    """Source-address check. ``X-Forwarded-For`` counts only when the peer is a trusted proxy;
    the client is the right-most address that is not itself a trusted proxy."""

    def __init__(self, spec: IpAllowlistSpec) -> None:
        self._allowed = [ipaddress.ip_network(c, strict=False) for c in spec.cidrs]
        self._proxies = [ipaddress.ip_network(c, strict=False) for c in spec.trusted_proxies]

    @staticmethod
    def _in(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[Any]) -> bool:
        return any(addr.version == net.version and addr in net for net in nets)

    def verify(self, request: WebhookRequest) -> None:
        try:
            peer = ipaddress.ip_address((request.client_host or "").strip())
            client = peer
            forwarded = request.header("X-Forwarded-For")
            if forwarded and self._in(peer, self._proxies):
                for hop in reversed([h.strip() for h in forwarded.split(",")]):
                    client = ipaddress.ip_address(hop)
                    if not self._in(client, self._proxies):
                        break
        except ValueError:
            raise InvalidSignature("malformed client address") from None
        if not self._in(client, self._allowed):
            raise InvalidSignature("client address not allowed")


class GenericWebhookConnector(Connector[GenericWebhookSettings], Webhook, Polling[PollCursor]):
    """A webhook (or, with ``mode: poll``, polling) connector configured by a mapping file."""

    name: ClassVar[str] = "webhook"
    # Class-level placeholders for the registry; every instance shadows both (module docstring).
    source: ClassVar[str] = "webhook"
    platform: ClassVar[str] = "Generic webhook"
    version: ClassVar[str] = "0.1.0"
    settings_model: ClassVar[type[GenericWebhookSettings]] = GenericWebhookSettings
    # Unused: map() is overridden to run the mapping engine (the registry accepts that).
    mapper: ClassVar[StatementMapper] = StatementMapper()
    cursor_model: ClassVar[type[PollCursor]] = PollCursor

    def __init__(self, settings: GenericWebhookSettings, *, runtime: ConnectorRuntime) -> None:
        super().__init__(settings, runtime=runtime)
        try:
            self.spec: MappingSpec = settings.load_spec()
        except ValidationError as exc:
            raise ConfigError(f"webhook mapping is invalid: {exc}") from None
        # Instance attributes shadow the ClassVars; see the module docstring for why.
        vars(self)["source"] = self.spec.source
        vars(self)["platform"] = settings.platform or self.spec.platform
        self.engine = MappingEngine(self.spec, include_free_text=settings.include_free_text)
        self._verifiers: list[Verifier] = []
        self._item_checks: list[tuple[str, tuple[bytes, ...]]] = []
        try:
            self._build_verifiers()
        except ValueError as exc:  # bad algorithm/encoding or an undecodable secret
            raise ConfigError(f"webhook auth for {self.source}: {exc}") from None
        self.poller: Poller | None = None
        if self.spec.mode == "poll":
            # Without settings.poll the instance can still parse() and map() fixture bodies
            # (golden tests, dry runs); poll() then raises ConfigError.
            if self.settings.poll is not None:
                self.poller = self._build_poller()
            interval = self.spec.poll_interval
            vars(self)["default_interval"] = (
                timedelta(seconds=duration_seconds(interval))
                if interval
                else Polling.default_interval
            )
        else:
            vars(self)["default_interval"] = _IDLE_INTERVAL

    def _build_poller(self) -> Poller:
        assert self.settings.poll is not None  # noqa: S101 - checked by the caller
        return Poller(
            spec=self.spec,
            engine=self.engine,
            settings=self.settings.poll,
            secret=self._secret,
            runtime=self.runtime,
            scope=self._poll_scope,
        )

    def _poll_scope(self, received_at: datetime) -> Scope:
        return Scope(
            base_iri=self.runtime.base_iri,
            source=self.source,
            tenant=self.tenant,
            vendor=self.spec.vendor,
            received_at=received_at,
        )

    # --- identity of the instance ----------------------------------------------------------

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    @property
    def account_home_page(self) -> str:
        return (
            self.settings.actor_home_page
            or self.spec.actor_defaults.account_home_page
            or super().account_home_page
        )

    @property
    def drop_on_auth_failure(self) -> bool:
        """True when a failed check must be answered 2xx and dropped (WebSub-style hubs)."""
        return self.spec.ingress.on_auth_failure == "2xx_and_drop"

    @property
    def redacted_query_params(self) -> frozenset[str]:
        """Query parameters that carry secrets and must never be logged."""
        return frozenset(a.param for a in self.spec.auth if isinstance(a, QueryTokenSpec))

    def active_capabilities(self) -> frozenset[Capability]:
        """The capability this instance uses (its mapping's mode); the class declares both."""
        polls = self.spec.mode == "poll"
        return frozenset({Capability.POLLING if polls else Capability.WEBHOOK})

    def check(self) -> None:
        """Nothing to call: the mapping, the secrets and (poll mode) the request templates were
        checked when the instance was built. A poll-mode probe is deliberately not sent: every
        request spends the vendor's rate limit (Together: 1 per minute, or the key is revoked).
        """

    # --- Polling capability ----------------------------------------------------------------

    def initial_cursor(self, since: datetime) -> PollCursor:
        """Where a first run or a backfill from `since` begins (see `connectors.webhook.poll`)."""
        if self.spec.mode != "poll":
            return PollCursor()
        return self._require_poller().initial_cursor(since)

    def poll(self, cursor: PollCursor | None, *, until: datetime) -> PollResult[PollCursor]:
        """ONE request of a poll-mode mapping; in webhook mode nothing (no I/O, no events)."""
        if self.spec.mode != "poll":
            return PollResult(events=[], next_cursor=None, has_more=False)
        return self._require_poller().poll(cursor, until=until)

    def _require_poller(self) -> Poller:
        if self.poller is None:
            raise ConfigError(
                f"webhook {self.source}: a mode: poll mapping needs settings.poll (base_url)"
            )
        return self.poller

    def _refuse_push(self) -> None:
        if self.spec.mode == "poll":
            raise BadRequest(
                f"connector instance for {self.spec.vendor} polls the vendor's API "
                "(mode: poll); it has no webhook endpoint",
                status=404,
            )

    # --- secrets and verifiers -------------------------------------------------------------

    def _secret(self, ref: str) -> SecretStr | None:
        secrets = self.settings.secrets
        if ref in secrets:
            return secrets[ref]
        scheme, sep, bare = ref.partition(":")
        if sep and scheme in ("env", "file") and bare in secrets:
            return secrets[bare]
        return None

    def _secrets(self, refs: Sequence[str]) -> list[SecretStr]:
        """The current secret (the first name) is required; the previous one is optional,
        since outside a rotation there is none."""
        found = [s for s in (self._secret(r) for r in refs) if s is not None]
        if not refs or self._secret(refs[0]) is None:
            raise ConfigError(
                f"webhook {self.source}: secret {refs[0] if refs else '?'!r} is not in "
                "settings.secrets"
            )
        return found

    def _build_verifiers(self) -> None:
        clock = self.runtime.clock
        for auth in self.spec.auth:
            if isinstance(auth, HmacSpec):
                self._verifiers.append(
                    HmacVerifier(
                        secrets=self._secrets(auth.secrets),
                        header=auth.header,
                        clock=clock,
                        algorithm=auth.algorithm,
                        allowed_algorithms=auth.allowed_algorithms,
                        encoding=auth.encoding,
                        prefix=auth.prefix,
                        signed_string=auth.signed_string,
                        secret_encoding=auth.secret_encoding,
                        timestamp_header=auth.timestamp_header,
                        timestamp_unit=auth.timestamp_unit,
                        tolerance_seconds=auth.tolerance_seconds,
                    )
                )
            elif isinstance(auth, StaticHeaderSpec):
                self._verifiers.append(
                    StaticHeaderVerifier(
                        header=auth.header, scheme=auth.scheme, secrets=self._secrets(auth.secrets)
                    )
                )
            elif isinstance(auth, BasicAuthSpec):
                username: SecretStr | str | None = auth.username
                if auth.username_secret is not None:
                    username = self._secrets([auth.username_secret])[0]
                assert username is not None  # noqa: S101 - the spec requires one of them
                self._verifiers.append(
                    BasicAuthVerifier(username=username, passwords=self._secrets(auth.secrets))
                )
            elif isinstance(auth, QueryTokenSpec):
                self._verifiers.append(
                    QueryTokenVerifier(param=auth.param, secrets=self._secrets(auth.secrets))
                )
            elif isinstance(auth, IpAllowlistSpec):
                self._verifiers.append(_IpAllowlist(auth))
            elif isinstance(auth, JsonFieldEqualsSpec):
                keys = tuple(secret_bytes(s) for s in self._secrets(auth.secrets))
                self._item_checks.append((auth.path, keys))
        for hs in self.spec.handshakes:
            if isinstance(hs, HmacChallengeSpec):
                self._secrets([hs.secret])

    # --- Webhook capability ----------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Run every configured verifier; all must pass."""
        if not self._verifiers:
            raise InvalidSignature(f"mapping {self.spec.vendor} accepts no webhooks (mode: poll)")
        for verifier in self._verifiers:
            try:
                verifier.verify(request)
            except InvalidSignature:
                raise
            except (ValueError, TypeError, UnicodeError):
                # Belt and braces: a verifier bug on odd input must read as invalid, not 500.
                raise InvalidSignature("malformed request") from None

    def _scope(self, request: WebhookRequest) -> Scope:
        return Scope(
            base_iri=self.runtime.base_iri,
            source=self.source,
            tenant=self.tenant,
            vendor=self.spec.vendor,
            received_at=request.received_at,
        )

    def _json_or_none(self, request: WebhookRequest) -> Any:
        if len(request.body) > self.spec.ingress.max_body_bytes:
            return None
        try:
            return self._load_json(request.body)
        except BadRequest:
            return None

    def _matches(self, expr: str, data: Any, scope: Scope) -> bool:
        scope.root = data
        try:
            return truthy(compile_expression(expr).search(data, scope))
        except ExpressionError:
            return False

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        """Answer the first configured handshake that matches the request, else None.

        In poll mode every request is refused here with 404 (BadRequest), before any verifier.
        """
        self._refuse_push()
        method = request.method.upper()
        scope = self._scope(request)
        for hs in self.spec.handshakes:
            if isinstance(hs, EchoQueryParamSpec):
                value = request.query(hs.param) if method == hs.method else None
                if value is None:
                    continue
                if hs.topics is not None and request.query(hs.topic_param) not in hs.topics:
                    # WebSub: a subscription we never asked for is refused with 404.
                    return WebhookResponse(status=404, body=b"unknown topic", content_type=_TEXT)
                return WebhookResponse(status=200, body=value.encode("utf-8"), content_type=_TEXT)
            if isinstance(hs, StaticResponseSpec):
                if hs.method is not None and method != hs.method.upper():
                    continue
                if hs.query_param is not None and request.query(hs.query_param) is None:
                    continue
                if hs.when is not None and not self._matches(
                    hs.when, self._json_or_none(request), scope
                ):
                    continue
                return WebhookResponse(
                    status=hs.status, body=hs.body.encode("utf-8"), content_type=hs.content_type
                )
            if method != "POST":
                continue
            data = self._json_or_none(request)
            if not isinstance(data, dict) or not self._matches(hs.when, data, scope):
                continue
            if isinstance(hs, EchoJsonFieldSpec):
                answer = self._challenge(hs.field, data, scope)
                if answer is None:
                    continue
                if hs.respond_as == "json":
                    body = json.dumps({"challenge": answer}).encode("utf-8")
                    return WebhookResponse(body=body, content_type="application/json")
                return WebhookResponse(body=answer.encode("utf-8"), content_type=_TEXT)
            token = self._challenge(hs.token, data, scope)
            if token is None:
                continue
            if hs.verify:
                try:
                    self.verify(request)
                except InvalidSignature:
                    return WebhookResponse(status=401, body=b"", content_type=_TEXT)
            secret = self._secret(hs.secret)
            assert secret is not None  # noqa: S101 - checked when the instance was built
            digest = hmac_digest(secret_bytes(secret), token.encode("utf-8"), hs.algorithm)
            body = json.dumps({"plainToken": token, "encryptedToken": digest.hex()}).encode()
            return WebhookResponse(body=body, content_type="application/json")
        return None

    @staticmethod
    def _challenge(expr: str, data: Any, scope: Scope) -> str | None:
        try:
            value = compile_expression(expr).search(data, scope)
        except ExpressionError:
            return None
        if not isinstance(value, str) or not value or len(value) > _MAX_CHALLENGE:
            return None
        return value

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """Decode the body per its content type, explode it into items, one event per item.

        Also in poll mode: the receiver never gets here (handshake() refuses), but golden tests
        and dry runs feed poll-mode mappings fixture bodies through parse().
        """
        ingress = self.spec.ingress
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in ingress.content_types:
            raise BadRequest(f"unsupported content type {content_type or '(none)'!r}", status=415)
        body = self._decompress(request)
        if content_type == "application/json":
            data = self._load_json(body)
        elif content_type == "application/x-www-form-urlencoded":
            data = self._load_form(body)
        else:
            data = self._load_csv(body)
        scope = self._scope(request)
        events: list[SourceEvent] = []
        for item in self.engine.explode(data, raw=request.body, scope=scope):
            if not self._item_authentic(item.payload, scope):
                # Graph clientState: a foreign item in an otherwise fine delivery is dropped
                # (the delivery is still acknowledged, as Graph expects).
                logger.warning(
                    "dropped an item failing json_field_equals",
                    extra={"connector": self.name, "instance": self.instance_id},
                )
                continue
            # The payload is decoded JSON (or form or CSV text) by construction, so pydantic's
            # JsonValue check would only walk every value again: it was a fifth of receiving a
            # batch (bench/profile_stages.py). The other fields are the hub's own values.
            events.append(
                SourceEvent.model_construct(
                    instance_id=self.instance_id,
                    event_type=item.event_type,
                    payload=item.payload,
                    delivery_id=item.delivery_id,
                    received_at=request.received_at,
                    via="webhook",
                )
            )
        return events

    def _item_authentic(self, payload: dict[str, Any], scope: Scope) -> bool:
        data = self.engine.data(payload)
        for path, keys in self._item_checks:
            scope.root = data
            try:
                value = compile_expression(path).search(data, scope)
            except ExpressionError:
                return False
            if not isinstance(value, str) or not matches_any(value.encode("utf-8"), keys):
                return False
        return True

    def _decompress(self, request: WebhookRequest) -> bytes:
        limit = self.spec.ingress.max_body_bytes
        if len(request.body) > limit:
            raise BadRequest("body too large", status=413)
        encoding = (request.header("Content-Encoding") or "identity").strip().lower()
        if encoding in ("identity", ""):
            return request.body
        if encoding != "gzip":
            raise BadRequest(f"unsupported content encoding {encoding!r}", status=415)
        # Bounded inflate: a small gzip bomb must not expand past the body cap.
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(request.body, limit + 1)
        except zlib.error:
            raise BadRequest("malformed gzip body") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise BadRequest("body too large", status=413)
        return body

    def _load_json(self, raw: bytes | str) -> Any:
        def no_constants(name: str) -> Any:
            raise ValueError(f"{name} is not JSON")

        # orjson first: it parses in C, several times faster than the standard library. What
        # it refuses (NaN, 1e400, lone surrogates, nesting past its own limit, bad UTF-8) goes
        # through the standard library, whose answer (a value or the error) is the one this
        # connector has always given. So does any body with a run of 19 or more digits: orjson
        # reads an integer beyond 64 bits as a float, silently losing digits of an id.
        data: Any = _UNPARSED
        if isinstance(raw, str):
            long_integer = _LONG_DIGITS_TEXT.search(raw) is not None
        else:
            long_integer = _LONG_DIGITS.search(raw) is not None
        if not long_integer:
            with contextlib.suppress(orjson.JSONDecodeError):
                data = orjson.loads(raw)
        if data is _UNPARSED:
            try:
                data = json.loads(raw, parse_constant=no_constants)
            except RecursionError:
                raise BadRequest("JSON nested too deeply", status=415) from None
            except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                raise BadRequest("malformed JSON body") from None
        limit = self.spec.ingress.max_depth
        if json_depth(data, stop_above=limit) > limit:
            raise BadRequest("JSON nested too deeply", status=415)
        return data

    def _load_form(self, body: bytes) -> Any:
        try:
            text = body.decode("utf-8")
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("malformed form body") from None
        payload_field = self.spec.ingress.form_payload_field
        if payload_field and payload_field in fields:
            # Slack interactivity style: the form carries JSON in one field.
            return self._load_json(fields[payload_field][0])
        return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}

    @staticmethod
    def _load_csv(body: bytes) -> Any:
        try:
            text = body.decode("utf-8-sig")  # exports often start with a BOM
            reader = csv.DictReader(io.StringIO(text), restkey="_extra", restval="")
            return [dict(row) for row in reader]
        except (UnicodeDecodeError, csv.Error):
            raise BadRequest("malformed CSV body") from None

    def acknowledge(
        self, request: WebhookRequest, events: Sequence[SourceEvent]
    ) -> WebhookResponse:
        ack = self.spec.ingress.ack
        return WebhookResponse(
            status=ack.status, body=ack.body.encode("utf-8"), content_type=ack.content_type
        )

    # --- mapping ---------------------------------------------------------------------------

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        """Route the item and fill the matching statement templates (see `engine`)."""
        return self.engine.map(event.event_type, event.payload, ctx)


_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")
_UNPARSED = object()
