"""Pydantic models of Microsoft Graph payloads (vendors.md 5.4, 5.5, 5.7) and the mapper's
payloads. Graph adds fields freely, so every model ignores unknown keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub import EventPayload

__all__ = [
    "AttendanceInterval",
    "AttendanceRecord",
    "AttendanceReport",
    "AttendanceReportEvent",
    "ChannelMessageEvent",
    "ChatMessage",
    "EncryptedContent",
    "Identity",
    "MessageBody",
    "MessageFrom",
    "Notification",
    "NotificationBatch",
    "Reaction",
    "ResourcePath",
    "parse_resource",
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# --- change notifications ------------------------------------------------------------------


class EncryptedContent(_Lenient):
    data: str
    data_signature: str = Field(alias="dataSignature")
    data_key: str = Field(alias="dataKey")
    encryption_certificate_id: str | None = Field(default=None, alias="encryptionCertificateId")
    encryption_certificate_thumbprint: str | None = Field(
        default=None, alias="encryptionCertificateThumbprint"
    )


class Notification(_Lenient):
    """One item of ``value[]``: a change or a lifecycle notification."""

    subscription_id: str = Field(alias="subscriptionId")
    client_state: str | None = Field(default=None, alias="clientState")
    change_type: str | None = Field(default=None, alias="changeType")
    resource: str | None = None
    tenant_id: str | None = Field(default=None, alias="tenantId")
    lifecycle_event: str | None = Field(default=None, alias="lifecycleEvent")
    encrypted_content: EncryptedContent | None = Field(default=None, alias="encryptedContent")


class NotificationBatch(_Lenient):
    value: list[dict[str, object]] = Field(default_factory=list)
    validation_tokens: list[str] = Field(default_factory=list, alias="validationTokens")


# --- resources ------------------------------------------------------------------------------


_ODATA = re.compile(
    r"^/?teams(?:\('(?P<t1>[^']+)'\)|/(?P<t2>[^/]+))/channels(?:\('(?P<c1>[^']+)'\)|/(?P<c2>[^/]+))"
    r"/messages(?:\('(?P<m1>[^']+)'\)|/(?P<m2>[^/]+))"
    r"(?:/replies(?:\('(?P<r1>[^']+)'\)|/(?P<r2>[^/]+)))?$"
)


@dataclass(frozen=True)
class ResourcePath:
    """Ids in a channel-message resource path."""

    team_id: str
    channel_id: str
    message_id: str
    reply_id: str | None = None


def parse_resource(resource: str) -> ResourcePath | None:
    """Parse ``teams('a')/channels('b')/messages('c')/replies('d')`` or
    ``teams/a/channels/b/messages/c``; None for anything else (chats, …)."""
    match = _ODATA.match(resource.strip())
    if match is None:
        return None
    g = match.groupdict()
    return ResourcePath(
        team_id=(g["t1"] or g["t2"]).lower(),
        channel_id=g["c1"] or g["c2"],
        message_id=g["m1"] or g["m2"],
        reply_id=g["r1"] or g["r2"],
    )


# --- chatMessage ------------------------------------------------------------------------------


class Identity(_Lenient):
    id: str | None = None
    display_name: str | None = Field(default=None, alias="displayName")


class MessageFrom(_Lenient):
    user: Identity | None = None
    application: Identity | None = None
    device: Identity | None = None


class MessageBody(_Lenient):
    content_type: str | None = Field(default=None, alias="contentType")
    content: str | None = None


class Reaction(_Lenient):
    reaction_type: str = Field(alias="reactionType")
    display_name: str | None = Field(default=None, alias="displayName")
    created_date_time: str = Field(alias="createdDateTime")
    user: MessageFrom | None = None


class ChannelIdentity(_Lenient):
    team_id: str | None = Field(default=None, alias="teamId")
    channel_id: str | None = Field(default=None, alias="channelId")


class ChatMessage(_Lenient):
    """A Graph ``chatMessage`` (from a GET, delta or decrypted notification)."""

    id: str
    reply_to_id: str | None = Field(default=None, alias="replyToId")
    message_type: str = Field(default="message", alias="messageType")
    created_date_time: str = Field(alias="createdDateTime")
    deleted_date_time: str | None = Field(default=None, alias="deletedDateTime")
    from_: MessageFrom | None = Field(default=None, alias="from")
    body: MessageBody | None = None
    web_url: str | None = Field(default=None, alias="webUrl")
    locale: str | None = None
    channel_identity: ChannelIdentity | None = Field(default=None, alias="channelIdentity")
    reactions: list[Reaction] = Field(default_factory=list)


class ChannelMessageEvent(EventPayload):
    """The mapper's payload for a channel message: where it lives, how it arrived, the message.

    ``change_type`` is the notification's (``created``/``updated``) or ``delta``.
    """

    event_types: ClassVar[tuple[str, ...]] = ("channelMessage",)

    tenant_id: str = Field(alias="tenantId")
    team_id: str = Field(alias="teamId")
    channel_id: str = Field(alias="channelId")
    change_type: Literal["created", "updated", "deleted", "delta"] = Field(alias="changeType")
    reply_to_id: str | None = Field(default=None, alias="replyToId")
    message: ChatMessage


# --- attendance -----------------------------------------------------------------------------


class AttendanceInterval(_Lenient):
    join_date_time: str | None = Field(default=None, alias="joinDateTime")
    leave_date_time: str | None = Field(default=None, alias="leaveDateTime")
    duration_in_seconds: int | None = Field(default=None, alias="durationInSeconds")


class AttendanceRecord(_Lenient):
    email_address: str | None = Field(default=None, alias="emailAddress")
    total_attendance_in_seconds: int | None = Field(default=None, alias="totalAttendanceInSeconds")
    role: str | None = None
    identity: Identity | None = None
    attendance_intervals: list[AttendanceInterval] = Field(
        default_factory=list, alias="attendanceIntervals"
    )


class AttendanceReport(_Lenient):
    id: str
    meeting_start_date_time: str | None = Field(default=None, alias="meetingStartDateTime")
    meeting_end_date_time: str | None = Field(default=None, alias="meetingEndDateTime")
    attendance_records: list[AttendanceRecord] = Field(
        default_factory=list, alias="attendanceRecords"
    )


class AttendanceReportEvent(EventPayload):
    """The mapper's payload for one attendance report of a configured live session."""

    event_types: ClassVar[tuple[str, ...]] = ("attendanceReport",)

    tenant_id: str = Field(alias="tenantId")
    organizer_id: str = Field(alias="organizerId")
    meeting_id: str = Field(alias="meetingId")
    subject: str | None = None
    report: AttendanceReport
