"""Video Profile statements from session facts (vendors.md 4.5, 4.6). Pure functions.

The statement ids follow the natural keys of vendors.md 4.6 / 8.2:

* ``youtube|{tenant}|initialized|session={session_id}`` (this id IS the ``session-id``)
* ``youtube|{tenant}|{played,paused,seeked,interacted}|session=...|seq={seq}``
* ``youtube|{tenant}|{completed,terminated}|session=...`` (at most once per session)
* registration: ``youtube|{tenant}|registration|user={sub}|video={video_id}``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import JsonValue

from connectors.youtube.models import Learner, VideoMeta
from connectors.youtube.session import Fact, SessionState
from hub import MappingContext, Person
from hub.xapi import (
    Account,
    Activity,
    ActivityDefinition,
    ActivityTypes,
    Agent,
    Categories,
    Context,
    ContextActivities,
    Result,
    Statement,
    VerbDef,
    Verbs,
    format_duration,
)

__all__ = [
    "PROFILE_TYPE",
    "VIDEO_EXT",
    "VideoFacts",
    "build_statements",
    "posted_statement",
    "registration_id",
    "session_statement_id",
    "watch_url",
]

VIDEO_EXT = "https://w3id.org/xapi/video/extensions/"
PROFILE_TYPE = "http://adlnet.gov/expapi/activities/profile"
MAX_DESCRIPTION = 500
"""Longest description copied into activity definitions (every statement carries it)."""

_VERBS: dict[str, VerbDef] = {
    "initialized": Verbs.INITIALIZED,
    "played": Verbs.PLAYED,
    "paused": Verbs.PAUSED,
    "seeked": Verbs.SEEKED,
    "completed": Verbs.COMPLETED,
    "terminated": Verbs.TERMINATED,
    "interacted": Verbs.INTERACTED,
}
_PER_SEQ = frozenset({"played", "paused", "seeked", "interacted"})
_WITH_LENGTH = frozenset({"initialized", "paused", "completed", "terminated"})
_WITH_SNAPSHOT = frozenset({"paused", "completed", "terminated"})


def watch_url(video_id: str) -> str:
    """The canonical activity id of a video (vendors.md 1.6)."""
    return f"https://www.youtube.com/watch?v={video_id}"


def channel_url(channel_id: str) -> str:
    return f"https://www.youtube.com/channel/{channel_id}"


def session_statement_id(ctx: MappingContext, session_id: str) -> str:
    """The `initialized` statement id, which is also the session's ``session-id``."""
    return str(ctx.statement_id(Verbs.INITIALIZED.key, [("session", session_id)]))


def registration_id(ctx: MappingContext, *, sub: str, video_id: str) -> UUID:
    """``context.registration``: one per learner and video, shared by all their sessions."""
    return ctx.statement_id("registration", [("user", sub), ("video", video_id)])


@dataclass(frozen=True)
class VideoFacts:
    """What a statement says about the video and the session besides the fact itself."""

    session: SessionState
    learner: Learner
    meta: VideoMeta | None
    threshold: float
    registration_wall_seconds: float


def _activity(video_id: str, meta: VideoMeta | None, page_url: str | None) -> Activity:
    lang = (meta.language if meta else None) or "und"
    extensions: dict[str, JsonValue] | None = None
    if meta and meta.channel_id:
        extensions = {"https://w3id.org/xapi/video/extensions/youtube/channel-id": meta.channel_id}
    description = None
    if meta and meta.description:
        text = meta.description.strip()
        if text:
            cut = text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "\u2026"
            description = {lang: cut}
    return Activity(
        object_type="Activity",
        id=watch_url(video_id),
        definition=ActivityDefinition(
            type=ActivityTypes.VIDEO,
            name={lang: meta.title} if meta and meta.title else None,
            description=description,
            more_info=page_url,
            extensions=extensions,
        ),
    )


def _context_activities(page_url: str | None, meta: VideoMeta | None) -> ContextActivities:
    category = Activity(
        id=Categories.VIDEO_PROFILE, definition=ActivityDefinition(type=PROFILE_TYPE)
    )
    return ContextActivities(
        category=[category],
        parent=[Activity(id=page_url)] if page_url else None,
        grouping=[Activity(id=channel_url(meta.channel_id))] if meta and meta.channel_id else None,
    )


def build_statements(
    ctx: MappingContext, facts: Sequence[Fact], video: VideoFacts
) -> list[Statement]:
    """One statement per fact, in order."""
    s = video.session
    actor = ctx.agent(
        Person(source_user_id=video.learner.sub, email=video.learner.email, name=video.learner.name)
    )
    session_sid = session_statement_id(ctx, s.session_id)
    registration = registration_id(ctx, sub=s.sub, video_id=s.video_id)
    obj = _activity(s.video_id, video.meta, s.page_url)
    cas = _context_activities(s.page_url, video.meta)
    language = video.meta.language if video.meta else None
    out: list[Statement] = []
    for fact in facts:
        verb = _VERBS[fact.kind]
        key: list[tuple[str, str]] = [("session", s.session_id)]
        if fact.kind in _PER_SEQ:
            key.append(("seq", str(fact.seq)))
        result_ext: dict[str, JsonValue] = {}
        ctx_ext: dict[str, JsonValue] = {VIDEO_EXT + "session-id": session_sid}
        if fact.kind == "seeked":
            result_ext[VIDEO_EXT + "time-from"] = fact.time_from
            result_ext[VIDEO_EXT + "time-to"] = fact.time_to
        elif fact.time is not None:
            result_ext[VIDEO_EXT + "time"] = fact.time
        if fact.kind in _WITH_SNAPSHOT:
            if fact.progress is not None:
                result_ext[VIDEO_EXT + "progress"] = fact.progress
            result_ext[VIDEO_EXT + "played-segments"] = fact.segments or ""
        if fact.kind in _WITH_LENGTH:
            if fact.length is not None:
                ctx_ext[VIDEO_EXT + "length"] = round(float(fact.length), 3)
            if video.threshold != 1.0:
                ctx_ext[VIDEO_EXT + "completion-threshold"] = video.threshold
        if fact.kind == "initialized":
            if s.user_agent:
                ctx_ext[VIDEO_EXT + "user-agent"] = s.user_agent
            if s.screen_size:
                ctx_ext[VIDEO_EXT + "screen-size"] = s.screen_size
        for name, value in fact.changed.items():
            ctx_ext[VIDEO_EXT + name] = value
        if fact.inferred:
            ctx_ext[ctx.extension("timestamp-inferred")] = True
        result = None
        if fact.kind == "completed":
            result = Result(
                completion=True,
                duration=format_duration(round(video.registration_wall_seconds, 2)),
                extensions=result_ext,
            )
        elif result_ext:
            result = Result(extensions=result_ext)
        context = Context(
            registration=registration,
            context_activities=cas,
            language=language,
            extensions=ctx_ext,
        )
        out.append(
            ctx.statement(
                verb=verb,
                key=key,
                actor=actor,
                object_=obj,
                timestamp=fact.at,
                result=result,
                context=context,
            )  # fmt: skip
        )
    return out


def posted_statement(
    ctx: MappingContext, *, video_id: str, channel_id: str, published: datetime
) -> Statement:
    """The optional "a video was published" statement: the channel posted the video.

    Only immutable facts go in (no title: edits re-notify and must not change the statement).
    """
    actor = Agent(
        object_type="Agent",
        account=Account(home_page="https://www.youtube.com", name=channel_id),
    )
    obj = Activity(
        object_type="Activity",
        id=watch_url(video_id),
        definition=ActivityDefinition(type=ActivityTypes.VIDEO),
    )
    context = Context(
        context_activities=ContextActivities(grouping=[Activity(id=channel_url(channel_id))])
    )
    return ctx.statement(
        verb=Verbs.POSTED, key=[("video", video_id)], actor=actor, object_=obj,
        timestamp=published, context=context,
    )  # fmt: skip
