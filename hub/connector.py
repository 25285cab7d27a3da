"""The connector plugin interface: one class per source, with declared facts and capabilities.

A connector is a `Connector` subclass with a pydantic settings model and a `check()`, plus one or
both capabilities:

* `Polling`: `poll(cursor, until=...)` returns ONE page of raw events and the cursor to save after
  they are enqueued (the worker saves it; a crash replays at most one page).
* `Webhook`: `handshake()` answers URL-verification challenges synchronously, `verify()` checks
  authenticity over the raw bytes, `parse()` turns the body into events with no I/O.

The registry derives capabilities with `issubclass`. Mapping raw events to statements is a set of
pure functions registered on the class's `mapper` (see `hub.mapping`).

Example::

    class AcmeConnector(Connector[AcmeSettings], Webhook):
        name = "acme"
        source = "acme"
        platform = "Acme Coach"
        settings_model = AcmeSettings
        mapper = mapper          # a StatementMapper with @mapper.on(...) handlers

        @property
        def tenant(self) -> str:
            return self.settings.tenant

        def check(self) -> None: ...
        def verify(self, request: WebhookRequest) -> None: ...
        def parse(self, request: WebhookRequest) -> list[SourceEvent]: ...
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from hub.clock import Clock, SystemClock
from hub.cursor import Cursor, TimeCursor
from hub.events import PollResult, SourceEvent, WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from hub.mapping import MappingContext, MapResult, StatementMapper

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class ConnectorSettings(BaseModel):
    """Base for connector settings models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Capability(StrEnum):
    POLLING = "polling"
    WEBHOOK = "webhook"


class Person(BaseModel):
    """What a source tells about a person; the identity resolver turns it into an Agent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_user_id: str | None = None
    email: str | None = None
    name: str | None = None


class KeyValue(Protocol):
    """Small per-instance state a connector may keep (sessions, snapshots), in the hub's store."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, *, ttl_seconds: float | None = None) -> None: ...

    def delete(self, key: str) -> None: ...

    def compare_and_set(
        self, key: str, expected: str | None, value: str, *, ttl_seconds: float | None = None
    ) -> bool:
        """Set `value` only if `key` still holds `expected` (None: absent), atomically; False
        when another worker changed it first: read again, re-apply the change, try again."""
        ...


class _NoState:
    def get(self, key: str) -> str | None:
        return None

    def set(self, key: str, value: str, *, ttl_seconds: float | None = None) -> None:
        raise RuntimeError("this connector runtime has no state store")

    def delete(self, key: str) -> None:
        return None

    def compare_and_set(
        self, key: str, expected: str | None, value: str, *, ttl_seconds: float | None = None
    ) -> bool:
        raise RuntimeError("this connector runtime has no state store")


@dataclass(frozen=True)
class ConnectorRuntime:
    """What the hub hands a connector instance: never secrets (those are in its settings)."""

    instance_id: str
    base_iri: str
    http: httpx.Client = field(default_factory=httpx.Client)
    clock: Clock = field(default_factory=SystemClock)
    state: KeyValue = field(default_factory=_NoState)


class Connector(abc.ABC, Generic[SettingsT]):
    """Base class of every connector plugin.

    Class attributes a plugin declares:
        name: the entry-point name (`docebo`, `acme-coach`).
        source: the slug used in statement ids and activity IRIs (`docebo`, `csod`, `msteams`).
            Never change it once statements were sent: it re-keys history.
        platform: the product name put in `context.platform`.
        version: the plugin version, recorded in statement lineage.
        settings_model: the pydantic model that validates the instance's `settings`.
        mapper: the `StatementMapper` holding the pure mapping functions.
    """

    name: ClassVar[str]
    source: ClassVar[str]
    platform: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    settings_model: ClassVar[type[BaseModel]]
    mapper: ClassVar[StatementMapper]

    def __init__(self, settings: SettingsT, *, runtime: ConnectorRuntime) -> None:
        self.settings = settings
        self.runtime = runtime

    @property
    def instance_id(self) -> str:
        return self.runtime.instance_id

    @property
    @abc.abstractmethod
    def tenant(self) -> str:
        """The tenant token used in ids (lower-case host or tenant id)."""

    @property
    def account_home_page(self) -> str:
        """`account.homePage` for actors of this source when no email is used."""
        return f"https://{self.tenant}"

    @abc.abstractmethod
    def check(self) -> None:
        """Test that the source is usable; raise ConfigError or TransientError if not."""

    def lookup_user(self, source_user_id: str) -> Person | None:
        """Fetch a person from the source's user API (I/O). Override where the API allows."""
        return None

    def maintain(self) -> Sequence[SourceEvent] | None:
        """Periodic housekeeping (renew subscriptions or leases); runs every few minutes.

        May return events the upkeep found (e.g. a video session gone silent, to be terminated):
        the hub appends them to the inbox, and they are normalized like received ones.
        When one part failed after another found events, raise `MaintenanceIncomplete`.
        """
        return None

    def status_details(self) -> Mapping[str, str]:
        """A few short facts for the status page, `/api/status` and `lxhub status`: label ->
        value, e.g. ``{"Data API units today": "120 of 10,000"}``.

        Called on every status request: read the figures from `runtime.state` or the settings,
        make no network call, and never include a secret. Default: none.
        """
        return {}

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        """Map one raw event to statements. Defaults to the class's `mapper`."""
        return self.mapper.map(event, ctx)

    def active_capabilities(self) -> frozenset[Capability]:
        """What this instance actually uses. A connector class that can both poll and receive
        may narrow it by its settings (the generic connector's mapping `mode`)."""
        return self.capabilities()

    @classmethod
    def capabilities(cls) -> frozenset[Capability]:
        caps = set()
        if issubclass(cls, Polling):
            caps.add(Capability.POLLING)
        if issubclass(cls, Webhook):
            caps.add(Capability.WEBHOOK)
        return frozenset(caps)


CursorT = TypeVar("CursorT", bound=Cursor)


class Polling(abc.ABC, Generic[CursorT]):
    """Capability: the connector pulls records from the source's API, one page per call."""

    cursor_model: ClassVar[type[Cursor]] = TimeCursor
    default_interval: ClassVar[timedelta] = timedelta(minutes=15)

    @abc.abstractmethod
    def poll(self, cursor: CursorT | None, *, until: datetime) -> PollResult[CursorT]:
        """Fetch ONE page after `cursor` (None: first run). Never move a time cursor past
        `until`. Raise RateLimited / TransientError / PermanentError / ConfigError."""

    @abc.abstractmethod
    def initial_cursor(self, since: datetime) -> CursorT:
        """The cursor a first run or a backfill starting at `since` begins from."""


class Webhook(abc.ABC):
    """Capability: the source pushes events to `POST /webhooks/{instance_id}`."""

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        """Answer a URL-verification challenge synchronously, or return None."""
        return None

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise InvalidSignature unless the request is authentic. Malformed input is invalid,
        never an unexpected exception."""

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        """Turn a verified request into raw events. Pure: no network, no store. Raise
        BadRequest for a body that cannot be parsed."""

    def acknowledge(
        self, request: WebhookRequest, events: Sequence[SourceEvent]
    ) -> WebhookResponse:
        """The 2xx answer after the events are durably enqueued."""
        return WebhookResponse(status=200, body=b"", content_type="text/plain")
