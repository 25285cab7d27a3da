"""Event -> statement mapping: a per-connector registry of pure, typed handler functions.

Each connector owns a `StatementMapper` instance (never a class-level shared dict). Handlers are
registered by payload model; the model's `event_types` are the keys::

    mapper = StatementMapper()

    class CourseCompleted(EventPayload):
        event_types = ("course.completed",)
        user_id: int
        course_id: int

    @mapper.on(CourseCompleted)
    def course_completed(e: CourseCompleted, ctx: MappingContext) -> list[Statement]:
        return [ctx.statement(verb=Verbs.COMPLETED, key=[("user", str(e.user_id)), ...], ...)]

A duplicate key raises at import. An event type with no handler gives `Unmapped` (counted, not an
error). A payload that does not fit its model raises `MappingError` (dead-lettered with the reason).
`MappingContext.statement()` is the one place that assigns the deterministic id, the platform and
the lineage extensions, so every connector gets them the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from hub.errors import MappingError
from hub.events import SourceEvent
from hub.xapi import (
    Activity,
    Agent,
    Context,
    Group,
    Result,
    Statement,
    StatementJson,
    StatementRef,
    SubStatement,
    format_timestamp,
)
from hub.xapi.ids import (
    activity_iri,
    extension_iri,
    natural_key,
    statement_id,
    statement_id_text,
    statement_namespace,
)
from hub.xapi.vocab import VerbDef

if TYPE_CHECKING:
    from hub.connector import Connector, Person


class EventPayload(BaseModel):
    """Base of typed payload models. Vendors add fields freely, so extra keys are ignored here
    (unlike config, where unknown keys are errors)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_types: ClassVar[tuple[str, ...]]


P = TypeVar("P", bound=EventPayload)
Handler = Callable[[P, "MappingContext"], Sequence[Statement]]


@dataclass(frozen=True)
class Unmapped:
    """No handler for this event type: counted and logged, not an error."""

    event_type: str


MapResult = Sequence[Statement | StatementJson] | Unmapped
"""What `Connector.map` returns: statements (models, or JSON from a compiled mapping such as
the generic webhook engine's; the pipeline validates both alike), or `Unmapped`."""


class ActorResolver(Protocol):
    """Turns what a source says about a person into an xAPI Agent (see `hub.identity`)."""

    def agent(self, person: Person, *, source: str, home_page: str) -> Agent: ...


LINEAGE = ("source", "source-tenant", "source-event-id", "connector", "connector-version")


@dataclass(frozen=True)
class MappingContext:
    """Everything a handler may use besides its payload. Handlers never touch globals."""

    base_iri: str
    source: str
    tenant: str
    platform: str
    connector_type: str
    connector_version: str
    instance_id: str
    home_page: str
    actors: ActorResolver
    event: SourceEvent
    language: str = "en"

    @classmethod
    def for_connector(
        cls,
        connector: Connector[Any],
        event: SourceEvent,
        *,
        base_iri: str,
        actors: ActorResolver,
        instance_id: str | None = None,
    ) -> MappingContext:
        """The context for one event of `connector`, from its declared facts (the pipeline, the
        dry run and the conformance kit all build it here, so they cannot drift apart)."""
        return cls(
            base_iri=base_iri,
            source=connector.source,
            tenant=connector.tenant,
            platform=connector.platform,
            connector_type=connector.name,
            connector_version=connector.version,
            instance_id=instance_id if instance_id is not None else connector.instance_id,
            home_page=connector.account_home_page,
            actors=actors,
            event=event,
        )

    def agent(self, person: Person) -> Agent:
        """Resolve a person to an Agent; raises UnresolvedActor per the identity policy."""
        return self.actors.agent(person, source=self.source, home_page=self.home_page)

    def activity_id(self, kind: str, source_id: str) -> str:
        return activity_iri(
            self.base_iri, source=self.source, tenant=self.tenant, kind=kind, source_id=source_id
        )

    def extension(self, name: str) -> str:
        return extension_iri(self.base_iri, name)

    def natural_key(self, verb_key: str, key: Sequence[tuple[str, str]]) -> str:
        return natural_key(source=self.source, tenant=self.tenant, verb_key=verb_key, parts=key)

    def statement_id(self, verb_key: str, key: Sequence[tuple[str, str]]) -> UUID:
        return statement_id(statement_namespace(self.base_iri), self.natural_key(verb_key, key))

    def lang(self, text: str) -> dict[str, str]:
        return {self.language: text}

    def statement(
        self,
        *,
        verb: VerbDef,
        key: Sequence[tuple[str, str]],
        actor: Agent | Group,
        object_: Activity | Agent | Group | StatementRef | SubStatement,
        timestamp: datetime,
        result: Result | None = None,
        context: Context | None = None,
        verb_key: str | None = None,
        extensions: Mapping[str, JsonValue] | None = None,
    ) -> Statement:
        """Build a statement with its deterministic id, platform and lineage extensions.

        `key` is the natural key (names and order fixed forever per mapping table); `verb_key`
        defaults to the verb's own key. Lineage records the natural key, not the delivery id,
        so a webhook and a backfill of the same fact produce byte-identical statements.
        """
        nk = self.natural_key(verb_key or verb.key, key)
        lineage = self._lineage(nk)
        ctx = context or Context()
        merged: dict[str, JsonValue] = {
            **lineage,
            **dict(ctx.extensions or {}),
            **(extensions or {}),
        }
        updates: dict[str, object] = {"extensions": merged}
        if isinstance(object_, Activity):
            updates["platform"] = ctx.platform or self.platform
            updates["language"] = ctx.language or self.language
        ctx = ctx.model_copy(update=updates)
        return Statement(
            id=statement_id(statement_namespace(self.base_iri), nk),
            actor=actor,
            verb=verb.verb(),
            object_=object_,
            result=result,
            context=ctx,
            timestamp=timestamp,
        )

    def statement_json(
        self,
        *,
        verb: VerbDef,
        key: Sequence[tuple[str, str]],
        actor: Mapping[str, Any],
        object_: Mapping[str, Any],
        timestamp: datetime,
        result: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        verb_key: str | None = None,
        extensions: Mapping[str, JsonValue] | None = None,
    ) -> StatementJson:
        """`statement()` for mappings that build xAPI JSON directly (see `StatementJson`).

        The same id, platform, language and lineage as `statement()`, written as JSON: `actor`,
        `object_`, `result` and `context` are xAPI JSON objects, read and never changed.
        """
        nk = self.natural_key(verb_key or verb.key, key)
        ctx: dict[str, Any] = dict(context or {})
        ctx["extensions"] = {
            **self._lineage(nk),
            **(ctx.get("extensions") or {}),
            **(extensions or {}),
        }
        if object_.get("objectType", "Activity") == "Activity":
            ctx["platform"] = ctx.get("platform") or self.platform
            ctx["language"] = ctx.get("language") or self.language
        data: dict[str, Any] = {
            "id": statement_id_text(statement_namespace(self.base_iri), nk),
            "actor": actor,
            "verb": verb.verb_json(),
            "object": object_,
            "context": ctx,
            "timestamp": format_timestamp(timestamp),
        }
        if result:
            data["result"] = result
        return StatementJson(data)

    def _lineage(self, nk: str) -> dict[str, JsonValue]:
        """The lineage extensions. They record the natural key, not the delivery id, so a
        webhook and a backfill of the same fact produce byte-identical statements."""
        return {
            self.extension("source"): self.source,
            self.extension("source-tenant"): self.tenant,
            self.extension("source-event-id"): nk,
            self.extension("connector"): self.connector_type,
            self.extension("connector-version"): self.connector_version,
        }


class StatementMapper:
    """A connector's registry of handlers, keyed by the payload model's event types."""

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[type[EventPayload], Handler[EventPayload]]] = {}

    def on(self, model: type[P]) -> Callable[[Handler[P]], Handler[P]]:
        """Register a handler for every event type the payload model declares."""

        def register(fn: Handler[P]) -> Handler[P]:
            for event_type in model.event_types:
                if event_type in self._handlers:
                    raise ValueError(f"duplicate mapping for event type {event_type!r}")
                self._handlers[event_type] = (model, fn)  # type: ignore[assignment]
            return fn

        return register

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        entry = self._handlers.get(event.event_type)
        if entry is None:
            return Unmapped(event.event_type)
        model, fn = entry
        try:
            payload = model.model_validate(event.payload)
        except ValidationError as exc:
            raise MappingError(
                f"{event.event_type}: payload does not fit {model.__name__}: "
                + "; ".join(
                    f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
                )
            ) from None
        return list(fn(payload, ctx))
