"""Docebo events -> xAPI statements (vendors.md 2.9). Pure functions, one per fact.

Natural keys (names and order fixed forever, vendors.md 8.2):

=======================================  ============  ========================================
fact                                     verb_key      key parts
=======================================  ============  ========================================
enrollment created / row first seen      registered    user, course, enrolled_at
enrollment completed / completed row     completed     user, course, completed_at
enrollment deleted                       unregistered  user, course, at (fired_at)
enrollment updated (opt-in)              progressed    user, course, status, at (fired_at)
learning plan completed                  completed     user, plan, completed_at
ILT session attended                     attended      user, session
=======================================  ============  ========================================

Statements carry only what BOTH the webhook and the API say about a fact (the course name, the
dates; the score and time spent once the connector enriched a webhook completion). Webhook-only
fields such as ``level`` or ``fired_by_batch_action`` are left out on purpose: the API names
levels differently, and a statement that differed by path would make the LRS see two versions
of one id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from connectors.docebo.models import (
    EnrollmentCompleted,
    EnrollmentCreated,
    EnrollmentDeleted,
    EnrollmentRecord,
    EnrollmentUpdated,
    IltAttendance,
    LearningPlanCompleted,
    MappingOptions,
    MetadataChanged,
    UserChanged,
    UserDeleted,
    docebo_time,
)
from hub import MappingContext, MappingError, Person, StatementMapper
from hub.xapi import (
    Activity,
    ActivityDefinition,
    ActivityTypes,
    Context,
    ContextActivities,
    Result,
    Score,
    Statement,
    Verbs,
    format_duration,
    key_time,
)

__all__ = ["mapper"]

mapper = StatementMapper()


@runtime_checkable
class _Remembers(Protocol):
    """The part of the hub's identity resolver that user events refresh."""

    def remember(self, person: Person, source: str) -> None: ...


def _learner(ctx: MappingContext, user_id: str) -> Person:
    # Only the id: the webhook's `username` is often, but not always, an email (vendors.md
    # 2.9), so the email comes from the user API through the identity resolver.
    return Person(source_user_id=user_id)


def _course(ctx: MappingContext, e: EnrollmentRecord) -> Activity:
    return Activity(
        object_type="Activity",
        id=ctx.activity_id("course", e.course_id),
        definition=ActivityDefinition(
            name=ctx.lang(e.course_name) if e.course_name else None,
            type=ActivityTypes.COURSE,
        ),
    )


def _required(when: datetime | None, what: str) -> datetime:
    if when is None:
        raise MappingError(f"no usable {what} (missing, empty or a zero date)")
    return when


def _score(raw: float | None, options: MappingOptions) -> Score | None:
    if raw is None:
        return None
    top = options.score_max
    if top is None:
        return Score(raw=raw)
    if not 0 <= raw <= top:
        # Never invent a scale the score does not fit (vendors.md 1.5): keep the raw value only.
        return Score(raw=raw)
    return Score(raw=raw, min=0, max=top, scaled=round(raw / top, 4))


@mapper.on(EnrollmentCreated)
def enrollment_created(e: EnrollmentCreated, ctx: MappingContext) -> Sequence[Statement]:
    enrolled = _required(e.time(e.enrollment_date) or e.time(e.fired_at), "enrollment date")
    return [
        ctx.statement(
            verb=Verbs.REGISTERED,
            key=[("user", e.user_id), ("course", e.course_id), ("enrolled_at", key_time(enrolled))],
            actor=ctx.agent(_learner(ctx, e.user_id)),
            object_=_course(ctx, e),
            timestamp=enrolled,
        )
    ]


@mapper.on(EnrollmentCompleted)
def enrollment_completed(e: EnrollmentCompleted, ctx: MappingContext) -> Sequence[Statement]:
    # A zero completion date falls back to the event time, then the row's last update: a
    # completion is a fact even when Docebo failed to stamp it.
    done = _required(
        e.time(e.completion_date) or e.time(e.fired_at) or e.time(e.last_updated),
        "completion date",
    )
    duration = format_duration(e.time_spent) if e.time_spent is not None else None
    return [
        ctx.statement(
            verb=Verbs.COMPLETED,
            key=[("user", e.user_id), ("course", e.course_id), ("completed_at", key_time(done))],
            actor=ctx.agent(_learner(ctx, e.user_id)),
            object_=_course(ctx, e),
            timestamp=done,
            result=Result(completion=True, score=_score(e.score, e.options), duration=duration),
        )
    ]


@mapper.on(EnrollmentDeleted)
def enrollment_deleted(e: EnrollmentDeleted, ctx: MappingContext) -> Sequence[Statement]:
    at = _required(e.time(e.fired_at), "fired_at")
    return [
        ctx.statement(
            verb=Verbs.UNREGISTERED,
            key=[("user", e.user_id), ("course", e.course_id), ("at", key_time(at))],
            actor=ctx.agent(_learner(ctx, e.user_id)),
            object_=_course(ctx, e),
            timestamp=at,
        )
    ]


@mapper.on(EnrollmentUpdated)
def enrollment_updated(e: EnrollmentUpdated, ctx: MappingContext) -> Sequence[Statement]:
    # Docebo fires `completed` (not `updated`) for completions; an update is at most progress.
    if not e.options.emit_progressed or (e.status or "").lower() != "in_progress":
        return []
    at = _required(e.time(e.fired_at) or e.time(e.last_updated), "fired_at")
    return [
        ctx.statement(
            verb=Verbs.PROGRESSED,
            key=[
                ("user", e.user_id),
                ("course", e.course_id),
                ("status", "in_progress"),
                ("at", key_time(at)),
            ],
            actor=ctx.agent(_learner(ctx, e.user_id)),
            object_=_course(ctx, e),
            timestamp=at,
        )
    ]


@mapper.on(LearningPlanCompleted)
def learning_plan_completed(e: LearningPlanCompleted, ctx: MappingContext) -> Sequence[Statement]:
    zone = e.options.source_timezone
    done = _required(
        docebo_time(e.completion_date, zone) or docebo_time(e.fired_at, zone), "completion date"
    )
    plan = Activity(
        object_type="Activity",
        id=ctx.activity_id("learning-plan", e.learning_plan_id),
        definition=ActivityDefinition(
            name=ctx.lang(e.name) if e.name else None,
            type=ActivityTypes.learning_plan(ctx.base_iri),
        ),
    )
    return [
        ctx.statement(
            verb=Verbs.COMPLETED,
            key=[
                ("user", e.user_id),
                ("plan", e.learning_plan_id),
                ("completed_at", key_time(done)),
            ],
            actor=ctx.agent(_learner(ctx, e.user_id)),
            object_=plan,
            timestamp=done,
            result=Result(completion=True),
        )
    ]


@mapper.on(IltAttendance)
def ilt_attended(e: IltAttendance, ctx: MappingContext) -> Sequence[Statement]:
    if e.attended is False:
        return []
    when = _required(docebo_time(e.date, e.options.source_timezone), "session date")
    parent = (
        ContextActivities(
            parent=[
                Activity(
                    object_type="Activity",
                    id=ctx.activity_id("course", e.course_id),
                    definition=ActivityDefinition(type=ActivityTypes.COURSE),
                )
            ]
        )
        if e.course_id
        else None
    )
    session = Activity(
        object_type="Activity",
        id=ctx.activity_id("ilt-session", e.session_id),
        definition=ActivityDefinition(
            name=ctx.lang(e.session_name) if e.session_name else None,
            type=ActivityTypes.MEETING,
        ),
    )
    return [
        ctx.statement(
            verb=Verbs.ATTENDED,
            key=[("user", e.user_id), ("session", e.session_id)],
            actor=ctx.agent(_learner(ctx, e.user_id)),
            object_=session,
            timestamp=when,
            result=(
                Result(duration=format_duration(e.time_spent)) if e.time_spent is not None else None
            ),
            context=Context(context_activities=parent) if parent else None,
        )
    ]


@mapper.on(UserChanged)
def user_changed(e: UserChanged, ctx: MappingContext) -> Sequence[Statement]:
    # Identity refresh only (vendors.md 1.2): the resolver caches id -> email for later events.
    name = " ".join(p for p in (e.first_name, e.last_name) if p) or None
    if isinstance(ctx.actors, _Remembers):
        ctx.actors.remember(Person(source_user_id=e.user_id, email=e.email, name=name), ctx.source)
    return []


@mapper.on(UserDeleted)
def user_deleted(e: UserDeleted, ctx: MappingContext) -> Sequence[Statement]:
    return []


@mapper.on(MetadataChanged)
def metadata_changed(e: MetadataChanged, ctx: MappingContext) -> Sequence[Statement]:
    return []
