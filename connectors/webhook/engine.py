"""The mapping engine: explode a body into items, route each item, fill statement templates.

Two halves, used at different times:

* `MappingEngine.explode` runs in ``parse()`` (synchronously, in the receiver): the ``items``
  expression turns a body into items; each item gets its event type and delivery id. The
  envelope (the body's top-level fields, minus the arrays batches live in) travels with each
  item under the reserved key ``$envelope``, so a route can read ``$envelope.message_id``.
* `MappingEngine.map` runs in the normalizer: the first route whose ``when`` holds (and the
  following ones while ``continue: true``) fills its statement templates. Every statement is
  built by `MappingContext.statement_json`, so the id, platform and lineage come from the core,
  the same way as for hand-written connectors. Templates fill xAPI JSON (`StatementJson`), not
  pydantic models: the pipeline validates every statement either way.

Failures inside a template raise `MappingError` naming the route, the statement and the field
(dead-lettered with that reason). A person without any identifier raises `UnresolvedActor`.
An item that no route matches is `Unmapped` (counted by event type, never an error).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue, ValidationError

from connectors.webhook.expressions import (
    ENVELOPE_KEY,
    ExpressionError,
    Scope,
    compile_expression,
    render_vars,
)
from connectors.webhook.spec import (
    ActivityRef,
    ActivitySpec,
    ActorSpec,
    ContextSpec,
    MappingSpec,
    NaturalKey,
    ResultSpec,
    StatementTemplate,
    TextSpec,
    named_parts,
)
from hub import BadRequest, MappingError, MapResult, Person, Unmapped, UnresolvedActor
from hub.xapi import (
    Agent,
    StatementJson,
    VerbDef,
    is_iso_duration,
    parse_timestamp,
)

if TYPE_CHECKING:
    from hub import MappingContext

__all__ = ["DEFAULT_EVENT_TYPE", "ExplodedItem", "MappingEngine", "truthy"]

DEFAULT_EVENT_TYPE = "item"
"""Event type of items when the mapping sets no ``event_type`` expression."""
UNKNOWN_EVENT_TYPE = "unknown"
"""Event type when the ``event_type`` expression gives no usable value."""

_ABS_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null and empty strings/arrays/objects are false; 0 is true."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


@dataclass(frozen=True)
class ExplodedItem:
    """One item of a body, ready to become a SourceEvent."""

    payload: dict[str, JsonValue]
    event_type: str
    delivery_id: str


def _envelope(body: Any) -> JsonValue:
    """The body's top-level fields without its arrays: batches live in arrays (``payloads``,
    ``records``, ``value``), and copying them into every item would make a batch of n items
    cost n squared."""
    if not isinstance(body, dict):
        return None
    return {k: v for k, v in body.items() if not isinstance(v, list)}


def _scalar_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    return None


class _Fail(Exception):
    """Internal: a field-level failure, re-raised as MappingError with the template location."""


def _present(**members: Any) -> dict[str, Any] | None:
    """The members that are set (not None), or None when none is: xAPI JSON leaves out what a
    model would dump as None, and an object with nothing in it is left out as a whole."""
    out = {k: v for k, v in members.items() if v is not None}
    return out or None


class _AgentJson:
    """xAPI JSON of the resolver's Agents. The resolver hands out one frozen Agent per person,
    so each is dumped once; the dict is shared by that person's statements (read-only, as
    every StatementJson is)."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._known: dict[int, tuple[Agent, dict[str, Any]]] = {}

    def json(self, agent: Agent) -> dict[str, Any]:
        known = self._known.get(id(agent))
        if known is not None and known[0] is agent:
            return known[1]
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        dumped = agent.to_json()
        self._known[id(agent)] = (agent, dumped)  # holding the Agent keeps its id() unique
        return dumped


class MappingEngine:
    """Applies one validated `MappingSpec`."""

    def __init__(self, spec: MappingSpec, *, include_free_text: bool = False) -> None:
        self.spec = spec
        self.include_free_text = include_free_text
        self._agents = _AgentJson()

    # --- parse side ------------------------------------------------------------------------

    def explode(self, body: Any, *, raw: bytes, scope: Scope) -> list[ExplodedItem]:
        """Split a decoded body into items with event types and delivery ids.

        Raises BadRequest when the ``items`` expression fails or gives non-objects.
        """
        scope.root = body
        try:
            found = compile_expression(self.spec.items).search(body, scope)
        except ExpressionError as exc:
            raise BadRequest(f"items expression failed: {exc}") from None
        if found is None:
            items: list[Any] = []
        elif isinstance(found, dict):
            items = [found]
        elif isinstance(found, list):
            items = found
        else:
            raise BadRequest("items expression gave neither an array nor an object")
        envelope = _envelope(body)
        body_hash = hashlib.sha256(raw).hexdigest()
        prepared: list[tuple[dict[str, JsonValue], str, str | None]] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest(f"item {index} is not a JSON object")
            # The body itself (items "[@]") needs no envelope copy: $envelope then reads it.
            payload = dict(item) if item is body else {**item, ENVELOPE_KEY: envelope}
            data = self.data(payload)
            scope.root = data
            prepared.append(
                (payload, self._event_type(data, scope), self._delivery_id(data, scope))
            )
        counts = Counter(d for _, _, d in prepared if d is not None)
        out: list[ExplodedItem] = []
        for index, (payload, event_type, delivery) in enumerate(prepared):
            if delivery is None:
                # No vendor id: the body's hash, made per item by its position.
                delivery = f"sha256:{body_hash}:{index}"
            elif counts[delivery] > 1:
                # An envelope-level id shared by a batch must not dedupe its siblings away.
                delivery = f"{delivery}:{index}"
            out.append(ExplodedItem(payload, event_type, delivery))
        return out

    def _event_type(self, data: dict[str, Any], scope: Scope) -> str:
        if self.spec.event_type is None:
            return DEFAULT_EVENT_TYPE
        try:
            value = compile_expression(self.spec.event_type).search(data, scope)
        except ExpressionError:
            return UNKNOWN_EVENT_TYPE
        return _scalar_id(value) or UNKNOWN_EVENT_TYPE

    def _delivery_id(self, data: dict[str, Any], scope: Scope) -> str | None:
        if self.spec.delivery_id is None:
            return None
        try:
            value = compile_expression(self.spec.delivery_id).search(data, scope)
        except ExpressionError:
            return None
        return _scalar_id(value)

    @staticmethod
    def data(payload: dict[str, Any]) -> dict[str, Any]:
        """What expressions see: the item, with ``$envelope`` defaulting to the item itself."""
        if ENVELOPE_KEY in payload:
            return payload
        return {**payload, ENVELOPE_KEY: payload}

    # --- map side --------------------------------------------------------------------------

    def map(self, event_type: str, payload: JsonValue, ctx: MappingContext) -> MapResult:
        """Route one item and build its statements."""
        if not isinstance(payload, dict):
            raise MappingError(f"{event_type}: payload is not a JSON object")
        data = self.data(payload)
        scope = Scope(
            base_iri=ctx.base_iri,
            source=ctx.source,
            tenant=ctx.tenant,
            vendor=self.spec.vendor,
            received_at=ctx.event.received_at,
            root=data,
        )
        statements: list[StatementJson] = []
        matched = False
        for r_index, route in enumerate(self.spec.routes):
            where = f"routes[{r_index}]" + (f" ({route.name})" if route.name else "")
            if not truthy(self._eval(route.when, data, scope, f"{where}.when")):
                continue
            matched = True
            for s_index, template in enumerate(route.statements):
                loc = f"{where}.statements[{s_index}]"
                if template.when is not None and not truthy(
                    self._eval(template.when, data, scope, f"{loc}.when")
                ):
                    continue
                statements.append(self._statement(template, data, scope, ctx, loc))
            if not route.continue_:
                break
        if not matched:
            return Unmapped(event_type)
        return statements

    @staticmethod
    def _eval(expr: str, data: Any, scope: Scope, where: str) -> Any:
        try:
            return compile_expression(expr).search(data, scope)
        except ExpressionError as exc:
            raise MappingError(f"{where}: {exc}") from None

    def _statement(
        self,
        tpl: StatementTemplate,
        data: dict[str, Any],
        scope: Scope,
        ctx: MappingContext,
        where: str,
    ) -> StatementJson:
        field = "actor"
        try:
            actor = self._agent(tpl.actor, data, scope, ctx)
            field = "object"
            if isinstance(tpl.object, ActivitySpec):
                obj = self._activity(tpl.object, data, scope)
            else:
                # xAPI requires objectType when an Agent is the object.
                obj = {**self._agent(tpl.object.agent, data, scope, ctx), "objectType": "Agent"}
            field = "result"
            result = self._result(tpl.result, data, scope) if tpl.result else None
            field = "context"
            context = self._context(tpl.context, data, scope, ctx) if tpl.context else None
            field = "timestamp"
            scope.inferred_now = False
            timestamp = self._timestamp(self._value(tpl.timestamp, data, scope))
            extensions = {ctx.extension("timestamp-inferred"): True} if scope.inferred_now else None
            field = "natural_key"
            key = self._key(tpl.natural_key, data, scope)
            field = "statement"
            statement = ctx.statement_json(
                verb=VerbDef(tpl.verb.key, tpl.verb.id, tpl.verb.display),
                key=key,
                actor=actor,
                object_=obj,
                timestamp=timestamp,
                result=result,
                context=context,
                extensions=extensions,
            )
        except (_Fail, ExpressionError) as exc:
            raise MappingError(f"{where}.{field}: {exc}") from None
        except ValidationError as exc:
            raise MappingError(f"{where}.{field}: {_short(exc)}") from None
        except ValueError as exc:  # ids/natural-key helpers reject bad tokens with ValueError
            raise MappingError(f"{where}.{field}: {exc}") from None
        # vendors.md 7.6 G: every generated statement is checked before it is queued. The
        # pipeline does that once for every connector (hub.pipeline, through canonical_bytes)
        # and the dry run does it too; checking here as well cost a fifth of the mapping time.
        # The statement is built as xAPI JSON, not as pydantic models: that check is the
        # authority either way, and the models cost another fifth (see StatementJson).
        return statement

    @staticmethod
    def _value(expr: str, data: Any, scope: Scope) -> Any:
        return compile_expression(expr).search(data, scope)

    def _text(self, expr: str | None, data: Any, scope: Scope, what: str) -> str | None:
        if expr is None:
            return None
        value = self._value(expr, data, scope)
        if value is None or isinstance(value, str):
            return value or None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _Fail(f"{what} must be text, got {type(value).__name__}")

    def _agent(
        self, spec: ActorSpec, data: Any, scope: Scope, ctx: MappingContext
    ) -> dict[str, Any]:
        email = self._text(spec.email, data, scope, "email")
        user_id = self._text(spec.account_name, data, scope, "account_name")
        name = self._text(spec.name, data, scope, "name")
        # vendors.md 1.2: trim and lower-case emails, so one person has one mbox everywhere.
        email = email.strip().lower() or None if email else None
        if email is None and user_id is None:
            # 7.6 F: never emit a made-up identity; the item goes to the DLQ.
            raise UnresolvedActor(scope.source, "(no email or user id in the item)")
        return self._agents.json(ctx.agent(Person(email=email, source_user_id=user_id, name=name)))

    def _iri(self, expr: str, data: Any, scope: Scope, what: str) -> str | None:
        value = self._text(expr, data, scope, what)
        if value is not None and not _ABS_IRI.match(value):
            raise _Fail(f"{what} {value!r} is not an absolute IRI")
        return value

    def _lang_map(self, spec: TextSpec | None, data: Any, scope: Scope) -> dict[str, str] | None:
        if spec is None or (spec.free_text and not self.include_free_text):
            return None
        text = spec.value if spec.value is not None else self._text(spec.path, data, scope, "text")
        if text is None:
            return None
        lang = self._text(spec.lang_path, data, scope, "lang") if spec.lang_path else None
        return {lang or spec.lang: text}

    def _activity(self, spec: ActivitySpec, data: Any, scope: Scope) -> dict[str, Any]:
        iri = self._iri(spec.id, data, scope, "id")
        if iri is None:
            raise _Fail("the object id expression gave null")
        definition = _present(
            type=spec.type,
            name=self._lang_map(spec.name, data, scope),
            description=self._lang_map(spec.description, data, scope),
            moreInfo=self._iri(spec.more_info, data, scope, "more_info")
            if spec.more_info
            else None,
        )
        return {"id": iri, "definition": definition} if definition else {"id": iri}

    def _flag(self, value: bool | str | None, data: Any, scope: Scope, what: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        found = self._value(value, data, scope)
        if found is None or isinstance(found, bool):
            return found
        raise _Fail(f"{what} must be true, false or null, got {found!r}")

    def _result(self, spec: ResultSpec, data: Any, scope: Scope) -> dict[str, Any] | None:
        score = None
        if spec.score is not None:
            found = self._value(spec.score, data, scope)
            if found is not None:
                if not isinstance(found, dict) or not set(found) <= _SCORE_KEYS:
                    raise _Fail("score must be an object of raw/min/max/scaled (use scale())")
                score = {k: v for k, v in found.items() if v is not None}
                for k, v in score.items():
                    if isinstance(v, bool) or not isinstance(v, int | float):
                        raise _Fail(f"score.{k} must be a number, got {type(v).__name__}")
        duration = self._text(spec.duration, data, scope, "duration")
        if duration is not None and not is_iso_duration(duration):
            raise _Fail(f"duration {duration!r} is not ISO 8601 (use minutes_to_duration())")
        response = None
        if spec.response is not None and self.include_free_text:
            response = self._text(spec.response, data, scope, "response")
        return _present(
            score=score or None,
            completion=self._flag(spec.completion, data, scope, "completion"),
            success=self._flag(spec.success, data, scope, "success"),
            duration=duration,
            response=response,
            extensions=self._extensions(spec.extensions, data, scope),
        )

    def _extensions(
        self, spec: dict[str, str], data: Any, scope: Scope
    ) -> dict[str, JsonValue] | None:
        out: dict[str, JsonValue] = {}
        for key, expr in spec.items():
            value = self._value(expr, data, scope)
            if value is not None:  # 7.6 G: a null value is omitted, never emitted as null
                out[render_vars(key, scope)] = value
        return out or None

    def _refs(
        self, refs: list[ActivityRef], data: Any, scope: Scope
    ) -> list[dict[str, Any]] | None:
        out: list[dict[str, Any]] = []
        for ref in refs:
            # An optional container the item does not name (no engagement) is left out.
            iri = self._iri(ref.id, data, scope, "context activity id")
            if iri is not None:
                out.append(
                    {"id": iri, "definition": {"type": ref.type}} if ref.type else {"id": iri}
                )
        return out or None

    def _context(
        self, spec: ContextSpec, data: Any, scope: Scope, ctx: MappingContext
    ) -> dict[str, Any] | None:
        registration = None
        if spec.registration is not None:
            # Same key format as statement ids, with the verb slot fixed to "registration"
            # (the CSOD row of vendors.md 8.2).
            registration = str(
                ctx.statement_id("registration", self._key(spec.registration, data, scope))
            )
        return _present(
            registration=registration,
            instructor=self._agent(spec.instructor, data, scope, ctx) if spec.instructor else None,
            contextActivities=_present(
                parent=self._refs(spec.parent, data, scope),
                grouping=self._refs(spec.grouping, data, scope),
                category=self._refs(spec.category, data, scope),
                other=self._refs(spec.other, data, scope),
            ),
            platform=spec.platform,
            language=self._text(spec.language, data, scope, "language") if spec.language else None,
            extensions=self._extensions(spec.extensions, data, scope),
        )

    @staticmethod
    def _timestamp(value: Any) -> datetime:
        if value is None:
            raise _Fail("the timestamp expression gave null (it is required; now() is explicit)")
        if not isinstance(value, str):
            raise _Fail(f"timestamp must be a to_datetime() string, got {type(value).__name__}")
        try:
            parsed = parse_timestamp(value)
        except (ValueError, TypeError) as exc:
            raise _Fail(str(exc)) from None
        if parsed is None:
            raise _Fail(f"timestamp {value!r} is empty")
        return parsed

    def _key(self, key: NaturalKey, data: Any, scope: Scope) -> list[tuple[str, str]]:
        parts: list[tuple[str, str]] = []
        for name, expr in named_parts(key):
            value = self._value(expr, data, scope)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            text = _scalar_id(value)
            if text is None:
                raise _Fail(f"natural-key part {name!r} ({expr}) gave {value!r}; need text or int")
            if "|" in text:
                # '|' separates key fields; allowing it would let two facts share one id.
                raise _Fail(f"natural-key part {name!r} contains '|'")
            parts.append((name, text))
        return parts


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
    )
