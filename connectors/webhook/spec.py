"""The mapping-file format of the generic webhook connector (vendors.md 7.6 and 7.7).

A mapping file is YAML validated by `MappingSpec`. Every expression is compiled when the file is
loaded, so a typo fails ``lxhub config check`` instead of the first delivery. Unknown keys are
errors everywhere. Which keys hold *expressions* (JMESPath, see `expressions`) and which hold
*literals* is fixed per key and listed in ``connectors/webhook/README.md``.

Secrets never appear in a mapping: verifiers name them (``current``, ``previous``, or a reference
such as ``env:ACMECOACH_SECRET``) and the connector instance's ``settings.secrets`` holds the
values.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from connectors.webhook.expressions import ExpressionError, check_vars, compile_expression
from connectors.webhook.pollspec import (
    Duration,
    PollRequests,
    PollRequestSpec,
    RateLimitSpec,
    SnapshotSpec,
    placeholders,
)

__all__ = [
    "ActivityRef",
    "ActivitySpec",
    "ActorSpec",
    "AgentObjectSpec",
    "AuthSpec",
    "BasicAuthSpec",
    "ContextSpec",
    "EchoJsonFieldSpec",
    "EchoQueryParamSpec",
    "HandshakeSpec",
    "HmacChallengeSpec",
    "HmacSpec",
    "IngressSpec",
    "IpAllowlistSpec",
    "JsonFieldEqualsSpec",
    "MappingSpec",
    "PollRequestSpec",
    "QueryTokenSpec",
    "ResultSpec",
    "RouteSpec",
    "StatementTemplate",
    "StaticHeaderSpec",
    "StaticResponseSpec",
    "TextSpec",
    "VerbSpec",
    "load_mapping",
]

ContentType = Literal["application/json", "application/x-www-form-urlencoded", "text/csv"]
SUPPORTED_CONTENT_TYPES: tuple[str, ...] = (
    "application/json",
    "application/x-www-form-urlencoded",
    "text/csv",
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VERB_KEY = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_ABS_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_SECRET_REF = re.compile(r"^(?:(?:env|file):)?[A-Za-z0-9_.\-/]+$")
_DEFAULT_SECRETS = ["current", "previous"]


def _expr(value: str) -> str:
    """Validate an expression string at load time and keep its text."""
    try:
        compile_expression(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return value


def _iri(value: str) -> str:
    if not _ABS_IRI.match(value):
        raise ValueError(f"{value!r} is not an absolute IRI")
    return value


Expr = Annotated[str, Field(min_length=1), AfterValidator(_expr)]
"""A JMESPath expression, compiled (and its functions checked) when the mapping loads."""
Iri = Annotated[str, AfterValidator(_iri)]
"""A literal absolute IRI."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _secret_ref(ref: str) -> str:
    if not _SECRET_REF.match(ref):
        raise ValueError(f"{ref!r} is not a secret name; put the value in settings.secrets")
    return ref


def _secret_refs(refs: list[str]) -> list[str]:
    if not 1 <= len(refs) <= 2:
        raise ValueError("name 1 or 2 secrets (the current one, then the one being rotated out)")
    return refs


SecretRef = Annotated[str, AfterValidator(_secret_ref)]
SecretRefs = Annotated[list[SecretRef], AfterValidator(_secret_refs)]


# --- authenticity (7.6 B) -------------------------------------------------------------------


class HmacSpec(_Spec):
    """An HMAC signature header over a signed string (GitHub/WebSub, Slack, AcmeCoach, CSOD)."""

    type: Literal["hmac"]
    header: str
    algorithm: Literal["sha1", "sha256", "sha384", "sha512"] = "sha256"
    allowed_algorithms: list[Literal["sha1", "sha256", "sha384", "sha512"]] | None = None
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    signed_string: str = "{body}"
    secret_encoding: Literal["raw", "base64", "hex"] = "raw"  # noqa: S105 - a name, no secret
    timestamp_header: str | None = None
    timestamp_unit: Literal["s", "ms"] = "s"
    tolerance_seconds: float = Field(default=300, gt=0)
    secrets: SecretRefs = Field(default_factory=lambda: list(_DEFAULT_SECRETS))


class StaticHeaderSpec(_Spec):
    """A shared secret in a header, optionally after an auth scheme (``Bearer``)."""

    type: Literal["static_header"]
    header: str
    scheme: str | None = None
    secrets: SecretRefs = Field(default_factory=lambda: list(_DEFAULT_SECRETS))


class BasicAuthSpec(_Spec):
    """HTTP Basic: the username literal (or a secret name), the password(s) by secret name."""

    type: Literal["basic_auth"]
    username: str | None = None
    username_secret: SecretRef | None = None
    secrets: SecretRefs = Field(default_factory=lambda: list(_DEFAULT_SECRETS))

    @model_validator(mode="after")
    def _one_username(self) -> BasicAuthSpec:
        if (self.username is None) == (self.username_secret is None):
            raise ValueError("set exactly one of username, username_secret")
        return self


class QueryTokenSpec(_Spec):
    """A secret query parameter; the receiver redacts it from logs."""

    type: Literal["query_token"]
    param: str
    secrets: SecretRefs = Field(default_factory=lambda: list(_DEFAULT_SECRETS))


class JsonFieldEqualsSpec(_Spec):
    """A per-item field that must equal a secret (Graph ``clientState``). Checked in parse():
    items that fail are dropped (the delivery is still acknowledged, as Graph expects)."""

    type: Literal["json_field_equals"]
    path: Expr
    secrets: SecretRefs = Field(default_factory=lambda: list(_DEFAULT_SECRETS))


class IpAllowlistSpec(_Spec):
    """Source networks; ``X-Forwarded-For`` is honoured only when sent by a trusted proxy."""

    type: Literal["ip_allowlist"]
    cidrs: list[str] = Field(min_length=1)
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("cidrs", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value


AuthSpec = Annotated[
    HmacSpec
    | StaticHeaderSpec
    | BasicAuthSpec
    | QueryTokenSpec
    | JsonFieldEqualsSpec
    | IpAllowlistSpec,
    Field(discriminator="type"),
]


# --- handshakes (7.6 C) ---------------------------------------------------------------------


class EchoJsonFieldSpec(_Spec):
    """Slack ``url_verification``: when ``when`` holds on the JSON body, echo ``field``."""

    type: Literal["echo_json_field"]
    when: Expr = "type == 'url_verification'"
    field: Expr = "challenge"
    respond_as: Literal["text", "json"] = "text"


class EchoQueryParamSpec(_Spec):
    """WebSub ``GET ?hub.challenge`` (with a topic check) or Graph ``POST ?validationToken``."""

    type: Literal["echo_query_param"]
    method: Literal["GET", "POST"] = "GET"
    param: str = "hub.challenge"
    topic_param: str = "hub.topic"
    topics: list[str] | None = None


class HmacChallengeSpec(_Spec):
    """Zoom-style: answer ``{"plainToken": x, "encryptedToken": hex(HMAC(secret, x))}``.

    The request itself is verified first (``verify: true``) because the answer is an HMAC of
    attacker-chosen text under the signing secret: unverified, it would be a signing oracle.
    """

    type: Literal["hmac_challenge"]
    when: Expr
    token: Expr = "payload.plainToken"  # noqa: S105 - a path, no secret
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    secret: SecretRef = "current"  # noqa: S105 - a secret's name, no value
    verify: bool = True


class StaticResponseSpec(_Spec):
    """A fixed answer for vendor "verify endpoint" buttons (CSOD)."""

    type: Literal["static_response"]
    method: str | None = None
    query_param: str | None = None
    when: Expr | None = None
    status: int = Field(default=200, ge=200, le=299)
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"

    @model_validator(mode="after")
    def _some_matcher(self) -> StaticResponseSpec:
        if self.method is None and self.query_param is None and self.when is None:
            raise ValueError("give at least one of method, query_param, when")
        return self


HandshakeSpec = Annotated[
    EchoJsonFieldSpec | EchoQueryParamSpec | HmacChallengeSpec | StaticResponseSpec,
    Field(discriminator="type"),
]


# --- ingress (7.6 A) ------------------------------------------------------------------------


class AckSpec(_Spec):
    status: Literal[200, 202, 204] = 200
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"

    @model_validator(mode="after")
    def _no_body_on_204(self) -> AckSpec:
        if self.status == 204 and self.body:
            raise ValueError("a 204 ack cannot have a body")
        return self


class IngressSpec(_Spec):
    content_types: list[ContentType] = Field(
        default_factory=lambda: list[ContentType](["application/json"]), min_length=1
    )
    ack: AckSpec = Field(default_factory=AckSpec)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_depth: int = Field(default=64, gt=0, le=64)
    form_payload_field: str | None = "payload"
    on_auth_failure: Literal["reject", "2xx_and_drop"] = "reject"


# --- statement templates (7.6 F, G) ---------------------------------------------------------


class ActorSpec(_Spec):
    """A person, resolved by the hub's identity resolver: email first, then the account id."""

    email: Expr | None = None
    account_name: Expr | None = None
    name: Expr | None = None

    @model_validator(mode="after")
    def _some_identifier(self) -> ActorSpec:
        if self.email is None and self.account_name is None:
            raise ValueError("an actor needs email and/or account_name")
        return self


class TextSpec(_Spec):
    """A language-map entry: ``path`` (expression) or ``value`` (literal), plus the language.

    ``free_text: true`` marks user-written text (goal titles, notes): it is emitted only when
    the instance sets ``include_free_text``.
    """

    path: Expr | None = None
    value: str | None = None
    lang: str = "en"
    lang_path: Expr | None = None
    free_text: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> TextSpec:
        if (self.path is None) == (self.value is None):
            raise ValueError("set exactly one of path, value")
        return self


class ActivitySpec(_Spec):
    """An Activity: ``id`` (expression), ``type`` (literal IRI), name/description, moreInfo."""

    id: Expr
    type: Iri | None = None
    name: TextSpec | None = None
    description: TextSpec | None = None
    more_info: Expr | None = None


class AgentObjectSpec(_Spec):
    """An Agent as the statement object (the coachee of a ``mentored`` statement)."""

    agent: ActorSpec


class ActivityRef(_Spec):
    """A context activity: ``id`` (expression) and an optional literal ``type``."""

    id: Expr
    type: Iri | None = None


def _refs(value: Any) -> Any:
    """Allow a bare expression string as shorthand for ``{id: <expression>}``."""
    if isinstance(value, list):
        return [{"id": v} if isinstance(v, str) else v for v in value]
    return value


def _extension_keys(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        try:
            check_vars(key)
        except ExpressionError as exc:
            raise ValueError(f"extension key {key!r}: {exc}") from None
    return value


def _key_names(value: dict[str, str] | list[str]) -> dict[str, str] | list[str]:
    if not value:
        raise ValueError("a natural key needs at least one part")
    if isinstance(value, dict):
        for name in value:
            if not _KEY_NAME.match(name):
                raise ValueError(f"natural-key name {name!r}: letters, digits, '_', '.', '-'")
    return value


ActivityRefs = Annotated[list[ActivityRef], BeforeValidator(_refs)]
Extensions = Annotated[dict[str, Expr], AfterValidator(_extension_keys)]
NaturalKey = Annotated[dict[str, Expr] | list[Expr], AfterValidator(_key_names)]
"""Ordered ``{name: expression}``, or a list of expressions named ``k1..kn``."""


class ResultSpec(_Spec):
    """Result fields; a field whose value is null is omitted. ``response`` is free text."""

    completion: bool | Expr | None = None
    success: bool | Expr | None = None
    score: Expr | None = None
    duration: Expr | None = None
    response: Expr | None = None
    extensions: Extensions = Field(default_factory=dict)


class ContextSpec(_Spec):
    """Context: platform/language, registration key, instructor, activities, extensions."""

    platform: str | None = None
    language: Expr | None = None
    registration: NaturalKey | None = None
    instructor: ActorSpec | None = None
    parent: ActivityRefs = Field(default_factory=list)
    grouping: ActivityRefs = Field(default_factory=list)
    category: ActivityRefs = Field(default_factory=list)
    other: ActivityRefs = Field(default_factory=list)
    extensions: Extensions = Field(default_factory=dict)


class VerbSpec(_Spec):
    """``key`` is the natural-key token (never the IRI); ``id`` the IRI; ``display`` English."""

    key: Annotated[str, Field(pattern=_VERB_KEY.pattern)]
    id: Iri
    display: str


class StatementTemplate(_Spec):
    """One statement a route emits. ``timestamp`` and ``natural_key`` are required."""

    when: Expr | None = None
    verb: VerbSpec
    actor: ActorSpec
    object: ActivitySpec | AgentObjectSpec
    result: ResultSpec | None = None
    context: ContextSpec | None = None
    timestamp: Expr
    natural_key: NaturalKey

    @model_validator(mode="before")
    @classmethod
    def _require_natural_key(cls, data: Any) -> Any:
        # A clearer message than "field required": ids without a natural key would collapse
        # or duplicate facts, so this is the rule of 7.6 G.
        if isinstance(data, dict) and not data.get("natural_key"):
            raise ValueError(
                "natural_key is required (the fields that identify the fact; see README)"
            )
        return data

    def key_parts(self) -> list[tuple[str, str]]:
        """(name, expression) pairs in order; a list gets the names k1..kn."""
        return _named(self.natural_key)


def _named(key: NaturalKey) -> list[tuple[str, str]]:
    if isinstance(key, dict):
        return list(key.items())
    return [(f"k{i}", expr) for i, expr in enumerate(key, start=1)]


def named_parts(key: NaturalKey) -> list[tuple[str, str]]:
    """Public form of the naming rule, shared with ``context.registration``."""
    return _named(key)


class RouteSpec(_Spec):
    """``when`` (a JMESPath boolean) -> statements. First match wins unless ``continue``."""

    name: str | None = None
    when: Expr
    continue_: bool = Field(default=False, alias="continue")
    statements: list[StatementTemplate] = Field(min_length=1)


class ActorDefaults(_Spec):
    account_home_page: Iri | None = None


class MappingSpec(_Spec):
    """A whole mapping file."""

    connector: Literal["webhook"] = "webhook"
    vendor: Annotated[str, Field(pattern=_SLUG.pattern)]
    mapping_version: int = Field(ge=1)
    platform: str
    mode: Literal["webhook", "poll"] = "webhook"
    # Poll mode (see `pollspec` and the README's "Poll mode" section).
    request: PollRequests | None = None
    watermark: Expr | None = None
    watermark_overlap: Duration | None = None
    watermark_window: Duration | None = None
    watermark_start: Duration = "P30D"
    snapshot: SnapshotSpec | None = None
    rate_limit: RateLimitSpec | None = None
    poll_interval: Duration | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    ingress: IngressSpec = Field(default_factory=IngressSpec)
    auth: list[AuthSpec] = Field(default_factory=list)
    handshakes: list[HandshakeSpec] = Field(default_factory=list)
    items: Expr = "[@]"
    event_type: Expr | None = None
    delivery_id: Expr | None = None
    actor_defaults: ActorDefaults = Field(default_factory=ActorDefaults)
    routes: list[RouteSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _webhook_needs_auth(self) -> MappingSpec:
        verifiers = [a for a in self.auth if a.type != "json_field_equals"]
        if self.mode == "webhook" and not verifiers:
            raise ValueError("a webhook-mode mapping needs at least one request verifier in auth")
        if self.mode == "poll":
            self._check_poll()
        elif self.request is not None:
            raise ValueError("request is for mode: poll")
        return self

    def _check_poll(self) -> None:
        if not self.request:
            raise ValueError("a poll-mode mapping needs request")
        names = [r.name for r in self.request]
        if len(set(names)) != len(names):
            raise ValueError(f"request names must be unique, got {names}")
        for req in self.request:
            if self.snapshot is not None and req.uses_window():
                raise ValueError(
                    f"request {req.name!r}: {{watermark}}/{{until}} need watermark mode; "
                    "a snapshot mapping reads the whole report every time"
                )
        if self.snapshot is not None and (
            self.watermark or self.watermark_overlap or self.watermark_window
        ):
            raise ValueError("choose one cursor: snapshot, or watermark/watermark_overlap/window")
        for value in self.variables.values():
            if placeholders(value):
                raise ValueError("variables are literals; they cannot hold placeholders")

    @property
    def poll_requests(self) -> list[PollRequestSpec]:
        """The poll requests, in polling order (empty in webhook mode)."""
        return list(self.request or [])

    @property
    def source(self) -> str:
        """The statement-id source slug (vendors.md 1.4)."""
        return f"webhook:{self.vendor}"

    def secret_names(self) -> set[str]:
        """Every secret reference the mapping uses."""
        names: set[str] = set()
        for auth in self.auth:
            if isinstance(auth, IpAllowlistSpec):
                continue
            names.update(auth.secrets)
            if isinstance(auth, BasicAuthSpec) and auth.username_secret:
                names.add(auth.username_secret)
        for hs in self.handshakes:
            if isinstance(hs, HmacChallengeSpec):
                names.add(hs.secret)
        return names


def load_mapping(text: str) -> MappingSpec:
    """Parse and validate mapping YAML (``yaml.safe_load`` only: no tags, no objects)."""
    data = yaml.safe_load(text)
    return MappingSpec.model_validate(data)
