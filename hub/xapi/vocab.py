"""Verb, activity-type and profile-category IRIs the hub uses (vendors.md section 1.3).

Prefer these established IRIs over inventing new ones. ``VerbDef.key`` is the short stable
token used in natural keys (never the IRI, so an IRI can change without re-keying history).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from hub.xapi.models import Activity, Verb

__all__ = ["ActivityTypes", "Categories", "VerbDef", "Verbs"]


@dataclass(frozen=True, slots=True)
class VerbDef:
    """A verb the hub emits: natural-key token, IRI and English display text."""

    key: str
    iri: str
    display: str

    def verb(self, lang: str = "en-US") -> Verb:
        """The xAPI Verb object with ``display`` in ``lang`` (one shared frozen instance)."""
        return _verb(self.iri, self.display, lang)

    def verb_json(self, lang: str = "en-US") -> dict[str, Any]:
        """The same Verb as xAPI JSON (one shared dict: read-only, see `StatementJson`)."""
        return _verb_json(self.iri, self.display, lang)


@lru_cache(maxsize=1024)
def _verb(iri: str, display: str, lang: str) -> Verb:
    return Verb(id=iri, display={lang: display})


@lru_cache(maxsize=1024)
def _verb_json(iri: str, display: str, lang: str) -> dict[str, Any]:
    return {"id": iri, "display": {lang: display}}


class Verbs:
    """Every verb of vendors.md 1.3."""

    REGISTERED: ClassVar[VerbDef] = VerbDef(
        "registered", "http://adlnet.gov/expapi/verbs/registered", "registered"
    )
    UNREGISTERED: ClassVar[VerbDef] = VerbDef(
        "unregistered", "http://id.tincanapi.com/verb/unregistered", "unregistered"
    )
    ASSIGNED: ClassVar[VerbDef] = VerbDef(
        "assigned", "http://activitystrea.ms/schema/1.0/assign", "assigned"
    )
    COMPLETED: ClassVar[VerbDef] = VerbDef(
        "completed", "http://adlnet.gov/expapi/verbs/completed", "completed"
    )
    PROGRESSED: ClassVar[VerbDef] = VerbDef(
        "progressed", "http://adlnet.gov/expapi/verbs/progressed", "progressed"
    )
    PASSED: ClassVar[VerbDef] = VerbDef("passed", "http://adlnet.gov/expapi/verbs/passed", "passed")
    FAILED: ClassVar[VerbDef] = VerbDef("failed", "http://adlnet.gov/expapi/verbs/failed", "failed")
    ATTENDED: ClassVar[VerbDef] = VerbDef(
        "attended", "http://adlnet.gov/expapi/verbs/attended", "attended"
    )
    INITIALIZED: ClassVar[VerbDef] = VerbDef(
        "initialized", "http://adlnet.gov/expapi/verbs/initialized", "initialized"
    )
    TERMINATED: ClassVar[VerbDef] = VerbDef(
        "terminated", "http://adlnet.gov/expapi/verbs/terminated", "terminated"
    )
    INTERACTED: ClassVar[VerbDef] = VerbDef(
        "interacted", "http://adlnet.gov/expapi/verbs/interacted", "interacted"
    )
    ASKED: ClassVar[VerbDef] = VerbDef("asked", "http://adlnet.gov/expapi/verbs/asked", "asked")
    ANSWERED: ClassVar[VerbDef] = VerbDef(
        "answered", "http://adlnet.gov/expapi/verbs/answered", "answered"
    )
    COMMENTED: ClassVar[VerbDef] = VerbDef(
        "commented", "http://adlnet.gov/expapi/verbs/commented", "commented"
    )
    PLAYED: ClassVar[VerbDef] = VerbDef(
        "played", "https://w3id.org/xapi/video/verbs/played", "played"
    )
    PAUSED: ClassVar[VerbDef] = VerbDef(
        "paused", "https://w3id.org/xapi/video/verbs/paused", "paused"
    )
    SEEKED: ClassVar[VerbDef] = VerbDef(
        "seeked", "https://w3id.org/xapi/video/verbs/seeked", "seeked"
    )
    POSTED: ClassVar[VerbDef] = VerbDef(
        "posted", "https://w3id.org/xapi/acrossx/verbs/posted", "posted"
    )
    LIKED: ClassVar[VerbDef] = VerbDef(
        "liked", "https://w3id.org/xapi/acrossx/verbs/liked", "liked"
    )
    LIKED_AS1: ClassVar[VerbDef] = VerbDef(
        "liked", "http://activitystrea.ms/schema/1.0/like", "liked"
    )
    """Activity Streams alternative to acrossx ``liked`` (same natural-key token)."""
    REPLIED: ClassVar[VerbDef] = VerbDef(
        "replied", "http://id.tincanapi.com/verb/replied", "replied"
    )
    JOINED: ClassVar[VerbDef] = VerbDef(
        "joined", "http://activitystrea.ms/schema/1.0/join", "joined"
    )
    LEFT: ClassVar[VerbDef] = VerbDef("left", "http://activitystrea.ms/schema/1.0/leave", "left")
    JOINED_VIRTUAL_CLASSROOM: ClassVar[VerbDef] = VerbDef(
        "joined", "http://activitystrea.ms/join", "joined"
    )
    """Virtual Classroom profile form (no ``/schema/1.0/``); use only when claiming it."""
    LEFT_VIRTUAL_CLASSROOM: ClassVar[VerbDef] = VerbDef(
        "left", "http://activitystrea.ms/leave", "left"
    )
    """Virtual Classroom profile form (no ``/schema/1.0/``); use only when claiming it."""
    CREATED: ClassVar[VerbDef] = VerbDef(
        "created", "http://activitystrea.ms/schema/1.0/create", "created"
    )
    RECEIVED: ClassVar[VerbDef] = VerbDef(
        "received", "http://activitystrea.ms/schema/1.0/receive", "received"
    )
    MENTORED: ClassVar[VerbDef] = VerbDef(
        "mentored", "http://id.tincanapi.com/verb/mentored", "mentored"
    )
    REVIEWED: ClassVar[VerbDef] = VerbDef(
        "reviewed", "http://id.tincanapi.com/verb/reviewed", "reviewed"
    )
    RATED: ClassVar[VerbDef] = VerbDef("rated", "http://id.tincanapi.com/verb/rated", "rated")
    VOIDED: ClassVar[VerbDef] = VerbDef("voided", "http://adlnet.gov/expapi/verbs/voided", "voided")

    @classmethod
    def all(cls) -> tuple[VerbDef, ...]:
        """Every VerbDef constant, in declaration order."""
        return tuple(value for value in vars(cls).values() if isinstance(value, VerbDef))

    @classmethod
    def by_iri(cls, iri: str) -> VerbDef | None:
        """The VerbDef with this IRI, if the hub knows it."""
        return next((verb for verb in cls.all() if verb.iri == iri), None)


class ActivityTypes:
    """Activity type IRIs of vendors.md 1.3."""

    COURSE: ClassVar[str] = "http://adlnet.gov/expapi/activities/course"
    MEETING: ClassVar[str] = "http://adlnet.gov/expapi/activities/meeting"
    ASSESSMENT: ClassVar[str] = "http://adlnet.gov/expapi/activities/assessment"
    MEDIA: ClassVar[str] = "http://adlnet.gov/expapi/activities/media"
    VIDEO: ClassVar[str] = "https://w3id.org/xapi/video/activity-type/video"
    CHAT_MESSAGE: ClassVar[str] = "http://id.tincanapi.com/activitytype/chat-message"
    ACROSSX_MESSAGE: ClassVar[str] = "https://w3id.org/xapi/acrossx/activities/message"
    """Use instead of CHAT_MESSAGE when the verb is acrossx ``posted``."""
    CHAT_CHANNEL: ClassVar[str] = "http://id.tincanapi.com/activitytype/chat-channel"
    DISCUSSION: ClassVar[str] = "https://w3id.org/xapi/acrossx/activities/discussion"
    GOAL: ClassVar[str] = "http://id.tincanapi.com/activitytype/goal"
    TUTOR_SESSION: ClassVar[str] = "http://id.tincanapi.com/activitytype/tutor-session"
    VIRTUAL_CLASSROOM: ClassVar[str] = (
        "https://w3id.org/xapi/virtual-classroom/activity-types/virtual-classroom"
    )
    ACROSSX_LEARNING_PLAN: ClassVar[str] = "https://w3id.org/xapi/acrossx/activities/learning-plan"
    """Unconfirmed [U]: prefer :meth:`learning_plan` until this IRI is confirmed published."""

    @staticmethod
    def learning_plan(base_iri: str) -> str:
        """Hub-defined learning-plan type ``{XAPI_IRI_BASE}/activity-types/learning-plan``."""
        return base_iri.rstrip("/") + "/activity-types/learning-plan"


class Categories:
    """Profile categories for ``context.contextActivities.category``.

    Add one only when the statement really conforms to that profile. Never add the cmi5
    category to statements derived from LMS records.
    """

    VIDEO_PROFILE: ClassVar[str] = "https://w3id.org/xapi/video"
    VIRTUAL_CLASSROOM: ClassVar[str] = "https://w3id.org/xapi/virtual-classroom"

    @staticmethod
    def activity(iri: str) -> Activity:
        """A category Activity for ``iri`` (objectType set explicitly)."""
        return Activity(object_type="Activity", id=iri)
