"""Typed Docebo payloads: webhook envelopes, API pages, and the event payloads the mapper reads.

Docebo has two enrollment APIs and a webhook, each naming the same facts differently (vendors.md
2.10 pitfall 1). `EnrollmentRecord` accepts all three shapes through alias choices, so a webhook
delivery and a polled row of the same fact go through ONE payload model and ONE handler and so
produce the same statement. Ids arrive as ints or strings (pitfall 9): `IdStr` normalizes them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from hub import EventPayload
from hub.xapi import parse_timestamp

__all__ = [
    "DoceboEnvelope",
    "DoceboPage",
    "DoceboUserResponse",
    "EnrollmentCompleted",
    "EnrollmentCreated",
    "EnrollmentDeleted",
    "EnrollmentRecord",
    "EnrollmentUpdated",
    "IltAttendance",
    "LearningPlanCompleted",
    "MappingOptions",
    "MetadataChanged",
    "UserChanged",
    "UserDeleted",
    "docebo_time",
    "format_docebo_time",
]


def _id(value: object) -> object:
    # bool is an int subclass; a True id is a payload bug, let validation reject it.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


IdStr = Annotated[str, BeforeValidator(_id)]


def _blank_none(value: object) -> object:
    return None if value == "" else value


Num = Annotated[float | None, BeforeValidator(_blank_none)]


def docebo_time(value: str | None, zone: ZoneInfo | str = "UTC") -> datetime | None:
    """Parse a Docebo date (vendors.md 8.4): ``"YYYY-MM-DD HH:MM:SS"`` without offset is wall
    time in `zone` (UTC by default, [U]); zero dates and ``""`` give None."""
    if value is None:
        return None
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    try:
        return parse_timestamp(value)  # an explicit offset wins over the configured zone
    except ValueError:
        pass
    wall = parse_timestamp(value, assume_utc=True)
    if wall is None or tz.key == "UTC":
        return wall
    return wall.replace(tzinfo=tz).astimezone(UTC)


def format_docebo_time(dt: datetime, zone: ZoneInfo | str = "UTC") -> str:
    """The ``YYYY-MM-DD HH:MM:SS`` form Docebo filters (``updated_from``) expect."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


# -- mapping options --------------------------------------------------------------------------


class MappingOptions(BaseModel):
    """The instance's mapping settings, injected by the connector under the ``_hub`` key, so the
    handlers stay pure functions of their payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source_timezone: str = "UTC"
    score_max: float | None = 100.0
    emit_progressed: bool = False


class _Payload(EventPayload):
    options: MappingOptions = Field(default_factory=MappingOptions, alias="_hub")


# -- enrollments --------------------------------------------------------------------------------


class EnrollmentRecord(_Payload):
    """A course enrollment: webhook ``payload``, ``/learn/v1/enrollments`` or
    ``/course/v1/courses/enrollments`` item."""

    event_types: ClassVar[tuple[str, ...]] = ()

    user_id: IdStr = Field(validation_alias=AliasChoices("user_id", "id_user"))
    course_id: IdStr = Field(validation_alias=AliasChoices("course_id", "id_course", "id"))
    course_name: str | None = Field(
        default=None, validation_alias=AliasChoices("course_name", "name")
    )
    status: str | None = Field(
        default=None, validation_alias=AliasChoices("status", "enrollment_status")
    )
    enrollment_date: str | None = Field(
        default=None,
        validation_alias=AliasChoices("enrollment_date", "enrollment_created_at", "date_inscr"),
    )
    completion_date: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "completion_date", "enrollment_completion_date", "date_complete"
        ),
    )
    last_updated: str | None = Field(
        default=None,
        validation_alias=AliasChoices("enrollment_date_last_updated", "date_last_updated"),
    )
    fired_at: str | None = None
    score: Num = Field(default=None, validation_alias=AliasChoices("enrollment_score", "score"))
    time_spent: Num = Field(
        default=None, validation_alias=AliasChoices("enrollment_time_spent", "time_spent")
    )

    def time(self, value: str | None) -> datetime | None:
        return docebo_time(value, self.options.source_timezone)


class EnrollmentCreated(EnrollmentRecord):
    event_types: ClassVar[tuple[str, ...]] = ("course.enrollment.created",)


class EnrollmentCompleted(EnrollmentRecord):
    event_types: ClassVar[tuple[str, ...]] = ("course.enrollment.completed",)


class EnrollmentDeleted(EnrollmentRecord):
    event_types: ClassVar[tuple[str, ...]] = ("course.enrollment.deleted",)


class EnrollmentUpdated(EnrollmentRecord):
    event_types: ClassVar[tuple[str, ...]] = ("course.enrollment.updated",)


# -- learning plans and ILT ([U] shapes) -------------------------------------------------------


class LearningPlanCompleted(_Payload):
    """A learning-plan completion: webhook (event name [U], see ``event_aliases``) or a row of
    ``/learningplan/v1/learningplans/enrollments``."""

    event_types: ClassVar[tuple[str, ...]] = ("learningplan.enrollment.completed",)

    user_id: IdStr = Field(validation_alias=AliasChoices("user_id", "id_user"))
    learning_plan_id: IdStr = Field(
        validation_alias=AliasChoices("learning_plan_id", "lp_id", "id_path", "id")
    )
    name: str | None = Field(
        default=None, validation_alias=AliasChoices("learning_plan_name", "lp_name", "name")
    )
    completion_date: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "completion_date", "enrollment_completion_date", "date_complete", "completed_at"
        ),
    )
    fired_at: str | None = None


class IltAttendance(_Payload):
    """A learner's attendance of an ILT session (a row of the configured attendance endpoint).
    ``ilt.session.attended`` is the hub's name: Docebo fires no such webhook."""

    event_types: ClassVar[tuple[str, ...]] = ("ilt.session.attended",)

    user_id: IdStr = Field(validation_alias=AliasChoices("user_id", "id_user"))
    session_id: IdStr = Field(validation_alias=AliasChoices("session_id", "id_session"))
    course_id: IdStr | None = Field(
        default=None, validation_alias=AliasChoices("course_id", "id_course")
    )
    session_name: str | None = Field(
        default=None, validation_alias=AliasChoices("session_name", "name")
    )
    date: str | None = Field(
        default=None,
        validation_alias=AliasChoices("attendance_date", "session_date", "date", "date_begin"),
    )
    attended: bool | None = None
    time_spent: Num = Field(
        default=None, validation_alias=AliasChoices("time_spent", "duration_seconds")
    )


# -- events that refresh caches only ------------------------------------------------------------


class UserChanged(_Payload):
    """``user.created`` / ``user.updated``: refresh the identity cache, no statement."""

    event_types: ClassVar[tuple[str, ...]] = ("user.created", "user.updated")

    user_id: IdStr
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class UserDeleted(_Payload):
    event_types: ClassVar[tuple[str, ...]] = ("user.deleted",)

    user_id: IdStr | None = None


class MetadataChanged(_Payload):
    """Course, catalog and ILT session metadata events: no learner fact, no statement."""

    event_types: ClassVar[tuple[str, ...]] = (
        "course.created",
        "course.updated",
        "course.deleted",
        "catalog.course.deleted",
        "ilt.session.created",
        "ilt.session.updated",
        "ilt.session.deleted",
    )


# -- transport shapes -------------------------------------------------------------------------


class DoceboEnvelope(BaseModel):
    """A webhook message: the single ``payload`` form or the grouped ``payloads[]`` form."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: str = Field(min_length=1)
    event: str = Field(min_length=1)
    webhook_id: int | None = None
    original_domain: str | None = None
    fired_by_batch_action: bool | None = None
    payload: dict[str, JsonValue] | None = None
    payloads: list[dict[str, JsonValue]] | None = None


class DoceboPageData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    items: list[dict[str, JsonValue]] = Field(default_factory=list)
    has_more_data: bool = False
    current_page: int | None = None
    total_page_count: int | None = None
    total_count: int | None = None
    cursor: str | None = None


class DoceboPage(BaseModel):
    """The list envelope ``{"data": {"items": [...], "has_more_data": ..., ...}}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    data: DoceboPageData


class DoceboUserData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: IdStr | None = None
    username: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class _UserDataHolder(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_data: DoceboUserData


class DoceboUserResponse(BaseModel):
    """``GET /manage/v1/user/{id}`` -> ``data.user_data``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    data: _UserDataHolder
