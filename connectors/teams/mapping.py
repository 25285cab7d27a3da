"""Graph facts -> xAPI statements (vendors.md 5.8). Pure functions: no I/O, no globals.

===========================================  ========  =========================================
Graph fact                                   verb      natural key (after ``msteams|{tenant}|``)
===========================================  ========  =========================================
channel root message (created / delta)       posted    ``posted|channel, message``
channel reply (replyToId or /replies path)   replied   ``replied|channel, message`` (reply id)
each entry of ``reactions[]``                liked     ``liked|message, user, reaction``
attendance record of a live session          attended  ``attended|meeting, report, attendee``
===========================================  ========  =========================================

Filtered out: ``messageType`` other than ``message`` (system events, typing, …), senders that
are applications (bots, connectors), deleted messages, and ``updated`` notifications except
for their reactions (an edit never re-emits ``posted``). A notification and a delta page of the
same message give the same statements, byte for byte: only fields of the message resource are
used, never delivery facts.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from connectors.teams.models import (
    AttendanceRecord,
    AttendanceReportEvent,
    ChannelMessageEvent,
    ChatMessage,
)
from hub import MappingContext, MappingError, Person, StatementMapper
from hub.xapi import (
    Activity,
    ActivityDefinition,
    ActivityTypes,
    Agent,
    Context,
    ContextActivities,
    Result,
    Statement,
    Verbs,
    format_duration,
    parse_timestamp,
)

__all__ = [
    "EMAIL_KEY_PREFIX",
    "IGNORED_MESSAGE_TYPES",
    "MappingOptions",
    "build_mapper",
    "graph_time",
    "language",
]

IGNORED_MESSAGE_TYPES = frozenset(
    {"systemEventMessage", "unknownFutureValue", "chatEvent", "typing"}
)
_EMAIL = re.compile(r"^[^@\s()]+@[^@\s()]+\.[^@\s()]+$")
_TAGS = re.compile(r"<[^>]*>")
_BREAKS = re.compile(r"<\s*(?:br|/p|/div|/li|/h[1-6])\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\f\v]+")
EMAIL_KEY_PREFIX = "email-sha1:"
"""Attendee key of attendees known only by email (never looked up in Graph)."""
_REDACTED = frozenset({"", "(redacted)", "(email address)"})


@dataclass(frozen=True)
class MappingOptions:
    """The instance settings that change statements."""

    include_message_text: bool = False
    message_text_max_chars: int = 1000
    attendance_threshold: float | None = 0.75


def graph_time(text: str | None, what: str) -> datetime:
    """A Graph timestamp (any precision, offsets, 7-digit fractions) as UTC."""
    try:
        when = parse_timestamp(text)
    except ValueError:
        when = None
    if when is None:
        raise MappingError(f"{what}: unreadable time {text!r}")
    return when


def language(locale: str | None) -> str | None:
    """``en-us`` -> ``en-US`` (RFC 5646 casing); None when absent or odd."""
    if not locale or not re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", locale):
        return None
    head, *rest = locale.split("-")
    return "-".join([head.lower(), *(p.upper() if len(p) == 2 else p for p in rest)])


def _channel(ctx: MappingContext, e: ChannelMessageEvent) -> Activity:
    return Activity(
        id=ctx.activity_id("channel", e.channel_id),
        definition=ActivityDefinition(type=ActivityTypes.CHAT_CHANNEL),
    )


def _team(ctx: MappingContext, e: ChannelMessageEvent) -> Activity:
    return Activity(id=ctx.activity_id("team", e.team_id))


def _message(
    ctx: MappingContext, channel_id: str, message_id: str, web_url: str | None = None
) -> Activity:
    return Activity(
        id=ctx.activity_id("message", f"{channel_id}/{message_id}"),
        definition=ActivityDefinition(type=ActivityTypes.ACROSSX_MESSAGE, more_info=web_url),
    )


def _text(options: MappingOptions, m: ChatMessage) -> Result | None:
    if not options.include_message_text or m.body is None or not m.body.content:
        return None
    text = m.body.content
    if (m.body.content_type or "").lower() == "html":
        text = plain_text(text)
    text = text.strip()
    return Result(response=text[: options.message_text_max_chars]) if text else None


def plain_text(content: str) -> str:
    """Graph's HTML message body as the text a reader sees: line breaks where paragraphs and
    <br> end, tags dropped, entities decoded (&amp; -> &, &nbsp; -> space), runs of spaces
    collapsed."""
    text = _TAGS.sub("", _BREAKS.sub("\n", content))
    text = html.unescape(text).replace("\xa0", " ")
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _agent(ctx: MappingContext, user_id: str, name: str | None) -> Agent:
    return ctx.agent(Person(source_user_id=user_id, name=name))


def _message_statements(
    e: ChannelMessageEvent, ctx: MappingContext, options: MappingOptions
) -> list[Statement]:
    m = e.message
    sender = m.from_
    if m.message_type in IGNORED_MESSAGE_TYPES or m.message_type != "message":
        return []
    if m.deleted_date_time or sender is None or sender.application is not None:
        return []
    if e.change_type == "deleted":
        return []
    user = sender.user
    lang = language(m.locale)
    out: list[Statement] = []
    parent_id = m.reply_to_id or e.reply_to_id
    if e.change_type in ("created", "delta") and user is not None and user.id:
        if parent_id:
            verb = Verbs.REPLIED
            activities = ContextActivities(
                parent=[_message(ctx, e.channel_id, parent_id)],
                grouping=[_channel(ctx, e), _team(ctx, e)],
            )
        else:
            verb = Verbs.POSTED
            activities = ContextActivities(parent=[_channel(ctx, e)], grouping=[_team(ctx, e)])
        out.append(
            ctx.statement(
                verb=verb,
                key=[("channel", e.channel_id), ("message", m.id)],
                actor=_agent(ctx, user.id, user.display_name),
                object_=_message(ctx, e.channel_id, m.id, m.web_url),
                timestamp=graph_time(m.created_date_time, "createdDateTime"),
                result=_text(options, m),
                context=Context(context_activities=activities, language=lang),
            )
        )
    for reaction in m.reactions:
        reactor = reaction.user.user if reaction.user is not None else None
        if reactor is None or not reactor.id:
            continue
        out.append(
            ctx.statement(
                verb=Verbs.LIKED,
                key=[("message", m.id), ("user", reactor.id), ("reaction", reaction.reaction_type)],
                actor=_agent(ctx, reactor.id, reactor.display_name),
                object_=_message(ctx, e.channel_id, m.id, m.web_url),
                timestamp=graph_time(reaction.created_date_time, "reactions.createdDateTime"),
                result=Result(response=reaction.reaction_type),
                context=Context(
                    context_activities=ContextActivities(
                        parent=[_channel(ctx, e)], grouping=[_team(ctx, e)]
                    ),
                    language=lang,
                ),
            )
        )
    return out


def _attendee(record: AttendanceRecord) -> tuple[str, Person] | None:
    identity = record.identity
    uid = identity.id if identity is not None and identity.id not in (None, *_REDACTED) else None
    email = (record.email_address or "").strip()
    email_ok = email if email not in _REDACTED and _EMAIL.match(email) else None
    name = identity.display_name if identity is not None else None
    if uid:
        return uid, Person(source_user_id=uid, email=email_ok, name=name)
    if email_ok:
        # No object id (external attendee): key on the email's SHA-1 so no raw email lands in
        # the natural key (it is copied into the lineage extension of every statement).
        digest = hashlib.sha1(f"mailto:{email_ok.lower()}".encode(), usedforsecurity=False)
        uid = f"{EMAIL_KEY_PREFIX}{digest.hexdigest()}"
        return uid, Person(source_user_id=uid, email=email_ok, name=name)
    return None


def _attendance_statements(
    e: AttendanceReportEvent, ctx: MappingContext, options: MappingOptions
) -> list[Statement]:
    report = e.report
    start = (
        parse_timestamp(report.meeting_start_date_time) if report.meeting_start_date_time else None
    )
    end = parse_timestamp(report.meeting_end_date_time) if report.meeting_end_date_time else None
    length = (end - start).total_seconds() if start and end and end > start else None
    meeting = Activity(
        id=ctx.activity_id("meeting", f"{e.meeting_id}/{report.id}"),
        definition=ActivityDefinition(
            type=ActivityTypes.MEETING, name={"en-US": e.subject} if e.subject else None
        ),
    )
    instructor = ctx.agent(Person(source_user_id=e.organizer_id))
    out: list[Statement] = []
    for record in report.attendance_records:
        who = _attendee(record)
        joins = [
            graph_time(i.join_date_time, "joinDateTime")
            for i in record.attendance_intervals
            if i.join_date_time
        ]
        if who is None or record.total_attendance_in_seconds is None:
            continue
        attendee_key, person = who
        seconds = record.total_attendance_in_seconds
        completion = (
            True
            if options.attendance_threshold is not None
            and length is not None
            and seconds >= options.attendance_threshold * length
            else None
        )
        extensions = {
            ctx.extension("msteams/role"): record.role,
            ctx.extension("msteams/interval-count"): len(record.attendance_intervals),
        }
        when = min(joins) if joins else start
        if when is None:
            continue
        out.append(
            ctx.statement(
                verb=Verbs.ATTENDED,
                key=[("meeting", e.meeting_id), ("report", report.id), ("attendee", attendee_key)],
                actor=ctx.agent(person),
                object_=meeting,
                timestamp=when,
                result=Result(duration=format_duration(seconds), completion=completion),
                context=Context(instructor=instructor, extensions=extensions),
            )
        )
    return out


def build_mapper(options: MappingOptions) -> StatementMapper:
    """The Teams mapper for one set of options (cached)."""
    return _build(options)


@lru_cache(maxsize=32)
def _build(options: MappingOptions) -> StatementMapper:
    mapper = StatementMapper()

    @mapper.on(ChannelMessageEvent)
    def channel_message(e: ChannelMessageEvent, ctx: MappingContext) -> Sequence[Statement]:
        return _message_statements(e, ctx, options)

    @mapper.on(AttendanceReportEvent)
    def attendance_report(e: AttendanceReportEvent, ctx: MappingContext) -> Sequence[Statement]:
        return _attendance_statements(e, ctx, options)

    return mapper
