"""The connector conformance kit: inherited pytest tests every connector must pass.

A connector's whole conformance file is one class (singer-sdk / Airbyte CDK idea)::

    from hub.testing import PollingConformance, WebhookConformance

    class TestAcme(WebhookConformance):
        connector = AcmeConnector
        entry_point = "acme"               # checked against installed entry points
        sample_settings = {"tenant": "acme.example.com", "signing_secret": "test-secret"}
        fixtures = Path(__file__).parent / "fixtures"  # events/*.json + expected/*.json
        skip = {"webhook.handshake": "Acme has no URL verification"}  # reason required

        def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest: ...
        def mock_check_success(self, router: StrictRouter) -> None: ...
        def mock_check_failure(self, router: StrictRouter, status: int) -> None: ...

Inherited test groups (opt-out keys in `OPT_OUT_KEYS`; a group name opts out the whole group):

1. ``plugin.*``   entry point, name, capabilities, registry validation, settings model
                  (extra="forbid", SecretStr for secret-like fields, JSON Schema,
                  descriptions), sample settings.
2. ``check.*``    `check()` with mocked success, 401 -> ConfigError, 5xx -> TransientError.
3. ``polling.*``  (PollingConformance) first poll, resume, `until`, termination, repeated
                  token -> PaginationLoop, 429 -> RateLimited (seconds and HTTP date), only
                  mocked calls.
4. ``webhook.*``  (WebhookConformance) valid, tampered, stale, missing and malformed headers
                  (InvalidSignature and nothing else), handshake, parse() without I/O.
5. ``mapping.*``  golden files, every event type covered, determinism, IFI strategy and no raw
                  email when hashed/account identifiers are configured.
6. ``e2e.*``      request/poll -> map -> canonical bytes -> mocked LRS, twice: same ids and
                  bytes, the re-send counted as already stored.

Everything runs offline: a `StrictRouter` (respx, assert_all_called and assert_all_mocked) is
active in every test, real sockets are blocked, and time is a `FrozenClock` at `now`.

(This module is over 500 lines on purpose: it is the whole contract, test by test, in one place
so plugin authors read one file.)
"""

from __future__ import annotations

import email.utils
import json
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import pytest
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from hub.clock import FrozenClock
from hub.connector import Capability, Connector, ConnectorRuntime, Polling, Webhook
from hub.cursor import Cursor
from hub.errors import (
    ConfigError,
    InvalidSignature,
    MappingError,
    PaginationLoop,
    RateLimited,
    TransientError,
)
from hub.events import PollResult, SourceEvent, WebhookRequest
from hub.mapping import ActorResolver, MappingContext, Unmapped
from hub.testing.fixtures import (
    DEFAULT_NOW,
    IfiStrategy,
    MemoryState,
    MockLrs,
    StaticActorResolver,
    StrictRouter,
    assert_golden,
    block_network,
    strict_router,
)
from hub.xapi import Statement, StatementJson, XapiVersion, canonical_bytes, validate_statement

__all__ = [
    "BASE_IRI",
    "ENTRY_POINT_GROUP",
    "OPT_OUT_KEYS",
    "ConnectorConformance",
    "Delivery",
    "Harness",
    "PollingConformance",
    "SuiteConfig",
    "WebhookConformance",
    "context_factory",
    "deliver_statements",
    "normalize_events",
    "run_in_process",
]

BASE_IRI = "https://lrs-hub.example.com/xapi"
ENTRY_POINT_GROUP = "lxhub.connectors"
XAPI_VERSION: XapiVersion = "1.0.3"

OPT_OUT_KEYS: Mapping[str, str] = {
    "plugin.entry_point": "the entry point resolves to the connector class",
    "plugin.name": "`name` equals the entry-point name and is lower-case-with-hyphens",
    "plugin.capabilities": "Polling and/or Webhook declared (and the suite's one among them)",
    "plugin.registry": "hub.registry validates the class like an installed plugin",
    "plugin.settings_extra": "settings models forbid unknown keys",
    "plugin.secrets": "secret-like settings fields are SecretStr",
    "plugin.json_schema": "the settings JSON Schema exports",
    "plugin.descriptions": "every settings field has a description",
    "plugin.sample_settings": "sample settings validate; an unknown key is rejected",
    "plugin.status_details": "status_details() gives text, calls nothing, shows no secret",
    "check.success": "check() passes against the mocked source",
    "check.unauthorized": "check() raises ConfigError on 401",
    "check.server_error": "check() raises TransientError on 5xx",
    "polling.first_poll": "the first poll returns events and a cursor",
    "polling.resume": "resuming from a cursor returns no event seen before",
    "polling.until": "cursors are monotonic, serialisable and never beyond `until`",
    "polling.pagination": "pagination terminates",
    "polling.repeated_token": "a repeated page token raises PaginationLoop",
    "polling.rate_limit": "429 raises RateLimited with Retry-After (seconds and HTTP date)",
    "polling.only_mocked": "poll() makes only the mocked calls",
    "webhook.valid": "a validly signed request verifies",
    "webhook.tampered": "a tampered body is rejected",
    "webhook.stale": "a stale timestamp is rejected",
    "webhook.missing_header": "a missing signature header is InvalidSignature",
    "webhook.malformed_header": "malformed signature headers are InvalidSignature",
    "webhook.handshake": "the handshake echoes the challenge",
    "webhook.parse_no_io": "parse() makes no HTTP call",
    "mapping.golden": "fixtures/events map to valid xAPI equal to fixtures/expected",
    "mapping.coverage": "every mapped event type has a fixture",
    "mapping.deterministic": "mapping the same event twice gives the same ids and bytes",
    "mapping.actor_ifi": "actors follow the IFI strategy; no raw email when hashed/account",
    "e2e.deliver": "request/poll -> map -> LRS twice, the re-send already stored",
}
_GROUPS = frozenset(key.split(".", 1)[0] for key in OPT_OUT_KEYS)
_SECRET_NAME = re.compile(r"secret|token|password|passwd|key", re.IGNORECASE)
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_IFI_KEYS = ("mbox", "mbox_sha1sum", "openid", "account")
_ALLOWED_IFIS: Mapping[str, frozenset[str]] = {
    "mbox": frozenset({"mbox", "account"}),
    "mbox_sha1sum": frozenset({"mbox_sha1sum", "account"}),
    "account": frozenset({"account"}),
}
_NOT_SIGNATURE = frozenset(
    {"content-type", "content-length", "host", "user-agent", "accept", "accept-encoding"}
)
_MALFORMED = (
    "",
    " ",
    "garbage",
    "v0=",
    "v1=",
    "sha256=",
    "sha1=",
    "v0=" + "z" * 64,
    "0",
    "-1",
    "9" * 30,
    "t=,v1=",
    "==",
    "\u00e9\u00e8\u00ea",
)

F = TypeVar("F", bound=Callable[..., Any])


def conformance(key: str) -> Callable[[F], F]:
    """Tag a test method with its opt-out key (must be one of `OPT_OUT_KEYS`)."""
    if key not in OPT_OUT_KEYS:
        raise ValueError(f"unknown conformance key {key!r}")

    def tag(fn: F) -> F:
        fn.__lxhub_key__ = key  # type: ignore[attr-defined]
        return fn

    return tag


@dataclass(frozen=True)
class SuiteConfig:
    """The opt-outs of one conformance class (singer-sdk's SuiteConfig idea).

    `skip` maps an opt-out key (`webhook.handshake`) or a group (`check`) to the reason, which
    is shown in the skip message. Unknown keys and empty reasons are errors, so a typo cannot
    silently keep a test running or skip the wrong one.
    """

    skip: Mapping[str, str] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """Everything wrong with the configuration (empty when fine)."""
        out: list[str] = []
        for key, reason in self.skip.items():
            if key not in OPT_OUT_KEYS and key not in _GROUPS:
                close = [k for k in OPT_OUT_KEYS if k.split(".")[-1] in key or key in k]
                hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
                out.append(f"unknown opt-out key {key!r}{hint}")
            if not isinstance(reason, str) or not reason.strip():
                out.append(f"opt-out {key!r} needs a reason (a non-empty string)")
        return out

    def reason(self, key: str) -> str | None:
        """Why `key` is opted out (exact key first, then its group), or None."""
        if key in self.skip:
            return self.skip[key]
        return self.skip.get(key.split(".", 1)[0])


@dataclass
class Harness:
    """One test's world: the connector instance, its strict router, its frozen clock."""

    connector: Connector[Any]
    router: StrictRouter
    clock: FrozenClock
    http: httpx.Client


# --- the in-process pipeline (stand-in for hub.pipeline in e2e tests) ----------------------


@dataclass(frozen=True)
class Delivery:
    """What one delivery round did: the statement ids and exact bytes POSTed, the answer."""

    statement_ids: list[str]
    body: bytes
    status: int
    bodies: list[bytes]


def context_factory(
    connector: Connector[Any],
    *,
    actors: ActorResolver,
    base_iri: str = BASE_IRI,
    instance_id: str = "test",
) -> Callable[[SourceEvent], MappingContext]:
    """A `MappingContext` per event with the connector's declared facts."""

    def make(event: SourceEvent) -> MappingContext:
        return MappingContext.for_connector(
            connector, event, base_iri=base_iri, actors=actors, instance_id=instance_id
        )

    return make


def normalize_events(
    connector: Connector[Any],
    events: Sequence[SourceEvent],
    *,
    make_context: Callable[[SourceEvent], MappingContext],
) -> list[Statement | StatementJson]:
    """Map raw events to statements (Unmapped events give none; errors propagate)."""
    out: list[Statement | StatementJson] = []
    for event in events:
        result = connector.map(event, make_context(event))
        if not isinstance(result, Unmapped):
            out.extend(result)
    return out


def deliver_statements(
    statements: Sequence[Statement | StatementJson],
    *,
    http: httpx.Client,
    endpoint: str,
    version: XapiVersion = XAPI_VERSION,
) -> Delivery:
    """POST the canonical bytes of `statements` as one JSON array to `{endpoint}/statements`."""
    bodies = [canonical_bytes(s, version=version) for s in statements]
    body = b"[" + b",".join(bodies) + b"]"
    response = http.post(
        endpoint.rstrip("/") + "/statements",
        content=body,
        headers={"content-type": "application/json", "x-experience-api-version": version},
    )
    return Delivery(
        statement_ids=[str(s.id) for s in statements],
        body=body,
        status=response.status_code,
        bodies=bodies,
    )


def run_in_process(
    connector: Connector[Any],
    events: Sequence[SourceEvent],
    *,
    make_context: Callable[[SourceEvent], MappingContext],
    http: httpx.Client,
    lrs_endpoint: str,
) -> Delivery:
    """normalize -> canonical bytes -> deliver, in-process (no Celery, no store)."""
    statements = normalize_events(connector, events, make_context=make_context)
    return deliver_statements(statements, http=http, endpoint=lrs_endpoint)


# --- helpers --------------------------------------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The leaf types of an annotation (Optional/Union/Annotated/list[...] unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType) or origin in (list, tuple, set, frozenset, dict):
        leaves: list[Any] = []
        for arg in typing.get_args(annotation):
            if arg is not type(None) and arg is not Ellipsis:
                leaves.extend(_unwrap(arg))
        return leaves
    return [annotation]


def _fields(
    model: type[BaseModel], prefix: str = "", seen: frozenset[type[BaseModel]] = frozenset()
) -> Iterator[tuple[str, FieldInfo, type[BaseModel]]]:
    """(dotted path, field, owner) for every field, nested models included."""
    for name, info in model.model_fields.items():
        path = prefix + name
        yield path, info, model
        for leaf in _unwrap(info.annotation):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel) and leaf not in seen:
                yield from _fields(leaf, path + ".", seen | {model})


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for _, info, _owner in _fields(model):
        for leaf in _unwrap(info.annotation):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel) and leaf not in found:
                found.append(leaf)
    return found


def _is_secret(annotation: Any) -> bool:
    leaves = _unwrap(annotation)
    return bool(leaves) and all(
        isinstance(t, type) and issubclass(t, SecretStr | SecretBytes) for t in leaves
    )


def _secret_values(value: Any) -> Iterator[str]:
    """The plain text of every SecretStr/SecretBytes inside a settings object."""
    if isinstance(value, SecretStr | SecretBytes):
        raw = value.get_secret_value()
        yield raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)


def _walk(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _differing_paths(left: Any, right: Any) -> list[str]:
    """JSON paths whose leaves differ (or exist on one side only)."""
    a = {p: v for p, v in _walk(left) if not isinstance(v, dict | list)}
    b = {p: v for p, v in _walk(right) if not isinstance(v, dict | list)}
    return sorted(p for p in a.keys() | b.keys() if a.get(p, ...) != b.get(p, ...))


def _emails_in(value: Any) -> set[str]:
    found: set[str] = set()
    for _, leaf in _walk(value):
        if isinstance(leaf, str):
            text = leaf.strip().removeprefix("mailto:")
            if _EMAIL.match(text):
                found.add(text.lower())
    return found


def _datetimes(cursor: Cursor) -> dict[str, datetime]:
    return {k: v for k, v in cursor if isinstance(v, datetime)}


def _fail_hook(owner: object, hook: str, key: str, what: str) -> typing.NoReturn:
    pytest.fail(
        f"{type(owner).__name__} must implement {hook} ({what}), "
        f"or opt out with skip = {{{key!r}: '<reason>'}}",
        pytrace=False,
    )


def _expect_invalid(call: Callable[[], object], what: str) -> None:
    try:
        call()
    except InvalidSignature:
        return
    except Exception as exc:  # the point of the check: anything else is a bug
        pytest.fail(
            f"{what}: verify() raised {type(exc).__name__}: {exc}. Malformed or forged input "
            "must raise hub.errors.InvalidSignature and nothing else.",
            pytrace=False,
        )
    pytest.fail(f"{what}: verify() accepted the request; it must raise InvalidSignature")


# --- the base class -------------------------------------------------------------------------


class ConnectorConformance:
    """Tests every connector inherits; subclass it (or a capability suite) in a `Test*` class.

    Class attributes:
        connector: the connector class under test.
        entry_point: its entry-point name in group `lxhub.connectors` (default `connector.name`).
        check_entry_point: set False while the distribution is not installed (local dev only).
        sample_settings: settings that validate; never real secrets.
        fixtures: directory with `events/*.json` and `expected/*.json`.
        skip: opt-outs, `{key or group: reason}` (see `OPT_OUT_KEYS`).
        not_secret: secret-looking settings fields that are not secrets, `{path: reason}`.
        ifi_strategy: actor form for golden files (`mbox`, `mbox_sha1sum`, `account`).
        people: source user id -> email known to the test identity resolver.
        now: the frozen clock's time.
    """

    connector: ClassVar[type[Connector[Any]]]
    entry_point: ClassVar[str | None] = None
    check_entry_point: ClassVar[bool] = True
    sample_settings: ClassVar[Mapping[str, Any]]
    fixtures: ClassVar[Path | None] = None
    skip: ClassVar[Mapping[str, str]] = {}
    not_secret: ClassVar[Mapping[str, str]] = {}
    ifi_strategy: ClassVar[IfiStrategy] = "mbox"
    people: ClassVar[Mapping[str, str]] = {}
    now: ClassVar[datetime] = DEFAULT_NOW
    instance_id: ClassVar[str] = "test"
    base_iri: ClassVar[str] = BASE_IRI
    required_capability: ClassVar[Capability | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        problems = SuiteConfig(dict(cls.skip)).problems()
        if "connector" in cls.__dict__ and not (
            isinstance(cls.connector, type) and issubclass(cls.connector, Connector)
        ):
            problems.append(f"connector must be a hub.Connector subclass, got {cls.connector!r}")
        if problems:
            raise TypeError(f"{cls.__qualname__}: " + "; ".join(problems))

    # -- plumbing ----------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _lxhub_gate(self, request: pytest.FixtureRequest) -> None:
        key = getattr(request.function, "__lxhub_key__", None)
        if key is None:
            return
        if not hasattr(type(self), "connector"):
            pytest.fail(f"{type(self).__name__} must set `connector = <YourConnector>`")
        reason = SuiteConfig(dict(self.skip)).reason(key)
        if reason is not None:
            pytest.skip(f"opted out of {key}: {reason}")

    def settings(self) -> BaseModel:
        """The validated sample settings."""
        if not hasattr(type(self), "sample_settings"):
            pytest.fail(f"{type(self).__name__} must set `sample_settings = {{...}}`")
        return self.connector.settings_model.model_validate(dict(self.sample_settings))

    def build_connector(self, runtime: ConnectorRuntime) -> Connector[Any]:
        """Instantiate the connector; override for unusual constructors."""
        return self.connector(self.settings(), runtime=runtime)

    @contextmanager
    def harness(self) -> Iterator[Harness]:
        """A connector wired to a strict respx router and a frozen clock, network blocked.

        On a clean exit it fails if a registered route was never requested or a request was
        not mocked (even when the connector swallowed respx's error).
        """
        clock = FrozenClock(self.now)
        router = strict_router()
        with block_network():
            router.start()
            try:
                with httpx.Client(transport=router.transport()) as http:
                    runtime = ConnectorRuntime(
                        instance_id=self.instance_id,
                        base_iri=self.base_iri,
                        http=http,
                        clock=clock,
                        state=MemoryState(),
                    )
                    yield Harness(self.build_connector(runtime), router, clock, http)
                if router.unmocked:
                    calls = ", ".join(f"{r.method} {r.url}" for r in router.unmocked)
                    pytest.fail(f"the connector made unmocked requests: {calls}", pytrace=False)
                uncalled = router.uncalled_routes()
                if uncalled:
                    pytest.fail(
                        "routes registered by the test hooks were never requested: "
                        + ", ".join(uncalled)
                        + ". Either the connector does not make these calls (a bug?) or the "
                        "hook registers too much.",
                        pytrace=False,
                    )
            finally:
                router.stop(quiet=True)

    def resolver(self, strategy: IfiStrategy | None = None) -> StaticActorResolver:
        """The test identity resolver with `people` as its directory."""
        return StaticActorResolver(strategy or self.ifi_strategy, dict(self.people))

    def mapping_context(
        self, connector: Connector[Any], event: SourceEvent, *, actors: ActorResolver
    ) -> MappingContext:
        """The `MappingContext` the kit maps with (base IRI, instance `test`, connector facts)."""
        return context_factory(
            connector, actors=actors, base_iri=self.base_iri, instance_id=self.instance_id
        )(event)

    # -- fixture files -------------------------------------------------------------------------

    def event_files(self) -> list[Path]:
        """`fixtures/events/*.json`, sorted (sidecars `*.meta.json`/`*.actual.json` excluded)."""
        if self.fixtures is None:
            return []
        directory = Path(self.fixtures) / "events"
        return sorted(
            p
            for p in directory.glob("*.json")
            if not p.name.endswith((".actual.json", ".meta.json"))
        )

    def expected_file(self, event_file: Path) -> Path:
        assert self.fixtures is not None
        return Path(self.fixtures) / "expected" / event_file.name

    def events_from_fixture(self, connector: Connector[Any], path: Path) -> list[SourceEvent]:
        """Raw events of one fixture file.

        Default: a webhook connector gets the file's bytes as the body of a `signed_request`
        and `parse()`s it; a polling-only connector reads a JSON list (or one object) of
        `{"event_type": ..., "payload": ..., "delivery_id": ...}`.
        """
        if isinstance(connector, Webhook):
            request = self.signed_request(path.read_bytes(), at=self.now)
            return connector.parse(request)
        raw = json.loads(path.read_text(encoding="utf-8"))
        items = raw if isinstance(raw, list) else [raw]
        try:
            return [
                SourceEvent.model_validate(
                    {"instance_id": self.instance_id, "received_at": self.now, "via": "poll", **i}
                )
                for i in items
            ]
        except ValidationError as exc:
            pytest.fail(
                f"{path.name}: a polling fixture is a list of SourceEvent objects "
                f"({{'event_type', 'payload', optional 'delivery_id'}}): {exc}",
                pytrace=False,
            )

    def map_events(
        self, connector: Connector[Any], events: Sequence[SourceEvent], actors: ActorResolver
    ) -> list[Statement | StatementJson]:
        return normalize_events(
            connector,
            events,
            make_context=lambda e: self.mapping_context(connector, e, actors=actors),
        )

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        """Hook (webhook connectors): a request carrying `body`, validly signed at `at`."""
        _fail_hook(self, "signed_request(body, *, at)", "webhook", "a validly signed request")

    # -- 1. plugin ---------------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "event_fixture" in metafunc.fixturenames:
            files = self.event_files()
            metafunc.parametrize(
                "event_fixture", files or [None], ids=[p.stem for p in files] or ["no-fixtures"]
            )

    def _entry_point_name(self) -> str:
        return self.entry_point or self.connector.name

    @conformance("plugin.entry_point")
    def test_entry_point_resolves_to_connector(self) -> None:
        name = self._entry_point_name()
        if not self.check_entry_point:
            pytest.skip(f"check_entry_point = False: entry point {name!r} not checked")
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        assert found, (
            f"no entry point {name!r} in group {ENTRY_POINT_GROUP!r}: declare "
            f'[project.entry-points."{ENTRY_POINT_GROUP}"] {name} = '
            f'"{self.connector.__module__}:{self.connector.__qualname__}" and install the '
            "distribution (pip install -e .)"
        )
        values = sorted({ep.value for ep in found})
        assert len(values) == 1, f"entry point {name!r} is declared more than once: {values}"
        loaded = found[0].load()
        assert loaded is self.connector, (
            f"entry point {name!r} = {found[0].value} loads {loaded!r}, not {self.connector!r}"
        )

    @conformance("plugin.name")
    def test_name_matches_entry_point(self) -> None:
        name = getattr(self.connector, "name", None)
        assert name == self._entry_point_name(), (
            f"{self.connector.__qualname__}.name is {name!r} but the entry point is "
            f"{self._entry_point_name()!r}; they must be equal"
        )
        assert isinstance(name, str), f"{self.connector.__qualname__}.name must be a str"
        assert re.fullmatch(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*", name), (
            f"connector name {name!r} must be lower-case with hyphens (e.g. 'acme-coach')"
        )

    @conformance("plugin.capabilities")
    def test_capabilities_declared(self) -> None:
        caps = self.connector.capabilities()
        assert caps, f"{self.connector.__qualname__} must subclass hub.Polling and/or hub.Webhook"
        needed = self.required_capability
        assert needed is None or needed in caps, (
            f"{type(self).__name__} runs the {needed} suite but {self.connector.__qualname__} "
            f"does not declare it (capabilities: {sorted(caps)})"
        )

    @conformance("plugin.registry")
    def test_registry_accepts_connector(self) -> None:
        from hub.registry import Registry

        Registry.from_classes([self.connector])

    @conformance("plugin.settings_extra")
    def test_settings_forbid_unknown_keys(self) -> None:
        lax = [
            f"{m.__qualname__} (extra={m.model_config.get('extra')!r})"
            for m in _models(self.connector.settings_model)
            if m.model_config.get("extra") != "forbid"
        ]
        assert not lax, (
            "settings models must forbid unknown keys (model_config = ConfigDict(extra='forbid')"
            ", or subclass hub.connector.ConnectorSettings): " + ", ".join(lax)
        )

    @conformance("plugin.secrets")
    def test_secret_fields_are_secretstr(self) -> None:
        paths = {path for path, _, _ in _fields(self.connector.settings_model)}
        unknown = sorted(set(self.not_secret) - paths)
        assert not unknown, f"not_secret names fields the settings model does not have: {unknown}"
        empty = sorted(k for k, v in self.not_secret.items() if not str(v).strip())
        assert not empty, f"not_secret entries need a reason: {empty}"
        plain = [
            f"{path}: {info.annotation}"
            for path, info, _ in _fields(self.connector.settings_model)
            if (
                _SECRET_NAME.search(path.rsplit(".", 1)[-1])
                or _SECRET_NAME.search(info.alias or "")
            )
            and path not in self.not_secret
            and not _is_secret(info.annotation)
        ]
        assert not plain, (
            "secret-like settings fields (*secret*, *token*, *password*, *key*) must be "
            "pydantic SecretStr so they never reach logs: "
            + "; ".join(plain)
            + ". If a field is not a secret (e.g. token_url), list it in "
            "not_secret = {'<field>': '<reason>'}."
        )

    @conformance("plugin.json_schema")
    def test_settings_json_schema_exports(self) -> None:
        schema = self.connector.settings_model.model_json_schema()
        text = json.dumps(schema)
        assert json.loads(text) == schema
        assert schema.get("type") == "object", "the settings schema must describe an object"

    @conformance("plugin.descriptions")
    def test_settings_fields_have_descriptions(self) -> None:
        missing = [
            path
            for path, info, _ in _fields(self.connector.settings_model)
            if not (info.description or "").strip()
        ]
        assert not missing, (
            "every settings field needs Field(description=...) (admins read it in the JSON "
            "Schema and `lxhub connectors describe`): " + ", ".join(missing)
        )

    @conformance("plugin.sample_settings")
    def test_sample_settings_validate(self) -> None:
        model = self.connector.settings_model
        try:
            self.settings()
        except ValidationError as exc:
            pytest.fail(f"sample_settings do not validate against {model.__name__}: {exc}")
        with pytest.raises(ValidationError) as info:
            model.model_validate({**self.sample_settings, "lxhub_unknown_key": 1})
        kinds = {err["type"] for err in info.value.errors()}
        assert "extra_forbidden" in kinds, f"an unknown key must be rejected as such, got {kinds}"

    @conformance("plugin.status_details")
    def test_status_details_are_text_without_calls_or_secrets(self) -> None:
        # The harness fails the test on any HTTP request: the hook runs on every status request.
        with self.harness() as h:
            try:
                facts = dict(h.connector.status_details())
            except Exception as exc:  # an unmocked request lands here too
                pytest.fail(
                    f"status_details() raised {type(exc).__name__}: {exc}. It runs on every "
                    "status request: read runtime.state or the settings, call nothing",
                    pytrace=False,
                )
            secrets = [v for v in _secret_values(h.connector.settings) if len(v) >= 4]
        bad = [k for k, v in facts.items() if not (isinstance(k, str) and isinstance(v, str))]
        assert not bad, f"status_details() must map text to text: {bad}"
        leaked = [k for k, v in facts.items() if any(s in v or s in k for s in secrets)]
        assert not leaked, f"status_details() shows a secret setting under {leaked}"

    # -- 2. check() --------------------------------------------------------------------------

    def mock_check_success(self, router: StrictRouter) -> None:
        """Hook: register the routes `check()` calls, answering success."""
        _fail_hook(self, "mock_check_success(router)", "check", "routes check() calls")

    def mock_check_failure(self, router: StrictRouter, status: int) -> None:
        """Hook: register the routes `check()` calls, answering `status` (401, 500, 503)."""
        _fail_hook(self, "mock_check_failure(router, status)", "check", "failing routes")

    @conformance("check.success")
    def test_check_succeeds(self) -> None:
        with self.harness() as h:
            self.mock_check_success(h.router)
            h.connector.check()

    @conformance("check.unauthorized")
    def test_check_unauthorized_is_config_error(self) -> None:
        with self.harness() as h:
            self.mock_check_failure(h.router, 401)
            with pytest.raises(ConfigError):
                h.connector.check()

    @conformance("check.server_error")
    @pytest.mark.parametrize("status", [500, 503])
    def test_check_server_error_is_transient(self, status: int) -> None:
        with self.harness() as h:
            self.mock_check_failure(h.router, status)
            with pytest.raises(TransientError):
                h.connector.check()

    # -- 5. mapping --------------------------------------------------------------------------

    def _all_events(self, connector: Connector[Any]) -> list[tuple[Path, list[SourceEvent]]]:
        return [(p, self.events_from_fixture(connector, p)) for p in self.event_files()]

    @conformance("mapping.golden")
    def test_mapping_matches_golden(self, event_fixture: Path | None) -> None:
        if event_fixture is None:
            pytest.fail(f"no event fixtures: add {self.fixtures or '<fixtures>'}/events/*.json")
        with self.harness() as h:
            events = self.events_from_fixture(h.connector, event_fixture)
            try:
                statements = self.map_events(h.connector, events, self.resolver())
            except MappingError as exc:
                pytest.fail(f"{event_fixture.name}: mapping raised MappingError: {exc}")
        now = max(self.now, datetime.now(UTC))
        problems = [
            f"statement {i} ({s.id}): {issue}"
            for i, s in enumerate(statements)
            for issue in validate_statement(s, version=XAPI_VERSION, now=now, hub_rules=True)
        ]
        assert not problems, f"{event_fixture.name} maps to invalid xAPI:\n" + "\n".join(problems)
        actual = [json.loads(canonical_bytes(s, version=XAPI_VERSION)) for s in statements]
        assert_golden(actual, self.expected_file(event_fixture), what="mapped statements")

    @conformance("mapping.coverage")
    def test_every_event_type_has_a_fixture(self) -> None:
        with self.harness() as h:
            seen = {e.event_type for _, events in self._all_events(h.connector) for e in events}
            mapper = getattr(h.connector, "mapper", None)
            declared = set(getattr(mapper, "event_types", ()))
        missing = sorted(declared - seen)
        assert not missing, (
            f"event types with a mapping but no fixture in {self.fixtures}/events: {missing}; "
            "add one fixture (and its expected statements) per event type"
        )

    @conformance("mapping.deterministic")
    def test_mapping_is_deterministic(self) -> None:
        with self.harness() as h:
            for path, events in self._all_events(h.connector):
                for event in events:
                    first = self.map_events(h.connector, [event], self.resolver())
                    again = self.map_events(h.connector, [event], self.resolver())
                    differs = _differing_paths(
                        [json.loads(canonical_bytes(s)) for s in first],
                        [json.loads(canonical_bytes(s)) for s in again],
                    )
                    assert not differs, (
                        f"{path.name}: mapping the same {event.event_type} twice gave different "
                        f"statements at {differs[:5]} (random ids? the wall clock? a set?)"
                    )
                    later = event.model_copy(
                        update={
                            "received_at": event.received_at + timedelta(hours=1),
                            "attempt": event.attempt + 1,
                            "via": "replay",
                        }
                    )
                    redelivered = self.map_events(h.connector, [later], self.resolver())
                    assert [s.id for s in redelivered] == [s.id for s in first], (
                        f"{path.name}: a redelivery of {event.event_type} (later received_at, "
                        "attempt+1) changed statement ids; ids must come from the natural key, "
                        "never from delivery facts"
                    )

    @conformance("mapping.actor_ifi")
    @pytest.mark.parametrize("strategy", ["mbox", "mbox_sha1sum", "account"])
    def test_actors_follow_ifi_strategy(self, strategy: IfiStrategy) -> None:
        allowed = _ALLOWED_IFIS[strategy]
        with self.harness() as h:
            for path, events in self._all_events(h.connector):
                resolver = self.resolver(strategy)
                statements = self.map_events(h.connector, events, resolver)
                if statements:
                    assert resolver.seen, (
                        f"{path.name}: statements were built without ctx.agent(Person(...)); "
                        "actors must go through the identity resolver"
                    )
                emails = _emails_in([e.payload for e in events]) | {
                    v.lower() for v in self.people.values()
                }
                for s in statements:
                    data = json.loads(canonical_bytes(s))
                    for where, node in _walk(data):
                        if isinstance(node, dict) and any(k in node for k in _IFI_KEYS):
                            used = {k for k in _IFI_KEYS if k in node}
                            assert used <= allowed, (
                                f"{path.name}: {where} uses {sorted(used)} with "
                                f"actor_ifi={strategy}; allowed: {sorted(allowed)}"
                            )
                    if strategy == "mbox":
                        continue
                    for where, leaf in _walk(data):
                        leaked = [m for m in emails if isinstance(leaf, str) and m in leaf.lower()]
                        assert not leaked, (
                            f"{path.name}: statement {s.id} carries raw email {leaked[0]!r} at "
                            f"{where} although actor_ifi={strategy}; never copy emails into "
                            "statements (names, extensions, activity ids)"
                        )

    # -- 6. end to end -----------------------------------------------------------------------

    def e2e_events(self, h: Harness) -> list[SourceEvent]:
        """Hook: the raw events of the end-to-end test (default: per capability suite)."""
        _fail_hook(self, "e2e_events(harness)", "e2e", "the events to deliver")

    @conformance("e2e.deliver")
    def test_end_to_end_redelivery_is_already_stored(self) -> None:
        lrs = MockLrs()
        with self.harness() as h:
            lrs.install(h.router)
            make = context_factory(
                h.connector,
                actors=self.resolver(),
                base_iri=self.base_iri,
                instance_id=self.instance_id,
            )
            first_events = self.e2e_events(h)
            first = run_in_process(
                h.connector, first_events, make_context=make, http=h.http, lrs_endpoint=lrs.endpoint
            )
            again_events = self.e2e_events(h) if isinstance(h.connector, Webhook) else first_events
            again = run_in_process(
                h.connector, again_events, make_context=make, http=h.http, lrs_endpoint=lrs.endpoint
            )
        assert first.statement_ids, "the end-to-end sample produced no statements"
        assert first.status == 200, f"the mocked LRS answered {first.status}: {lrs.posts[-1]!r}"
        assert again.statement_ids == first.statement_ids, "a re-send produced different ids"
        assert again.body == first.body, "a re-send produced different bytes"
        assert again.status == 200, f"the re-send was answered {again.status} (409 = drift)"
        assert lrs.stored == len(set(first.statement_ids))
        assert lrs.already_stored == len(first.statement_ids)
        assert lrs.conflicts == 0


# --- 3. polling -------------------------------------------------------------------------------


class PollingConformance(ConnectorConformance):
    """Polling tests. Hooks: `poll_routes`, `repeated_token_routes`, `rate_limit_route`."""

    required_capability = Capability.POLLING
    poll_lag: ClassVar[timedelta] = timedelta(minutes=5)
    max_pages: ClassVar[int] = 20

    def poll_routes(self, router: StrictRouter) -> None:
        """Hook: register the paged API answers a full sync reads (page 1, page 2, last).

        Match the page parameter (`params=`) so a connector ignoring its cursor misses.
        """
        _fail_hook(self, "poll_routes(router)", "polling", "page 1, page 2, last page")

    def repeated_token_routes(self, router: StrictRouter) -> None:
        """Hook: register pages where the source returns a page token it already returned."""
        _fail_hook(self, "repeated_token_routes(router)", "polling.repeated_token", "a loop")

    def rate_limit_route(self, router: StrictRouter, retry_after: str) -> None:
        """Hook: make the first call of a first poll answer 429 with `Retry-After: retry_after`."""
        _fail_hook(self, "rate_limit_route(router, retry_after)", "polling.rate_limit", "a 429")

    def event_key(self, event: SourceEvent) -> str:
        """Hook: the identity of a polled record (default: its delivery_id)."""
        assert event.delivery_id, (
            f"polled {event.event_type} events carry no delivery_id; set it, or override "
            "event_key(event) to return the record's own id"
        )
        return event.delivery_id

    def until(self, h: Harness) -> datetime:
        return h.clock.now() - self.poll_lag

    def _poller(self, h: Harness) -> Polling[Any]:
        conn = h.connector
        assert isinstance(conn, Polling), f"{type(conn).__name__} is not a hub.Polling"
        return conn

    def drain(self, h: Harness, cursor: Cursor | None = None) -> list[PollResult[Any]]:
        """poll() until has_more is False, at most `max_pages` pages."""
        poller, until, pages = self._poller(h), self.until(h), []
        for _ in range(self.max_pages):
            result = poller.poll(cursor, until=until)
            pages.append(result)
            if result.has_more and result.next_cursor is None:
                pytest.fail(f"page {len(pages)} says has_more but returns no next_cursor")
            if not result.has_more:
                return pages
            cursor = result.next_cursor
        pytest.fail(
            f"poll() still reports has_more after {self.max_pages} pages: pagination does not "
            "terminate (raise the bound with max_pages if the fixtures really are that long)",
            pytrace=False,
        )

    def e2e_events(self, h: Harness) -> list[SourceEvent]:
        if isinstance(h.connector, Webhook):
            return super().e2e_events(h)
        self.poll_routes(h.router)
        return [e for page in self.drain(h) for e in page.events]

    @conformance("polling.first_poll")
    def test_first_poll_returns_events_and_cursor(self) -> None:
        with self.harness() as h:
            self.poll_routes(h.router)
            pages = self.drain(h)
        first = pages[0]
        assert first.events, "the first poll (cursor=None) returned no events"
        assert first.next_cursor is not None, "the first poll returned no cursor to save"
        model = self._poller_model()
        assert isinstance(first.next_cursor, model), (
            f"next_cursor is a {type(first.next_cursor).__name__}, not the declared "
            f"cursor_model {model.__name__}"
        )
        assert all(e.instance_id == self.instance_id for e in first.events), (
            "events must carry runtime.instance_id"
        )

    def _poller_model(self) -> type[Cursor]:
        return getattr(self.connector, "cursor_model", Cursor)

    @conformance("polling.resume")
    def test_resume_returns_no_seen_event(self) -> None:
        with self.harness() as h:
            self.poll_routes(h.router)
            pages = self.drain(h)
        seen: dict[str, int] = {}
        for number, page in enumerate(pages, start=1):
            keys = [self.event_key(e) for e in page.events]
            again = sorted({k for k in keys if k in seen})
            assert not again, (
                f"page {number} (resumed from the cursor of page {number - 1}) returned events "
                f"already seen on page {[seen[k] for k in again]}: {again[:5]}"
            )
            seen.update(dict.fromkeys(keys, number))

    @conformance("polling.until")
    def test_cursor_monotonic_and_not_beyond_until(self) -> None:
        with self.harness() as h:
            self.poll_routes(h.router)
            until = self.until(h)
            pages = self.drain(h)
        previous: dict[str, datetime] = {}
        for number, page in enumerate(pages, start=1):
            cursor = page.next_cursor
            if cursor is None:
                continue
            assert type(cursor).model_validate_json(cursor.model_dump_json()) == cursor, (
                f"the cursor of page {number} does not survive a JSON round trip"
            )
            for name, value in _datetimes(cursor).items():
                assert value <= until, (
                    f"page {number}: cursor.{name}={value.isoformat()} is beyond "
                    f"until={until.isoformat()}; clamp it with hub.cursor.signpost()"
                )
                assert name not in previous or value >= previous[name], (
                    f"page {number}: cursor.{name} went back from {previous[name]} to {value}"
                )
            previous.update(_datetimes(cursor))

    @conformance("polling.pagination")
    def test_pagination_terminates(self) -> None:
        with self.harness() as h:
            self.poll_routes(h.router)
            pages = self.drain(h)
        assert len(pages) >= 2, (
            "poll_routes() should serve at least two pages (page 1, page 2, last) so "
            f"pagination is exercised; the sync ended after {len(pages)} page"
        )

    @conformance("polling.repeated_token")
    def test_repeated_token_raises_pagination_loop(self) -> None:
        with self.harness() as h:
            self.repeated_token_routes(h.router)
            with pytest.raises(PaginationLoop):
                self.drain(h)

    @conformance("polling.rate_limit")
    @pytest.mark.parametrize("form", ["seconds", "http-date"])
    def test_rate_limited_with_retry_after(self, form: str) -> None:
        with self.harness() as h:
            if form == "seconds":
                header, expected = "7", 7.0
            else:
                header = email.utils.format_datetime(h.clock.now() + timedelta(seconds=120), True)
                expected = 120.0
            self.rate_limit_route(h.router, header)
            with pytest.raises(RateLimited) as info:
                self._poller(h).poll(None, until=self.until(h))
        got = info.value.retry_after
        assert abs(got - expected) <= 1.0, (
            f"Retry-After: {header!r} gave retry_after={got}, expected {expected} seconds"
            + (" (compute HTTP dates against runtime.clock)" if form == "http-date" else "")
        )

    @conformance("polling.only_mocked")
    def test_poll_makes_only_mocked_calls(self) -> None:
        with self.harness() as h:
            self.poll_routes(h.router)
            self.drain(h)
            assert not h.router.unmocked
            assert h.router.calls.call_count >= 1, "poll() made no HTTP call at all"


# --- 4. webhooks ------------------------------------------------------------------------------


class WebhookConformance(ConnectorConformance):
    """Webhook tests. Hooks: `signed_request` (required), `tamper`, `handshake_request`,
    `expected_handshake_body`, `signature_headers`, `stale_age`, `sample_body`."""

    required_capability = Capability.WEBHOOK
    signature_headers: ClassVar[tuple[str, ...]] = ()
    stale_age: ClassVar[timedelta] = timedelta(hours=1)
    expected_handshake_body: ClassVar[bytes | None] = None

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        """Hook: the same request with a changed body (default: a leading space, still JSON)."""
        return request.model_copy(update={"body": b" " + request.body})

    def handshake_request(self) -> WebhookRequest:
        """Hook: the vendor's URL-verification request."""
        _fail_hook(self, "handshake_request()", "webhook.handshake", "a URL verification")

    def sample_body(self, h: Harness) -> bytes:
        """Hook: a body that maps to statements (default: the first such event fixture)."""
        for path in self.event_files():
            events = self.events_from_fixture(h.connector, path)
            if self.map_events(h.connector, events, self.resolver()):
                return path.read_bytes()
        pytest.fail(
            f"no fixture in {self.fixtures}/events maps to a statement; override sample_body()",
            pytrace=False,
        )

    def _hook(self, h: Harness) -> Webhook:
        conn = h.connector
        assert isinstance(conn, Webhook), f"{type(conn).__name__} is not a hub.Webhook"
        return conn

    def _signature_headers(self, request: WebhookRequest) -> list[str]:
        names = list(self.signature_headers) or [
            k for k in request.headers if k.lower() not in _NOT_SIGNATURE
        ]
        assert names, "signed_request() sets no header; declare signature_headers = (...)"
        return [n.lower() for n in names]

    def e2e_events(self, h: Harness) -> list[SourceEvent]:
        hook = self._hook(h)
        request = self.signed_request(self.sample_body(h), at=h.clock.now())
        assert hook.handshake(request) is None, "handshake() answered an ordinary event delivery"
        hook.verify(request)
        return hook.parse(request)

    @conformance("webhook.valid")
    def test_valid_signature_verifies(self) -> None:
        with self.harness() as h:
            request = self.signed_request(self.sample_body(h), at=h.clock.now())
            try:
                self._hook(h).verify(request)
            except InvalidSignature as exc:
                pytest.fail(f"a request from signed_request() was rejected: {exc.reason}")

    @conformance("webhook.tampered")
    def test_tampered_body_is_rejected(self) -> None:
        with self.harness() as h:
            request = self.tamper(self.signed_request(self.sample_body(h), at=h.clock.now()))
            _expect_invalid(lambda: self._hook(h).verify(request), "a tampered body")

    @conformance("webhook.stale")
    def test_stale_timestamp_is_rejected(self) -> None:
        with self.harness() as h:
            at = h.clock.now() - self.stale_age
            request = self.signed_request(self.sample_body(h), at=at)
            _expect_invalid(lambda: self._hook(h).verify(request), f"a request signed {at}")

    @conformance("webhook.missing_header")
    def test_missing_header_is_invalid(self) -> None:
        with self.harness() as h:
            request = self.signed_request(self.sample_body(h), at=h.clock.now())
            for name in self._signature_headers(request):
                headers = {k: v for k, v in request.headers.items() if k.lower() != name}
                bad = request.model_copy(update={"headers": headers})
                _expect_invalid(partial(self._hook(h).verify, bad), f"without {name}")

    @conformance("webhook.malformed_header")
    def test_malformed_header_is_invalid(self) -> None:
        with self.harness() as h:
            request = self.signed_request(self.sample_body(h), at=h.clock.now())
            for name in self._signature_headers(request):
                for value in _MALFORMED:
                    headers = {**{k.lower(): v for k, v in request.headers.items()}, name: value}
                    bad = request.model_copy(update={"headers": headers})
                    _expect_invalid(partial(self._hook(h).verify, bad), f"{name}: {value!r}")

    @conformance("webhook.handshake")
    def test_handshake_echoes_challenge(self) -> None:
        with self.harness() as h:
            request = self.handshake_request()
            answer = self._hook(h).handshake(request)
        assert answer is not None, "handshake() returned None for the handshake request"
        assert 200 <= answer.status < 300, f"handshake answered {answer.status}"
        expected = self.expected_handshake_body
        assert expected is not None, "set expected_handshake_body = b'<the challenge>'"
        assert answer.body == expected, f"handshake answered {answer.body!r}, expected {expected!r}"

    @conformance("webhook.parse_no_io")
    def test_parse_makes_no_http_call(self) -> None:
        with self.harness() as h:
            for path in self.event_files():
                events = self.events_from_fixture(h.connector, path)
                assert all(e.instance_id == self.instance_id for e in events), (
                    f"{path.name}: events must carry runtime.instance_id"
                )
            calls = [f"{c.request.method} {c.request.url}" for c in h.router.calls]
            calls += [f"{r.method} {r.url}" for r in h.router.unmocked]
            assert not calls, (
                f"parse() made HTTP calls {calls}; it must be pure (users are resolved by the "
                "hub's identity step, not while parsing)"
            )
