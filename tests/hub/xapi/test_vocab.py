"""Vocabulary constants match vendors.md section 1.3."""

from __future__ import annotations

import re

from hub.xapi import ActivityTypes, Categories, Verbs

BASE = "https://lrs-hub.example.com/xapi"

SECTION_1_3_VERBS = {
    "http://adlnet.gov/expapi/verbs/registered",
    "http://id.tincanapi.com/verb/unregistered",
    "http://activitystrea.ms/schema/1.0/assign",
    "http://adlnet.gov/expapi/verbs/completed",
    "http://adlnet.gov/expapi/verbs/progressed",
    "http://adlnet.gov/expapi/verbs/passed",
    "http://adlnet.gov/expapi/verbs/failed",
    "http://adlnet.gov/expapi/verbs/attended",
    "http://adlnet.gov/expapi/verbs/initialized",
    "http://adlnet.gov/expapi/verbs/terminated",
    "http://adlnet.gov/expapi/verbs/interacted",
    "http://adlnet.gov/expapi/verbs/asked",
    "http://adlnet.gov/expapi/verbs/answered",
    "http://adlnet.gov/expapi/verbs/commented",
    "https://w3id.org/xapi/video/verbs/played",
    "https://w3id.org/xapi/video/verbs/paused",
    "https://w3id.org/xapi/video/verbs/seeked",
    "https://w3id.org/xapi/acrossx/verbs/posted",
    "https://w3id.org/xapi/acrossx/verbs/liked",
    "http://activitystrea.ms/schema/1.0/like",
    "http://id.tincanapi.com/verb/replied",
    "http://activitystrea.ms/schema/1.0/join",
    "http://activitystrea.ms/schema/1.0/leave",
    "http://activitystrea.ms/join",
    "http://activitystrea.ms/leave",
    "http://activitystrea.ms/schema/1.0/create",
    "http://activitystrea.ms/schema/1.0/receive",
    "http://id.tincanapi.com/verb/mentored",
    "http://id.tincanapi.com/verb/reviewed",
    "http://id.tincanapi.com/verb/rated",
    "http://adlnet.gov/expapi/verbs/voided",
}

SECTION_1_3_TYPES = {
    "http://adlnet.gov/expapi/activities/course",
    "http://adlnet.gov/expapi/activities/meeting",
    "http://adlnet.gov/expapi/activities/assessment",
    "http://adlnet.gov/expapi/activities/media",
    "https://w3id.org/xapi/video/activity-type/video",
    "http://id.tincanapi.com/activitytype/chat-message",
    "https://w3id.org/xapi/acrossx/activities/message",
    "http://id.tincanapi.com/activitytype/chat-channel",
    "https://w3id.org/xapi/acrossx/activities/discussion",
    "http://id.tincanapi.com/activitytype/goal",
    "http://id.tincanapi.com/activitytype/tutor-session",
    "https://w3id.org/xapi/virtual-classroom/activity-types/virtual-classroom",
    "https://w3id.org/xapi/acrossx/activities/learning-plan",
}


def test_activity_types_cover_section_1_3() -> None:
    declared = {
        value
        for name, value in vars(ActivityTypes).items()
        if name.isupper() and isinstance(value, str)
    }
    assert declared == SECTION_1_3_TYPES


def test_verb_keys_are_short_tokens() -> None:
    for verb in Verbs.all():
        assert re.fullmatch("[a-z]+", verb.key), verb


def test_vocab_constants() -> None:
    assert Verbs.COMPLETED.iri == "http://adlnet.gov/expapi/verbs/completed"
    assert Verbs.COMPLETED.verb().to_json() == {
        "id": "http://adlnet.gov/expapi/verbs/completed",
        "display": {"en-US": "completed"},
    }
    assert Verbs.PLAYED.verb("en").display == {"en": "played"}
    assert Verbs.JOINED_VIRTUAL_CLASSROOM.iri == "http://activitystrea.ms/join"
    assert Verbs.by_iri("http://id.tincanapi.com/verb/unregistered") is Verbs.UNREGISTERED
    assert {verb.iri for verb in Verbs.all()} == SECTION_1_3_VERBS
    assert all(verb.iri.startswith(("http://", "https://")) for verb in Verbs.all())
    assert ActivityTypes.VIDEO == "https://w3id.org/xapi/video/activity-type/video"
    assert ActivityTypes.learning_plan(BASE + "/") == f"{BASE}/activity-types/learning-plan"
    assert Categories.VIDEO_PROFILE == "https://w3id.org/xapi/video"
    assert Categories.activity(Categories.VIDEO_PROFILE).to_json() == {
        "objectType": "Activity",
        "id": "https://w3id.org/xapi/video",
    }
