"""Typed pydantic v2 models for xAPI statements (the producer's API).

The models enforce only *structural* rules: exactly one IFI per Agent, Group shape, the
``objectType`` discriminators and "no unknown keys". Every other producer rule (IRI syntax,
score ranges, durations, version-specific fields, ...) lives in :mod:`hub.xapi.validation`,
which checks the JSON that a model dumps to. Field names are snake_case in Python and the
aliases are the exact xAPI JSON keys; dump with :meth:`XapiModel.to_json`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    field_serializer,
    model_validator,
)

from hub.xapi.timefmt import format_timestamp

LanguageMap = dict[str, str]
"""An xAPI language map: RFC 5646 tag -> text."""

Extensions = dict[str, JsonValue]
"""xAPI extensions: IRI -> any JSON value (nulls allowed)."""

Number = StrictInt | StrictFloat

IFI_KEYS: tuple[str, ...] = ("mbox", "mbox_sha1sum", "openid", "account")
"""JSON keys of the inverse functional identifiers of an Agent or identified Group."""


class XapiModel(BaseModel):
    """Base class: frozen, no extra keys, populated by field name or by xAPI alias."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def to_json(self) -> dict[str, Any]:
        """Dump to xAPI JSON-compatible data (aliases, no ``None`` fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Account(XapiModel):
    """An account on some system: ``homePage`` IRL plus the stable ``name`` there."""

    home_page: str = Field(alias="homePage")
    name: str


class _Identified(XapiModel):
    """Shared IFI fields of Agents and Groups."""

    name: str | None = None
    mbox: str | None = None
    mbox_sha1sum: str | None = None
    openid: str | None = None
    account: Account | None = None

    def ifi_count(self) -> int:
        """Number of inverse functional identifiers set."""
        return sum(getattr(self, key) is not None for key in IFI_KEYS)


class Agent(_Identified):
    """An individual. Exactly one IFI is required."""

    object_type: Literal["Agent"] | None = Field(default=None, alias="objectType")

    @model_validator(mode="after")
    def _exactly_one_ifi(self) -> Agent:
        if self.ifi_count() != 1:
            raise ValueError(
                "an Agent needs exactly one IFI (mbox, mbox_sha1sum, openid or account), "
                f"got {self.ifi_count()}"
            )
        return self


class Group(_Identified):
    """A Group: anonymous (``member`` only, no IFI) or identified (exactly one IFI)."""

    object_type: Literal["Group"] = Field(alias="objectType")
    member: list[Agent] | None = None

    @model_validator(mode="after")
    def _group_shape(self) -> Group:
        count = self.ifi_count()
        if count > 1:
            raise ValueError(f"an identified Group needs exactly one IFI, got {count}")
        if count == 0 and not self.member:
            raise ValueError("an anonymous Group (no IFI) requires a non-empty 'member' list")
        return self

    @property
    def is_anonymous(self) -> bool:
        """True when the Group carries no IFI."""
        return self.ifi_count() == 0


def _actor_tag(value: Any) -> str:
    if isinstance(value, Group):
        return "Group"
    if isinstance(value, Agent):
        return "Agent"
    if isinstance(value, dict) and value.get("objectType") == "Group":
        return "Group"
    return "Agent"


Actor = Annotated[
    Annotated[Agent, Tag("Agent")] | Annotated[Group, Tag("Group")],
    Discriminator(_actor_tag),
]
"""An Agent or a Group (discriminated by ``objectType``)."""


class Verb(XapiModel):
    """A verb: absolute IRI ``id`` plus a ``display`` language map."""

    id: str
    display: LanguageMap | None = None


class InteractionComponent(XapiModel):
    """One choice / scale point / source / target / step of an interaction."""

    id: str
    description: LanguageMap | None = None


InteractionType = Literal[
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
]


class ActivityDefinition(XapiModel):
    """Metadata of an Activity, including the basic interaction properties."""

    name: LanguageMap | None = None
    description: LanguageMap | None = None
    type: str | None = None
    more_info: str | None = Field(default=None, alias="moreInfo")
    extensions: Extensions | None = None
    interaction_type: InteractionType | None = Field(default=None, alias="interactionType")
    correct_responses_pattern: list[str] | None = Field(
        default=None, alias="correctResponsesPattern"
    )
    choices: list[InteractionComponent] | None = None
    scale: list[InteractionComponent] | None = None
    source: list[InteractionComponent] | None = None
    target: list[InteractionComponent] | None = None
    steps: list[InteractionComponent] | None = None


class Activity(XapiModel):
    """An Activity: absolute IRI ``id`` and an optional definition."""

    object_type: Literal["Activity"] | None = Field(default=None, alias="objectType")
    id: str
    definition: ActivityDefinition | None = None


class StatementRef(XapiModel):
    """A reference to another statement by id (used for voiding)."""

    object_type: Literal["StatementRef"] = Field(default="StatementRef", alias="objectType")
    id: UUID


class Score(XapiModel):
    """A score; range rules are checked by :mod:`hub.xapi.validation`."""

    scaled: Number | None = None
    raw: Number | None = None
    min: Number | None = None
    max: Number | None = None


class Result(XapiModel):
    """The outcome of a statement. ``duration`` is an ISO 8601 duration string."""

    score: Score | None = None
    success: StrictBool | None = None
    completion: StrictBool | None = None
    response: str | None = None
    duration: str | None = None
    extensions: Extensions | None = None


class ContextActivities(XapiModel):
    """Related activities; always serialised as arrays."""

    parent: list[Activity] | None = None
    grouping: list[Activity] | None = None
    category: list[Activity] | None = None
    other: list[Activity] | None = None


class ContextAgent(XapiModel):
    """xAPI 2.0 only: an Agent related to the statement, with optional relevant types."""

    object_type: Literal["contextAgent"] = Field(default="contextAgent", alias="objectType")
    agent: Agent
    relevant_types: list[str] | None = Field(default=None, alias="relevantTypes", min_length=1)


class ContextGroup(XapiModel):
    """xAPI 2.0 only: a Group related to the statement, with optional relevant types."""

    object_type: Literal["contextGroup"] = Field(default="contextGroup", alias="objectType")
    group: Group
    relevant_types: list[str] | None = Field(default=None, alias="relevantTypes", min_length=1)


class Context(XapiModel):
    """The context of a statement."""

    registration: UUID | None = None
    instructor: Actor | None = None
    team: Group | None = None
    context_activities: ContextActivities | None = Field(default=None, alias="contextActivities")
    revision: str | None = None
    platform: str | None = None
    language: str | None = None
    statement: StatementRef | None = None
    extensions: Extensions | None = None
    context_agents: list[ContextAgent] | None = Field(default=None, alias="contextAgents")
    context_groups: list[ContextGroup] | None = Field(default=None, alias="contextGroups")


class Attachment(XapiModel):
    """Attachment metadata; the hub sends JSON only, so set ``file_url``."""

    usage_type: str = Field(alias="usageType")
    display: LanguageMap
    description: LanguageMap | None = None
    content_type: str = Field(alias="contentType")
    length: StrictInt = Field(ge=0)
    sha2: str
    file_url: str | None = Field(default=None, alias="fileUrl")


def _object_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, dict):
        tag = value.get("objectType")
        return tag if isinstance(tag, str) else "Activity"
    return "Activity"


class _StatementBase(XapiModel):
    """Fields shared by Statement and SubStatement."""

    actor: Actor
    verb: Verb
    result: Result | None = None
    context: Context | None = None
    timestamp: AwareDatetime | None = None
    attachments: list[Attachment] | None = None

    @field_serializer("timestamp")
    def _ser_timestamp(self, value: datetime | None) -> str | None:
        return None if value is None else format_timestamp(value)

    def _check_object_type(self, obj: XapiModel) -> None:
        if isinstance(obj, Agent) and obj.object_type is None:
            raise ValueError("an Agent used as the statement object must set objectType='Agent'")


SubStatementObject = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Agent, Tag("Agent")]
    | Annotated[Group, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")],
    Discriminator(_object_tag),
]


class SubStatement(_StatementBase):
    """A statement embedded as an object: no id/stored/version/authority, no nesting."""

    object_type: Literal["SubStatement"] = Field(default="SubStatement", alias="objectType")
    object_: SubStatementObject = Field(alias="object")

    @model_validator(mode="after")
    def _object_shape(self) -> SubStatement:
        self._check_object_type(self.object_)
        return self


StatementObject = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Agent, Tag("Agent")]
    | Annotated[Group, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")]
    | Annotated[SubStatement, Tag("SubStatement")],
    Discriminator(_object_tag),
]


class Statement(_StatementBase):
    """An xAPI statement as the hub produces it (never carries stored/authority)."""

    id: UUID | None = None
    object_: StatementObject = Field(alias="object")
    version: str | None = None

    @model_validator(mode="after")
    def _object_shape(self) -> Statement:
        self._check_object_type(self.object_)
        return self
