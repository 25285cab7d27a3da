"""Cornerstone transcript facts -> xAPI statements (vendors.md 3.9). Pure functions.

Natural keys (vendors.md 8.2; names and order fixed forever):

================================  ============  ======================================
fact                              verb_key      key parts
================================  ============  ======================================
completed                         completed     user, lo, reg, completed_at
passed / failed (tests, mastery)  passed/failed user, lo, reg, completed_at
ILT session attended              attended      user, session, reg
assigned                          assigned      user, lo, reg
self-registered                   registered    user, lo, reg
removed                           removed       user, lo, reg
================================  ============  ======================================

``user`` is the user GUID (integer ids differ between the Reporting and REST APIs), ``lo`` the
learning-object GUID. ``context.registration`` is uuid5 of ``…|registration|user|lo|reg`` so all
statements of one attempt group together. Statements hold only what every path knows once joined
(the webhook's due date is left out: the transcript rows do not carry it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue

from connectors.cornerstone.models import (
    EmployeeEvent,
    TrainingAssigned,
    TrainingCompleted,
    TrainingRegistered,
    TrainingRemoved,
    TranscriptFact,
    csod_time,
)
from hub import MappingContext, MappingError, Person, StatementMapper
from hub.xapi import (
    Activity,
    ActivityDefinition,
    ActivityTypes,
    Context,
    Result,
    Score,
    Statement,
    VerbDef,
    Verbs,
    format_duration,
    key_time,
)

__all__ = ["SESSION_TYPES", "activity_type", "mapper"]

mapper = StatementMapper()

SESSION_TYPES = frozenset({"session", "event"})
_MEDIA_TYPES = frozenset({"material", "video"})


def activity_type(lo_type: str | None, *, base_iri: str, curriculum_type: str) -> str:
    """``lo_type`` -> activity type (vendors.md 3.9)."""
    kind = (lo_type or "").strip().lower()
    if kind in SESSION_TYPES:
        return ActivityTypes.MEETING
    if kind == "test":
        return ActivityTypes.ASSESSMENT
    if kind in _MEDIA_TYPES:
        return ActivityTypes.MEDIA
    if kind == "curriculum" and curriculum_type == "learning-plan":
        return ActivityTypes.learning_plan(base_iri)
    return ActivityTypes.COURSE


def _learner(f: TranscriptFact) -> Person:
    name = " ".join(p for p in (f.first_name, f.last_name) if p) or None
    return Person(source_user_id=f.user_guid, email=f.email, name=name)


def _object(ctx: MappingContext, f: TranscriptFact) -> Activity:
    extensions: dict[str, JsonValue] | None = (
        {ctx.extension("csod/lo-type"): f.lo_type} if f.lo_type else None
    )
    return Activity(
        object_type="Activity",
        id=ctx.activity_id("training", f.lo_guid),
        definition=ActivityDefinition(
            name=ctx.lang(f.title) if f.title else None,
            type=activity_type(
                f.lo_type, base_iri=ctx.base_iri, curriculum_type=f.options.curriculum_type
            ),
            extensions=extensions,
        ),
    )


def _base_key(f: TranscriptFact, lo_name: str = "lo") -> list[tuple[str, str]]:
    return [("user", f.user_guid), (lo_name, f.lo_guid), ("reg", f.reg_num)]


def _context(ctx: MappingContext, f: TranscriptFact) -> Context:
    extensions: dict[str, JsonValue] = {
        ctx.extension("csod/registration-number"): int(f.reg_num)
        if f.reg_num.isdigit()
        else f.reg_num
    }
    if f.status:
        extensions[ctx.extension("csod/status")] = f.status
    return Context(
        registration=ctx.statement_id("registration", _base_key(f)),
        extensions=extensions,
    )


def _required(when: datetime | None, what: str) -> datetime:
    if when is None:
        raise MappingError(f"no usable {what}")
    return when


def _score(f: TranscriptFact) -> Score | None:
    if f.score is None:
        return None
    top = f.max_score if f.max_score and f.max_score > 0 else 100.0
    if not 0 <= f.score <= top:
        return Score(raw=f.score)  # never invent a scale the score does not fit
    return Score(raw=f.score, min=0, max=top, scaled=round(f.score / top, 4))


def _duration(f: TranscriptFact) -> str | None:
    return format_duration(f.minutes * 60) if f.minutes is not None else None


@mapper.on(TrainingCompleted)
def training_completed(f: TrainingCompleted, ctx: MappingContext) -> Sequence[Statement]:
    done = _required(csod_time(f.comp_dt) or csod_time(f.action_at), "completion date")
    actor = ctx.agent(_learner(f))
    obj = _object(ctx, f)
    context = _context(ctx, f)
    is_session = (f.lo_type or "").strip().lower() in SESSION_TYPES
    out: list[Statement] = []
    if is_session:
        out.append(
            ctx.statement(
                verb=Verbs.ATTENDED,
                key=_base_key(f, "session"),
                actor=actor,
                object_=obj,
                timestamp=done,
                result=Result(duration=_duration(f)) if f.minutes is not None else None,
                context=context,
            )
        )
    if not is_session or f.options.session_completed_too:
        key = [*_base_key(f), ("completed_at", key_time(done))]
        out.append(
            ctx.statement(
                verb=Verbs.COMPLETED,
                key=key,
                actor=actor,
                object_=obj,
                timestamp=done,
                result=Result(
                    completion=True, score=_score(f), success=f.passed, duration=_duration(f)
                ),
                context=context,
            )
        )
    judged = (f.lo_type or "").strip().lower() == "test" or f.mastery_score is not None
    if f.passed is not None and judged:
        verb: VerbDef = Verbs.PASSED if f.passed else Verbs.FAILED
        out.append(
            ctx.statement(
                verb=verb,
                key=[*_base_key(f), ("completed_at", key_time(done))],
                actor=actor,
                object_=obj,
                timestamp=done,
                result=Result(score=_score(f), success=f.passed, duration=_duration(f)),
                context=context,
            )
        )
    return out


@mapper.on(TrainingAssigned)
def training_assigned(f: TrainingAssigned, ctx: MappingContext) -> Sequence[Statement]:
    at = _required(csod_time(f.assigned_dt) or csod_time(f.action_at), "assignment date")
    context = _context(ctx, f)
    if f.options.assign_verb == "assign":
        # AS1 `assign`: the actor does the assigning; the learner goes into an extension.
        if f.assigner_guid is None:
            raise MappingError("assign_verb 'assign' needs the assigner's GUID (createdByUserGuid)")
        learner = ctx.agent(_learner(f))
        context = context.model_copy(
            update={
                "extensions": {
                    **dict(context.extensions or {}),
                    ctx.extension("assignee"): learner.to_json(),
                }
            }
        )
        return [
            ctx.statement(
                verb=Verbs.ASSIGNED,
                verb_key="assigned",
                key=_base_key(f),
                actor=ctx.agent(Person(source_user_id=f.assigner_guid)),
                object_=_object(ctx, f),
                timestamp=at,
                context=context,
            )
        ]
    return [
        ctx.statement(
            verb=Verbs.REGISTERED,
            verb_key="assigned",
            key=_base_key(f),
            actor=ctx.agent(_learner(f)),
            object_=_object(ctx, f),
            timestamp=at,
            context=context,
        )
    ]


@mapper.on(TrainingRegistered)
def training_registered(f: TrainingRegistered, ctx: MappingContext) -> Sequence[Statement]:
    at = _required(csod_time(f.reg_dt) or csod_time(f.action_at), "registration date")
    return [
        ctx.statement(
            verb=Verbs.REGISTERED,
            key=_base_key(f),
            actor=ctx.agent(_learner(f)),
            object_=_object(ctx, f),
            timestamp=at,
            context=_context(ctx, f),
        )
    ]


@mapper.on(TrainingRemoved)
def training_removed(f: TrainingRemoved, ctx: MappingContext) -> Sequence[Statement]:
    at = _required(
        csod_time(f.removed_dt) or csod_time(f.action_at) or csod_time(f.last_touched),
        "removal date",
    )
    return [
        ctx.statement(
            verb=Verbs.UNREGISTERED,
            verb_key="removed",
            key=_base_key(f),
            actor=ctx.agent(_learner(f)),
            object_=_object(ctx, f),
            timestamp=at,
            context=_context(ctx, f),
        )
    ]


@mapper.on(EmployeeEvent)
def employee_event(e: EmployeeEvent, ctx: MappingContext) -> Sequence[Statement]:
    # Employee events carry an integer employeeId only; users are resolved by GUID on demand.
    return []
