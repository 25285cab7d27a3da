"""Slack events -> xAPI statements (vendors.md 6.8). Pure functions: no I/O, no globals.

=====================================  ========  ==============================================
Slack event                            verb      natural key (after ``slack|{team}|{verb}``)
=====================================  ========  ==============================================
message (no noise subtype, no bot)     posted    ``channel, ts``
message with thread_ts != ts           replied   ``channel, ts``
reaction_added on a message            liked     ``channel, ts, user, reaction``
app_mention ending with ``?``          asked     ``channel, ts``
member_joined_channel                  join      ``channel, user, event_time``
=====================================  ========  ==============================================

Noise gives no statement: bot messages (``bot_id``/``bot_message``), edits
(``message_changed``), deletions, ``channel_join``/``channel_leave`` (``member_joined_channel``
is used instead) and every other subtype except ``thread_broadcast``, ``file_share`` and
``me_message``; messages of users from other organizations when `skip_external_users`; a
mention that is not a question (its ``message`` event already gave ``posted``).

The options that change the output (message text, mentions, external users) come from the
instance settings through `MappingOptions`; `build_mapper(options)` returns a cached mapper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from connectors.slack.models import (
    AppMentionPayload,
    MemberJoinedPayload,
    MessagePayload,
    ReactionAddedPayload,
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
    key_time,
    parse_timestamp,
)

__all__ = ["CONTENT_SUBTYPES", "MappingOptions", "build_mapper", "slack_time"]

CONTENT_SUBTYPES: frozenset[str | None] = frozenset(
    {None, "thread_broadcast", "file_share", "me_message"}
)
"""Message subtypes that are still a person writing (vendors.md 6.4); all others are noise."""


@dataclass(frozen=True)
class MappingOptions:
    """The instance settings that change statements."""

    include_message_text: bool = False
    message_text_max_chars: int = 1000
    mentions_as_questions: bool = True
    skip_external_users: bool = True


def slack_time(ts: str) -> datetime:
    """A Slack ``ts`` (``"1595926230.009600"``) as UTC, split on ``.`` (no float math)."""
    head, dot, tail = ts.partition(".")
    if not head.isdigit() or (dot and not tail.isdigit()):
        raise MappingError(f"not a Slack ts: {ts!r}")
    when = parse_timestamp(ts)
    if when is None:  # pragma: no cover - digits always parse
        raise MappingError(f"not a Slack ts: {ts!r}")
    return when


def _workspace(ctx: MappingContext, team: str) -> Activity:
    return Activity(id=ctx.activity_id("workspace", team))


def _channel(ctx: MappingContext, channel: str) -> Activity:
    return Activity(
        id=ctx.activity_id("channel", channel),
        definition=ActivityDefinition(type=ActivityTypes.CHAT_CHANNEL),
    )


def _message(ctx: MappingContext, channel: str, ts: str) -> Activity:
    return Activity(
        id=ctx.activity_id("message", f"{channel}/{ts}"),
        definition=ActivityDefinition(type=ActivityTypes.ACROSSX_MESSAGE),
    )


def _actor(ctx: MappingContext, user: str) -> Agent:
    return ctx.agent(Person(source_user_id=user))


def _text(options: MappingOptions, text: str | None) -> Result | None:
    if not options.include_message_text or not text:
        return None
    return Result(response=text[: options.message_text_max_chars])


def _external(options: MappingOptions, ctx: MappingContext, team: str | None) -> bool:
    return options.skip_external_users and team is not None and team.lower() != ctx.tenant


def build_mapper(options: MappingOptions) -> StatementMapper:
    """The Slack mapper for one set of options (cached: one mapper per distinct options)."""
    return _build(options)


@lru_cache(maxsize=32)
def _build(options: MappingOptions) -> StatementMapper:
    mapper = StatementMapper()

    @mapper.on(MessagePayload)
    def message(p: MessagePayload, ctx: MappingContext) -> Sequence[Statement]:
        e = p.event
        if e.subtype not in CONTENT_SUBTYPES or e.bot_id or not e.user:
            return []
        if _external(options, ctx, e.team):
            return []
        workspace = _workspace(ctx, p.team_id)
        channel = _channel(ctx, e.channel)
        reply = e.thread_ts is not None and e.thread_ts != e.ts
        if reply:
            assert e.thread_ts is not None  # noqa: S101 - narrowed by `reply`
            verb = Verbs.REPLIED
            activities = ContextActivities(
                parent=[_message(ctx, e.channel, e.thread_ts)], grouping=[channel, workspace]
            )
        else:
            verb = Verbs.POSTED
            activities = ContextActivities(parent=[channel], grouping=[workspace])
        return [
            ctx.statement(
                verb=verb,
                key=[("channel", e.channel), ("ts", e.ts)],
                actor=_actor(ctx, e.user),
                object_=_message(ctx, e.channel, e.ts),
                timestamp=slack_time(e.ts),
                result=_text(options, e.text),
                context=Context(context_activities=activities),
            )
        ]

    @mapper.on(AppMentionPayload)
    def app_mention(p: AppMentionPayload, ctx: MappingContext) -> Sequence[Statement]:
        e = p.event
        question = (e.text or "").rstrip().endswith("?")
        if not (options.mentions_as_questions and question) or e.bot_id or not e.user:
            return []
        if _external(options, ctx, e.team):
            return []
        parent = (
            _message(ctx, e.channel, e.thread_ts)
            if e.thread_ts and e.thread_ts != e.ts
            else _channel(ctx, e.channel)
        )
        grouping = [_workspace(ctx, p.team_id)]
        if parent.id != _channel(ctx, e.channel).id:
            grouping.insert(0, _channel(ctx, e.channel))
        return [
            ctx.statement(
                verb=Verbs.ASKED,
                key=[("channel", e.channel), ("ts", e.ts)],
                actor=_actor(ctx, e.user),
                object_=_message(ctx, e.channel, e.ts),
                timestamp=slack_time(e.ts),
                result=_text(options, e.text),
                context=Context(
                    context_activities=ContextActivities(parent=[parent], grouping=grouping)
                ),
            )
        ]

    @mapper.on(ReactionAddedPayload)
    def reaction_added(p: ReactionAddedPayload, ctx: MappingContext) -> Sequence[Statement]:
        e = p.event
        item = e.item
        if item.type != "message" or not item.channel or not item.ts:
            return []
        extensions = {ctx.extension("slack/item-user"): e.item_user} if e.item_user else None
        return [
            ctx.statement(
                verb=Verbs.LIKED,
                key=[
                    ("channel", item.channel),
                    ("ts", item.ts),
                    ("user", e.user),
                    ("reaction", e.reaction),
                ],
                actor=_actor(ctx, e.user),
                object_=_message(ctx, item.channel, item.ts),
                timestamp=slack_time(e.event_ts),
                result=Result(response=e.reaction),
                context=Context(
                    context_activities=ContextActivities(
                        parent=[_channel(ctx, item.channel)],
                        grouping=[_workspace(ctx, p.team_id)],
                    ),
                    extensions=extensions,
                ),
            )
        ]

    @mapper.on(MemberJoinedPayload)
    def member_joined(p: MemberJoinedPayload, ctx: MappingContext) -> Sequence[Statement]:
        e = p.event
        when = parse_timestamp(p.event_time)
        assert when is not None  # noqa: S101 - an int always parses
        extensions = {ctx.extension("slack/inviter"): e.inviter} if e.inviter else None
        return [
            ctx.statement(
                verb=Verbs.JOINED,
                verb_key="join",
                key=[("channel", e.channel), ("user", e.user), ("event_time", key_time(when))],
                actor=_actor(ctx, e.user),
                object_=_channel(ctx, e.channel),
                timestamp=when,
                context=Context(
                    context_activities=ContextActivities(grouping=[_workspace(ctx, p.team_id)]),
                    extensions=extensions,
                ),
            )
        ]

    return mapper
