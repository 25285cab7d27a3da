"""xAPI statements as a timeline a person can read: "Jamie completed "Onboarding" · score 92/100".

Works from the statements alone (plus optional labels for activities that carry no name, such as
chat channels), so it reads any LRS content, not only the demo's. It yields plain `TimelineRow`
values; the command decides colours and layout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["TimelineRow", "build_timeline", "format_duration", "statement_time"]

_VIDEO_EXT = "https://w3id.org/xapi/video/extensions/"
_MESSAGE = "/message"
_CHANNEL = "chat-channel"
_QUOTE_CHARS = 52

# Verbs that read better with a preposition before their object.
_PHRASES = {
    "registered": "registered for",
    "attended": "attended",
    "initialized": "opened",
    "terminated": "closed",
    "rated": "rated",
}


@dataclass(frozen=True)
class TimelineRow:
    """One statement, said in words."""

    when: datetime
    platform: str
    who: str
    text: str
    """What happened, after the actor's name: ``completed "Onboarding"``."""
    highlights: list[str] = field(default_factory=list)
    """Result figures worth a glance: score, duration, progress, a reaction."""
    quote: str | None = None
    """The message text, shortened and quoted, when the statement carries it."""
    actor: str = ""
    """The actor's IFI (``mailto:…``, ``sha1:…`` or ``account:{homePage}/{name}``)."""
    statement_id: str = ""


def statement_time(statement: Mapping[str, Any]) -> datetime:
    """The statement's timestamp (aware), falling back to `stored`."""
    raw = str(statement.get("timestamp") or statement.get("stored") or "")
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def actor_ifi(actor: Mapping[str, Any]) -> str:
    """One string naming the actor's inverse functional identifier."""
    if "mbox" in actor:
        return str(actor["mbox"])
    if "mbox_sha1sum" in actor:
        return f"sha1:{actor['mbox_sha1sum']}"
    account = actor.get("account")
    if isinstance(account, Mapping):
        return f"account:{account.get('homePage')}/{account.get('name')}"
    return str(actor.get("openid", "?"))


def _lang(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not value:
        return None
    for key in ("en-US", "en", "en-GB", "und"):
        if key in value:
            return str(value[key])
    return str(next(iter(value.values())))


def format_duration(iso: str) -> str:
    """``PT2H29M`` -> ``2h 29m``; ``PT45M`` -> ``45m``; ``PT15M51S`` -> ``15m 51s``."""
    match = re.fullmatch(
        r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>[\d.]+)S)?)?", iso
    )
    if match is None:
        return iso
    parts = [
        f"{float(value):g}{unit}"
        for unit, value in (
            ("d", match["d"]),
            ("h", match["h"]),
            ("m", match["m"]),
            ("s", match["s"]),
        )
        if value and float(value)
    ]
    return " ".join(parts) or "0s"


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _QUOTE_CHARS:
        flat = flat[: _QUOTE_CHARS - 1].rstrip() + "…"
    return f"“{flat}”"


class _Names:
    """Activity names: from the statements themselves (a name given once names the activity
    everywhere), then from the caller's labels (matched as IRI suffixes)."""

    def __init__(self, statements: Sequence[Mapping[str, Any]], labels: Mapping[str, str]):
        self._names: dict[str, str] = {}
        self._labels = labels
        for st in statements:
            obj = st.get("object", {})
            name = _lang(obj.get("definition", {}).get("name"))
            if name and "id" in obj:
                self._names.setdefault(str(obj["id"]), name)

    def get(self, activity_id: str) -> str | None:
        if activity_id in self._names:
            return self._names[activity_id]
        for suffix, label in self._labels.items():
            if activity_id.endswith(suffix):
                return label
        return None


def _channel(statement: Mapping[str, Any], names: _Names) -> str | None:
    activities = statement.get("context", {}).get("contextActivities", {})
    for kind in ("parent", "grouping"):
        for activity in activities.get(kind, []):
            if str(activity.get("definition", {}).get("type", "")).endswith(_CHANNEL):
                return names.get(str(activity.get("id", "")))
    return None


def _who(actor: Mapping[str, Any], people: Mapping[str, str]) -> str:
    ifi = actor_ifi(actor)
    if ifi in people:
        return people[ifi]
    if actor.get("name"):
        return str(actor["name"])
    return ifi.removeprefix("mailto:")


def _highlights(statement: Mapping[str, Any], verb: str, people: Mapping[str, str]) -> list[str]:
    result = statement.get("result", {})
    out: list[str] = []
    score = result.get("score", {})
    if "raw" in score and "max" in score:
        out.append(f"{score['raw']:g}/{score['max']:g}" + ("" if verb == "rated" else " score"))
    elif "scaled" in score:
        out.append(f"score {score['scaled']:.0%}")
    ext = result.get("extensions", {})
    progress = ext.get(_VIDEO_EXT + "progress")
    position = ext.get(_VIDEO_EXT + "time")
    if verb in {"played", "paused", "seeked"} and isinstance(position, int | float):
        out.append(f"at {_clock(position)}")
    if isinstance(progress, int | float) and verb != "played":
        out.append(f"{progress:.0%} watched")
    if result.get("duration"):
        label = "time spent " if verb == "completed" else ""
        out.append(label + format_duration(str(result["duration"])))
    instructor = statement.get("context", {}).get("instructor")
    if isinstance(instructor, Mapping):
        out.append(f"coach {_who(instructor, people)}")
    response = result.get("response")
    if verb == "liked" and isinstance(response, str) and response:
        out.append(f":{response}:")  # the reaction's name
    return out


def build_timeline(
    statements: Sequence[Mapping[str, Any]],
    *,
    people: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[TimelineRow]:
    """Rows in timestamp order (statements with equal timestamps keep their given order).

    Args:
        statements: xAPI statements (as stored by an LRS).
        people: IFI -> the short name to use (``{"mailto:jamie@example.com": "Jamie"}``).
        labels: activity IRI suffix -> name, for activities the statements do not name.
    """
    people = people or {}
    names = _Names(statements, labels or {})
    ordered = sorted(enumerate(statements), key=lambda pair: (statement_time(pair[1]), pair[0]))
    rows: list[TimelineRow] = []
    previous_object: str | None = None
    for _, st in ordered:
        verb_id = str(st.get("verb", {}).get("id", ""))
        verb = _lang(st.get("verb", {}).get("display")) or verb_id.rstrip("/").rsplit("/", 1)[-1]
        obj = st.get("object", {})
        object_id = str(obj.get("id", ""))
        object_type = str(obj.get("definition", {}).get("type", ""))
        phrase = _PHRASES.get(verb, verb)
        if object_type.endswith(_MESSAGE):
            channel = _channel(st, names)
            where = f" in {channel}" if channel else ""
            text = {
                "posted": f"posted{where}",
                "replied": f"replied{where}",
                "liked": f"reacted to a reply{where}",
            }.get(verb, f"{phrase} a message{where}")
        else:
            name = names.get(object_id)
            if object_id == previous_object:
                target = "it"
            elif name:
                target = f"“{name}”"
            else:
                target = object_id.rstrip("/").rsplit("/", 1)[-1]
            text = f"{phrase} {target}"
        previous_object = object_id
        actor = st.get("actor", {})
        response = st.get("result", {}).get("response")
        quoted = _quote(response) if isinstance(response, str) and response else None
        rows.append(
            TimelineRow(
                when=statement_time(st),
                platform=str(st.get("context", {}).get("platform", "")),
                who=_who(actor, people),
                text=text,
                highlights=_highlights(st, verb, people),
                quote=None if verb == "liked" else quoted,
                actor=actor_ifi(actor),
                statement_id=str(st.get("id", "")),
            )
        )
    return rows
