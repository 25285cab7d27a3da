"""Typed Cornerstone payloads: Edge webhook batches, OData pages, and the transcript fact.

A completion reaches the hub as an Edge webhook record (``trainingCompleted.data``), as a row of
``vw_rpt_transcript`` joined with ``vw_rpt_user`` and ``vw_rpt_training``, or as a row of a CSV
transcript report. `TranscriptFact` accepts all of them through alias choices, so the three paths
share one payload model and one handler (vendors.md 8.5 #2). GUIDs are lower-cased (the webhook's
``trainingRef`` is upper case); ids become decimal strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from hub import EventPayload
from hub.xapi import parse_timestamp

__all__ = [
    "CsodRecord",
    "CsodWebhookBatch",
    "EmployeeEvent",
    "MappingOptions",
    "ODataPage",
    "TrainingAssigned",
    "TrainingCompleted",
    "TrainingRegistered",
    "TrainingRemoved",
    "TranscriptFact",
    "csod_time",
]


def _guid(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _id(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else value


def _blank_none(value: object) -> object:
    return None if value == "" else value


def _flag(value: object) -> object:
    # CSV reports spell booleans as text.
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "y"):
            return True
        if text in ("false", "0", "no", "n"):
            return False
        if text == "":
            return None
    return value


Guid = Annotated[str, BeforeValidator(_guid)]
IdStr = Annotated[str, BeforeValidator(_id)]
Num = Annotated[float | None, BeforeValidator(_blank_none)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]
Text = Annotated[str | None, BeforeValidator(_blank_none)]


def csod_time(value: str | None) -> datetime | None:
    """Cornerstone's warehouse stores UTC; values often lack the offset (vendors.md 3.3)."""
    return parse_timestamp(value, assume_utc=True)


class MappingOptions(BaseModel):
    """Instance mapping settings, injected by the connector under ``_hub`` (handlers stay pure)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    assign_verb: str = "registered"
    session_completed_too: bool = False
    curriculum_type: str = "course"


class TranscriptFact(EventPayload):
    """One registration of a user on a learning object, from any path."""

    event_types: ClassVar[tuple[str, ...]] = ()

    options: MappingOptions = Field(default_factory=MappingOptions, alias="_hub")

    user_guid: Guid = Field(validation_alias=AliasChoices("user_guid", "targetUserGuid"))
    lo_guid: Guid = Field(
        validation_alias=AliasChoices("transc_object_id", "lo_object_id", "trainingId")
    )
    reg_num: IdStr = Field(validation_alias=AliasChoices("reg_num", "trainingRegistrationNumber"))
    action_at: Text = Field(default=None, alias="trainingActionDateTimestamp")
    comp_dt: Text = Field(default=None, alias="user_lo_comp_dt")
    assigned_dt: Text = Field(default=None, alias="user_lo_assigned_dt")
    reg_dt: Text = Field(default=None, alias="user_lo_reg_dt")
    removed_dt: Text = Field(default=None, alias="user_lo_removed_dt")
    last_touched: Text = Field(default=None, alias="_last_touched_dt_utc")
    status: Text = Field(default=None, alias="user_lo_status")
    score: Num = Field(default=None, alias="user_lo_score")
    passed: Flag = Field(default=None, alias="user_lo_pass")
    minutes: Num = Field(default=None, alias="user_lo_minutes_participated")
    lo_type: Text = None
    title: Text = Field(default=None, validation_alias=AliasChoices("lo_title", "trainingTitle"))
    max_score: Num = Field(default=None, alias="lo_max_score")
    mastery_score: Num = Field(default=None, alias="lo_mastery_score")
    email: Text = Field(default=None, alias="user_email")
    first_name: Text = Field(
        default=None, validation_alias=AliasChoices("user_name_first", "targetUserFirstName")
    )
    last_name: Text = Field(
        default=None, validation_alias=AliasChoices("user_name_last", "targetUserLastName")
    )
    assigner_guid: Guid | None = Field(default=None, alias="createdByUserGuid")


class TrainingCompleted(TranscriptFact):
    event_types: ClassVar[tuple[str, ...]] = ("TrainingCompleted",)


class TrainingAssigned(TranscriptFact):
    event_types: ClassVar[tuple[str, ...]] = ("TrainingAssigned",)


class TrainingRegistered(TranscriptFact):
    """A self-registration found by polling (``user_lo_reg_dt`` without an assignment)."""

    event_types: ClassVar[tuple[str, ...]] = ("TrainingRegistered",)


class TrainingRemoved(TranscriptFact):
    """``is_removed`` / ``user_lo_removed_dt`` found by polling."""

    event_types: ClassVar[tuple[str, ...]] = ("TrainingRemoved",)


class EmployeeEvent(EventPayload):
    """Employee events (``EmployeeCreated`` ...): identity only, no statement."""

    event_types: ClassVar[tuple[str, ...]] = ("EmployeeCreated", "EmployeeUpdated")


# -- transport shapes -------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class CsodHeaders(_Loose):
    messageId: str | None = None  # noqa: N815 - vendor field name
    corpName: str | None = None  # noqa: N815


class CsodValue(_Loose):
    headers: CsodHeaders = Field(default_factory=CsodHeaders)
    lmsEventsCase: str | None = None  # noqa: N815

    def data(self) -> dict[str, JsonValue] | None:
        """The event body: ``value[<camelCase of lmsEventsCase>].data``."""
        case = self.lmsEventsCase
        if not case:
            return None
        member = (self.model_extra or {}).get(case[0].lower() + case[1:])
        if not isinstance(member, dict):
            return None
        data = member.get("data", member)
        return data if isinstance(data, dict) else None


class CsodRecord(_Loose):
    value: CsodValue
    offset: int | None = None
    timestamp: str | None = None


class CsodWebhookBatch(_Loose):
    """An Edge webhook delivery: ``records[]`` (often one), ``attemptNumber`` > 1 on retries."""

    records: list[CsodRecord]
    attemptNumber: int | None = None  # noqa: N815
    sessionId: str | None = None  # noqa: N815


class ODataPage(BaseModel):
    """An OData v4 page: ``value`` rows and an optional ``@odata.nextLink``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    value: list[dict[str, JsonValue]] = Field(default_factory=list)
    next_link: str | None = Field(default=None, alias="@odata.nextLink")
