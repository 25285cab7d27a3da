"""Producer-side validation of xAPI statements (xapi.md sections 2 and 4).

:func:`validate_statement` checks the raw JSON-like data the hub would send and reports *every*
problem, each with a JSON path (``$.context.contextActivities.parent[0].id``) and a short rule
code from :class:`Rule`. :func:`ensure_valid` raises :class:`StatementInvalid` instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal, TypeGuard, cast

from hub.xapi.models import IFI_KEYS, Statement
from hub.xapi.statement_json import StatementJson
from hub.xapi.timefmt import is_iso_duration, parse_strict_rfc3339

__all__ = [
    "CLOCK_SKEW",
    "Rule",
    "StatementInvalid",
    "ValidationIssue",
    "XapiVersion",
    "ensure_valid",
    "validate_statement",
]

XapiVersion = Literal["1.0.3", "2.0.0"]

CLOCK_SKEW = timedelta(minutes=5)
"""Tolerance for source clocks that run ahead of ours before a timestamp counts as future."""

VOIDED_VERB = "http://adlnet.gov/expapi/verbs/voided"


class Rule(StrEnum):
    """Short, stable rule codes carried by :class:`ValidationIssue`."""

    REQUIRED = "required"
    UNKNOWN_KEY = "unknown-key"
    NULL = "null"
    TYPE = "type"
    EMPTY_OBJECT = "empty-object"
    IRI = "iri"
    MBOX = "mbox"
    MBOX_SHA1SUM = "mbox-sha1sum"
    IFI = "ifi"
    GROUP_ANONYMOUS = "group-anonymous-member"
    GROUP_MEMBER = "group-member"
    OBJECT_TYPE = "object-type"
    UUID = "uuid"
    LANGUAGE_TAG = "language-tag"
    SCORE_SCALED = "score-scaled"
    SCORE_MIN_MAX = "score-min-max"
    SCORE_RAW = "score-raw"
    DURATION = "duration"
    TIMESTAMP = "timestamp"
    TIMESTAMP_ZONE = "timestamp-zone"
    TIMESTAMP_FUTURE = "timestamp-future"
    CONTEXT_ACTIVITY_ONLY = "context-activity-only"
    CONTEXT_ACTIVITIES_ARRAY = "context-activities-array"
    INTERACTION = "interaction"
    SUBSTATEMENT_PROPERTY = "substatement-property"
    SUBSTATEMENT_NESTED = "substatement-nested"
    LRS_ONLY = "lrs-only"
    VERSION = "version"
    VERSION_2_ONLY = "version-2-only"
    RELEVANT_TYPES = "relevant-types"
    SHA2 = "sha2"
    CONTENT_TYPE = "content-type"
    VOIDING_OBJECT = "voiding-object"
    HUB_REQUIRED = "hub-required"


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One problem: where (JSON path), which rule, and a readable message."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: [{self.rule}] {self.message}"


class StatementInvalid(Exception):  # noqa: N818 - public name fixed by the brief
    """Raised by :func:`ensure_valid` (and serialisation); carries every issue found."""

    def __init__(self, issues: Sequence[ValidationIssue]) -> None:
        self.issues: tuple[ValidationIssue, ...] = tuple(issues)
        shown = "; ".join(str(issue) for issue in self.issues[:10])
        more = f"; ... and {len(self.issues) - 10} more" if len(self.issues) > 10 else ""
        super().__init__(f"invalid xAPI statement ({len(self.issues)} issue(s)): {shown}{more}")


# --- syntax ---------------------------------------------------------------------------------

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_MBOX = re.compile(r"^mailto:[^@\s:/<>]+@[^@\s/<>.][^@\s/<>]*$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_SHA2 = re.compile(r"^(?:[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128})$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
_CONTENT_TYPE = re.compile(r"^[\w!#$&^.+\-]+/[\w!#$&^.+\-]+(?:\s*;.*)?$")
_TIMESTAMP = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d+))?(?P<tz>[Zz]|[+-]\d{2}:\d{2})?$"
)
_VERSION = {
    "1.0.3": re.compile(r"^1\.0(?:\.\d+)?$"),
    "2.0.0": re.compile(r"^(?:1|2)\.0(?:\.\d+)?$"),
}
# RFC 5646 (BCP 47) language tag: langtag / privateuse / grandfathered.
_LANGTAG = re.compile(
    r"""^(?:
        (?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})   # language (+ extlang)
        (?:-[A-Za-z]{4})?                                      # script
        (?:-(?:[A-Za-z]{2}|\d{3}))?                            # region
        (?:-(?:[A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*            # variants
        (?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*          # extensions
        (?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?                       # private use
      | [Xx](?:-[A-Za-z0-9]{1,8})+
      | en-GB-oed | i-[A-Za-z]{2,8} | sgn-(?:BE-FR|BE-NL|CH-DE)
    )$""",
    re.VERBOSE,
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_INTERACTION_TYPES = frozenset(
    {
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
    }
)
_COMPONENT_LISTS: dict[str, frozenset[str]] = {
    "choices": frozenset({"choice", "sequencing"}),
    "scale": frozenset({"likert"}),
    "source": frozenset({"matching"}),
    "target": frozenset({"matching"}),
    "steps": frozenset({"performance"}),
}

# --- allowed keys ---------------------------------------------------------------------------

_STATEMENT_KEYS = frozenset(
    {"id", "actor", "verb", "object", "result", "context", "timestamp", "version", "attachments"}
)
_SUBSTATEMENT_KEYS = frozenset(
    {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
)
_SUBSTATEMENT_FORBIDDEN = ("id", "stored", "version", "authority")
_LRS_ONLY = ("stored", "authority")
_AGENT_KEYS = frozenset({"objectType", "name", *IFI_KEYS})
_GROUP_KEYS = frozenset({"objectType", "name", "member", *IFI_KEYS})
_ACCOUNT_KEYS = frozenset({"homePage", "name"})
_VERB_KEYS = frozenset({"id", "display"})
_ACTIVITY_KEYS = frozenset({"objectType", "id", "definition"})
_DEFINITION_KEYS = frozenset(
    {
        "name",
        "description",
        "type",
        "moreInfo",
        "extensions",
        "interactionType",
        "correctResponsesPattern",
        *_COMPONENT_LISTS,
    }
)
_COMPONENT_KEYS = frozenset({"id", "description"})
_STATEMENT_REF_KEYS = frozenset({"objectType", "id"})
_RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
_SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
_CONTEXT_KEYS = frozenset(
    {
        "registration",
        "instructor",
        "team",
        "contextActivities",
        "revision",
        "platform",
        "language",
        "statement",
        "extensions",
    }
)
_CONTEXT_V2_KEYS = ("contextAgents", "contextGroups")
_CONTEXT_ACTIVITIES_KEYS = ("parent", "grouping", "category", "other")
_CONTEXT_AGENT_KEYS = frozenset({"objectType", "agent", "relevantTypes"})
_CONTEXT_GROUP_KEYS = frozenset({"objectType", "group", "relevantTypes"})
_ATTACHMENT_KEYS = frozenset(
    {"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"}
)
_ATTACHMENT_REQUIRED = ("usageType", "display", "contentType", "length", "sha2")


@lru_cache(maxsize=4096)
def _child(path: str, key: str) -> str:
    # Cached: statements of one mapping share their paths, and the checker builds the path of
    # every member it visits (a regex match and often a json.dumps each), issue or not.
    return f"{path}.{key}" if _IDENT.match(key) else f"{path}[{json.dumps(key)}]"


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    # A JSON object is nearly always a dict: test that first, since isinstance() against the
    # Mapping ABC was a measured share of validating each statement.
    return type(value) is dict or isinstance(value, Mapping)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


class _Verdicts:
    """Values known to be valid, remembered so that recurring ones are not checked again.

    The same few people and verbs recur in nearly every statement of a deployment, and checking
    an agent or a verb was a tenth of validating a statement (bench/profile_stages.py). Their
    rules depend on nothing but the value (not the xAPI version, not the clock), so a value that
    passed once always passes. Keys are built only for plain values (strings, an account of two
    strings); anything else is checked every time. Bounded: cleared when full.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._known: set[Hashable] = set()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._known

    def add(self, key: Hashable) -> None:
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known.add(key)


_VALID_AGENTS = _Verdicts()
_VALID_VERBS = _Verdicts()


def _agent_key(value: object, object_type_required: bool) -> tuple[Any, ...] | None:
    """A key for a plain Agent object (string members; an account of homePage and name)."""
    if type(value) is not dict:
        return None
    key: list[Any] = [object_type_required]
    for name, member in value.items():
        if type(member) is str:
            key.append((name, member))
        elif name == "account" and type(member) is dict and len(member) == 2:
            home, user = member.get("homePage"), member.get("name")
            if type(home) is not str or type(user) is not str:
                return None
            key.append((name, home, user))
        else:
            return None
    return tuple(key)


def _verb_key(value: object) -> tuple[Any, ...] | None:
    """A key for a plain Verb object (a string id, a display map of strings); its id first."""
    if type(value) is not dict or type(value.get("id")) is not str:
        return None
    display = value.get("display")
    if display is None:
        return (value["id"], len(value))
    if type(display) is not dict or not all(type(v) is str for v in display.values()):
        return None
    return (value["id"], len(value), *display.items())


class _Checker:
    """Walks one statement and collects issues."""

    def __init__(self, version: XapiVersion, now: datetime, hub_rules: bool) -> None:
        self.version = version
        self.now = now
        self.hub_rules = hub_rules
        self.issues: list[ValidationIssue] = []

    def add(self, path: str, rule: Rule, message: str) -> None:
        self.issues.append(ValidationIssue(path=path, rule=rule.value, message=message))

    # -- generic shapes ------------------------------------------------------------------

    def fields(
        self,
        value: object,
        path: str,
        *,
        allowed: Collection[str],
        required: Sequence[str] = (),
        handled: Collection[str] = (),
    ) -> dict[str, Any] | None:
        """Check an object: type, emptiness, unknown keys, nulls, required keys.

        Returns the non-null allowed members, or ``None`` when ``value`` is not an object.
        ``handled`` keys are reported by the caller with a more specific rule.
        """
        if not _is_object(value):
            self.add(path, Rule.TYPE, f"expected a JSON object, got {_json_type(value)}")
            return None
        if not value:
            self.add(path, Rule.EMPTY_OBJECT, "empty objects should not be sent")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.add(path, Rule.TYPE, f"object keys must be strings, got {key!r}")
                continue
            if key not in allowed:
                if key not in handled:
                    self.add(_child(path, key), Rule.UNKNOWN_KEY, f"unknown property {key!r}")
                continue
            if item is None:
                self.add(
                    _child(path, key), Rule.NULL, "null is not allowed (only inside extensions)"
                )
                continue
            out[key] = item
        for key in required:
            if key not in value:
                self.add(_child(path, key), Rule.REQUIRED, f"{key!r} is required")
        return out

    def array(self, value: object, path: str) -> list[Any] | None:
        if not isinstance(value, (list, tuple)):
            self.add(path, Rule.TYPE, f"expected an array, got {_json_type(value)}")
            return None
        items: list[Any] = []
        for index, item in enumerate(value):
            if item is None:
                self.add(f"{path}[{index}]", Rule.NULL, "null is not allowed in arrays")
            items.append(item)
        return items

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.add(path, Rule.TYPE, f"expected a string, got {_json_type(value)}")
            return None
        return value

    def boolean(self, value: object, path: str) -> None:
        if not isinstance(value, bool):
            self.add(path, Rule.TYPE, f"expected true or false, got {_json_type(value)}")

    def number(self, value: object, path: str) -> float | None:
        if not _is_number(value):
            self.add(path, Rule.TYPE, f"expected a finite number, got {_json_type(value)}")
            return None
        return cast(float, value)

    def iri(self, value: object, path: str, what: str = "IRI") -> str | None:
        text = self.string(value, path)
        if text is not None and not _IRI.match(text):
            self.add(path, Rule.IRI, f"{what} must be an absolute IRI with a scheme: {text!r}")
            return None
        return text

    def uuid(self, value: object, path: str) -> None:
        text = self.string(value, path)
        if text is not None and not _UUID.match(text):
            self.add(path, Rule.UUID, f"not a UUID in standard form: {text!r}")

    def language_tag(self, value: object, path: str) -> None:
        text = self.string(value, path)
        if text is not None and not _LANGTAG.match(text):
            self.add(path, Rule.LANGUAGE_TAG, f"not an RFC 5646 language tag: {text!r}")

    def language_map(self, value: object, path: str) -> None:
        if not _is_object(value):
            self.add(path, Rule.TYPE, f"expected a language map object, got {_json_type(value)}")
            return
        if not value:
            self.add(path, Rule.EMPTY_OBJECT, "empty language maps should not be sent")
        for key, text in value.items():
            sub = _child(path, str(key))
            if not isinstance(key, str) or not _LANGTAG.match(key):
                self.add(sub, Rule.LANGUAGE_TAG, f"not an RFC 5646 language tag: {key!r}")
            if text is None:
                self.add(sub, Rule.NULL, "null is not allowed in a language map")
            else:
                self.string(text, sub)

    def extensions(self, value: object, path: str) -> None:
        if not _is_object(value):
            self.add(path, Rule.TYPE, f"expected an extensions object, got {_json_type(value)}")
            return
        if not value:
            self.add(path, Rule.EMPTY_OBJECT, "empty objects should not be sent")
        for key in value:
            sub = _child(path, str(key))
            if not isinstance(key, str) or not _IRI.match(key):
                self.add(sub, Rule.IRI, f"extension keys must be absolute IRIs: {key!r}")

    # -- agents and groups ---------------------------------------------------------------

    def ifis(self, fields: Mapping[str, Any], raw: Mapping[str, Any], path: str) -> int:
        """Validate present IFIs; return how many keys are present (nulls included)."""
        if "mbox" in fields:
            text = self.string(fields["mbox"], f"{path}.mbox")
            if text is not None and not _MBOX.match(text):
                self.add(f"{path}.mbox", Rule.MBOX, f"mbox must be 'mailto:' + address: {text!r}")
        if "mbox_sha1sum" in fields:
            text = self.string(fields["mbox_sha1sum"], f"{path}.mbox_sha1sum")
            if text is not None and not _SHA1.match(text):
                self.add(f"{path}.mbox_sha1sum", Rule.MBOX_SHA1SUM, "must be 40 hexadecimal digits")
        if "openid" in fields:
            self.iri(fields["openid"], f"{path}.openid", "openid")
        if "account" in fields:
            account = self.fields(
                fields["account"],
                f"{path}.account",
                allowed=_ACCOUNT_KEYS,
                required=("homePage", "name"),
            )
            if account is not None:
                if "homePage" in account:
                    self.iri(account["homePage"], f"{path}.account.homePage", "homePage")
                if "name" in account:
                    self.string(account["name"], f"{path}.account.name")
        return sum(key in raw for key in IFI_KEYS)

    def agent(self, value: object, path: str, *, object_type_required: bool = False) -> None:
        key = _agent_key(value, object_type_required)
        if key is not None and key in _VALID_AGENTS:
            return
        before = len(self.issues)
        self._agent(value, path, object_type_required=object_type_required)
        if key is not None and len(self.issues) == before:
            _VALID_AGENTS.add(key)

    def _agent(self, value: object, path: str, *, object_type_required: bool) -> None:
        fields = self.fields(value, path, allowed=_AGENT_KEYS)
        if fields is None:
            return
        raw = cast(Mapping[str, Any], value)
        if "objectType" in fields and fields["objectType"] != "Agent":
            self.add(
                f"{path}.objectType",
                Rule.OBJECT_TYPE,
                f"expected 'Agent', got {fields['objectType']!r}",
            )
        elif object_type_required and "objectType" not in raw:
            self.add(
                f"{path}.objectType", Rule.OBJECT_TYPE, "an Agent used as object needs objectType"
            )
        if "name" in fields:
            self.string(fields["name"], f"{path}.name")
        count = self.ifis(fields, raw, path)
        if count != 1:
            self.add(path, Rule.IFI, f"an Agent needs exactly one IFI, found {count}")

    def group(self, value: object, path: str) -> None:
        fields = self.fields(value, path, allowed=_GROUP_KEYS, required=("objectType",))
        if fields is None:
            return
        raw = cast(Mapping[str, Any], value)
        if "objectType" in fields and fields["objectType"] != "Group":
            self.add(
                f"{path}.objectType",
                Rule.OBJECT_TYPE,
                f"expected 'Group', got {fields['objectType']!r}",
            )
        if "name" in fields:
            self.string(fields["name"], f"{path}.name")
        count = self.ifis(fields, raw, path)
        if count > 1:
            self.add(path, Rule.IFI, f"an identified Group needs exactly one IFI, found {count}")
        members = self.array(fields["member"], f"{path}.member") if "member" in fields else None
        if count == 0 and not members:
            self.add(
                f"{path}.member",
                Rule.GROUP_ANONYMOUS,
                "an anonymous Group (no IFI) requires a non-empty member list",
            )
        for index, member in enumerate(members or ()):
            sub = f"{path}.member[{index}]"
            if member is None:
                continue
            if _is_object(member) and member.get("objectType") == "Group":
                self.add(sub, Rule.GROUP_MEMBER, "Group members must be Agents, not Groups")
                continue
            self.agent(member, sub)

    def actor(self, value: object, path: str) -> None:
        if _is_object(value) and value.get("objectType") == "Group":
            self.group(value, path)
        else:
            self.agent(value, path)

    # -- verb, activity, objects ---------------------------------------------------------

    def verb(self, value: object, path: str) -> str | None:
        key = _verb_key(value)
        if key is not None and key in _VALID_VERBS:
            return cast(str, key[0])
        before = len(self.issues)
        verb_id = self._verb(value, path)
        if key is not None and len(self.issues) == before:
            _VALID_VERBS.add(key)
        return verb_id

    def _verb(self, value: object, path: str) -> str | None:
        fields = self.fields(value, path, allowed=_VERB_KEYS, required=("id",))
        if fields is None:
            return None
        verb_id = self.iri(fields["id"], f"{path}.id", "verb id") if "id" in fields else None
        if "display" in fields:
            self.language_map(fields["display"], f"{path}.display")
        return verb_id

    def activity(self, value: object, path: str) -> None:
        fields = self.fields(value, path, allowed=_ACTIVITY_KEYS, required=("id",))
        if fields is None:
            return
        if "objectType" in fields and fields["objectType"] != "Activity":
            self.add(
                f"{path}.objectType",
                Rule.OBJECT_TYPE,
                f"expected 'Activity', got {fields['objectType']!r}",
            )
        if "id" in fields:
            self.iri(fields["id"], f"{path}.id", "activity id")
        if "definition" in fields:
            self.definition(fields["definition"], f"{path}.definition")

    def definition(self, value: object, path: str) -> None:
        fields = self.fields(value, path, allowed=_DEFINITION_KEYS)
        if fields is None:
            return
        for key in ("name", "description"):
            if key in fields:
                self.language_map(fields[key], f"{path}.{key}")
        if "type" in fields:
            self.iri(fields["type"], f"{path}.type", "activity type")
        if "moreInfo" in fields:
            self.iri(fields["moreInfo"], f"{path}.moreInfo", "moreInfo")
        if "extensions" in fields:
            self.extensions(fields["extensions"], f"{path}.extensions")
        interaction_type = fields.get("interactionType")
        if interaction_type is not None and interaction_type not in _INTERACTION_TYPES:
            self.add(
                f"{path}.interactionType",
                Rule.INTERACTION,
                f"unknown interactionType {interaction_type!r}",
            )
        if "correctResponsesPattern" in fields:
            sub = f"{path}.correctResponsesPattern"
            for index, item in enumerate(self.array(fields["correctResponsesPattern"], sub) or ()):
                if item is not None:
                    self.string(item, f"{sub}[{index}]")
        for key, types in _COMPONENT_LISTS.items():
            if key not in fields:
                continue
            sub = f"{path}.{key}"
            if interaction_type not in types:
                self.add(
                    sub,
                    Rule.INTERACTION,
                    f"{key!r} is only allowed with interactionType {sorted(types)}",
                )
            self.components(fields[key], sub)

    def components(self, value: object, path: str) -> None:
        seen: set[str] = set()
        for index, item in enumerate(self.array(value, path) or ()):
            if item is None:
                continue
            sub = f"{path}[{index}]"
            fields = self.fields(item, sub, allowed=_COMPONENT_KEYS, required=("id",))
            if fields is None:
                continue
            if "id" in fields:
                component_id = self.string(fields["id"], f"{sub}.id")
                if component_id is not None and component_id in seen:
                    self.add(
                        f"{sub}.id", Rule.INTERACTION, f"duplicate component id {component_id!r}"
                    )
                if component_id is not None:
                    seen.add(component_id)
            if "description" in fields:
                self.language_map(fields["description"], f"{sub}.description")

    def statement_ref(self, value: object, path: str) -> None:
        fields = self.fields(
            value, path, allowed=_STATEMENT_REF_KEYS, required=("objectType", "id")
        )
        if fields is None:
            return
        if "objectType" in fields and fields["objectType"] != "StatementRef":
            self.add(
                f"{path}.objectType",
                Rule.OBJECT_TYPE,
                f"expected 'StatementRef', got {fields['objectType']!r}",
            )
        if "id" in fields:
            self.uuid(fields["id"], f"{path}.id")

    def statement_object(self, value: object, path: str, *, in_substatement: bool) -> str | None:
        """Validate a statement object; return its kind (objectType, default Activity)."""
        if not _is_object(value):
            self.add(path, Rule.TYPE, f"expected a JSON object, got {_json_type(value)}")
            return None
        kind = value.get("objectType", "Activity")
        if kind == "Activity":
            if (
                "objectType" not in value
                and "id" not in value
                and any(key in value for key in (*IFI_KEYS, "member"))
            ):
                self.add(
                    f"{path}.objectType",
                    Rule.OBJECT_TYPE,
                    "an Agent or Group used as object must carry objectType",
                )
                return None
            self.activity(value, path)
        elif kind == "Agent":
            self.agent(value, path, object_type_required=True)
        elif kind == "Group":
            self.group(value, path)
        elif kind == "StatementRef":
            self.statement_ref(value, path)
        elif kind == "SubStatement":
            if in_substatement:
                self.add(path, Rule.SUBSTATEMENT_NESTED, "a SubStatement must not nest another")
                return None
            self.substatement(value, path)
        else:
            self.add(f"{path}.objectType", Rule.OBJECT_TYPE, f"unknown objectType {kind!r}")
            return None
        return str(kind)

    # -- statement bodies ----------------------------------------------------------------

    def statement(self, value: object) -> None:
        path = "$"
        fields = self.fields(
            value,
            path,
            allowed=_STATEMENT_KEYS,
            required=("actor", "verb", "object"),
            handled=_LRS_ONLY,
        )
        if fields is None:
            return
        raw = cast(Mapping[str, Any], value)
        for key in _LRS_ONLY:
            if key in raw:
                self.add(_child(path, key), Rule.LRS_ONLY, f"{key!r} is set by the LRS, never sent")
        if "id" in fields:
            self.uuid(fields["id"], "$.id")
        if "version" in fields:
            self.statement_version(fields["version"], "$.version")
        if self.hub_rules:
            for key in ("id", "timestamp"):
                if key not in raw:
                    self.add(
                        _child(path, key),
                        Rule.HUB_REQUIRED,
                        f"the hub always sets {key!r} so that retries are idempotent",
                    )
        self.body(fields, path, in_substatement=False)

    def substatement(self, value: Mapping[str, Any], path: str) -> None:
        fields = self.fields(
            value,
            path,
            allowed=_SUBSTATEMENT_KEYS,
            required=("actor", "verb", "object"),
            handled=_SUBSTATEMENT_FORBIDDEN,
        )
        if fields is None:
            return
        for key in _SUBSTATEMENT_FORBIDDEN:
            if key in value:
                self.add(
                    _child(path, key),
                    Rule.SUBSTATEMENT_PROPERTY,
                    f"a SubStatement must not carry {key!r}",
                )
        self.body(fields, path, in_substatement=True)

    def body(self, fields: Mapping[str, Any], path: str, *, in_substatement: bool) -> None:
        if "actor" in fields:
            self.actor(fields["actor"], f"{path}.actor")
        verb_id = self.verb(fields["verb"], f"{path}.verb") if "verb" in fields else None
        kind = None
        if "object" in fields:
            kind = self.statement_object(
                fields["object"], f"{path}.object", in_substatement=in_substatement
            )
            if verb_id == VOIDED_VERB and kind != "StatementRef":
                self.add(
                    f"{path}.object",
                    Rule.VOIDING_OBJECT,
                    "a voiding statement's object must be a StatementRef",
                )
        if "result" in fields:
            self.result(fields["result"], f"{path}.result")
        if "context" in fields:
            # An invalid or missing object is reported elsewhere; judge revision/platform only
            # against a recognised object kind.
            self.context(fields["context"], f"{path}.context", kind in (None, "Activity"))
        if "timestamp" in fields:
            self.timestamp(fields["timestamp"], f"{path}.timestamp")
        if "attachments" in fields:
            self.attachments(fields["attachments"], f"{path}.attachments")

    def statement_version(self, value: object, path: str) -> None:
        text = self.string(value, path)
        if text is not None and not _VERSION[self.version].match(text):
            allowed = "1.0.x" if self.version == "1.0.3" else "1.0.x or 2.0.x"
            self.add(
                path,
                Rule.VERSION,
                f"version {text!r} is not allowed for a {self.version} LRS "
                f"(use {allowed}, or better leave it out)",
            )

    def timestamp(self, value: object, path: str) -> None:
        text = self.string(value, path)
        if text is None:
            return
        match = _TIMESTAMP.match(text)
        if match is None:
            self.add(path, Rule.TIMESTAMP, f"not an RFC 3339 timestamp: {text!r}")
            return
        tz = match["tz"]
        if tz is None:
            self.add(path, Rule.TIMESTAMP_ZONE, f"timestamp needs a time zone (Z): {text!r}")
            return
        if tz == "-00:00" and self.version == "2.0.0":
            self.add(path, Rule.TIMESTAMP, "xAPI 2.0 does not allow the '-00:00' offset")
            return
        try:
            # Strict RFC 3339 (what the hub writes) is read in C; the rest field by field.
            moment = parse_strict_rfc3339(text) or self._moment(match, tz)
        except (ValueError, OverflowError) as exc:
            self.add(path, Rule.TIMESTAMP, f"invalid timestamp {text!r}: {exc}")
            return
        if moment > self.now + CLOCK_SKEW:
            self.add(path, Rule.TIMESTAMP_FUTURE, f"timestamp {text!r} is in the future")

    @staticmethod
    def _moment(match: re.Match[str], tz: str) -> datetime:
        """The UTC instant of a timestamp `_TIMESTAMP` matched (any precision, ``t``/``z``)."""
        micros = int((match["frac"] or "0")[:6].ljust(6, "0"))
        moment = datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"]),
            int(match["mi"]),
            int(match["s"]),
            micros,
            tzinfo=UTC,
        )
        if tz not in ("Z", "z"):
            sign = -1 if tz[0] == "-" else 1
            hours, minutes = int(tz[1:3]), int(tz[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError(f"offset {tz} out of range")
            moment -= sign * timedelta(hours=hours, minutes=minutes)
        return moment

    def result(self, value: object, path: str) -> None:
        fields = self.fields(value, path, allowed=_RESULT_KEYS)
        if fields is None:
            return
        if "score" in fields:
            self.score(fields["score"], f"{path}.score")
        for key in ("success", "completion"):
            if key in fields:
                self.boolean(fields[key], f"{path}.{key}")
        if "response" in fields:
            self.string(fields["response"], f"{path}.response")
        if "duration" in fields:
            text = self.string(fields["duration"], f"{path}.duration")
            if text is not None and not is_iso_duration(text):
                self.add(
                    f"{path}.duration",
                    Rule.DURATION,
                    f"not an ISO 8601 duration (e.g. PT1H2M3.45S): {text!r}",
                )
        if "extensions" in fields:
            self.extensions(fields["extensions"], f"{path}.extensions")

    def score(self, value: object, path: str) -> None:
        fields = self.fields(value, path, allowed=_SCORE_KEYS)
        if fields is None:
            return
        numbers = {key: self.number(fields[key], f"{path}.{key}") for key in fields}
        scaled = numbers.get("scaled")
        raw, low, high = numbers.get("raw"), numbers.get("min"), numbers.get("max")
        if scaled is not None and not -1 <= scaled <= 1:
            self.add(f"{path}.scaled", Rule.SCORE_SCALED, f"scaled must be in [-1, 1]: {scaled}")
        if low is not None and high is not None and not low < high:
            self.add(
                f"{path}.min", Rule.SCORE_MIN_MAX, f"min ({low}) must be less than max ({high})"
            )
        if raw is not None and (
            (low is not None and raw < low) or (high is not None and raw > high)
        ):
            self.add(
                f"{path}.raw",
                Rule.SCORE_RAW,
                f"raw ({raw}) must lie within [min, max] ({low}, {high})",
            )

    def context(self, value: object, path: str, object_is_activity: bool) -> None:
        fields = self.fields(
            value,
            path,
            allowed=_CONTEXT_KEYS | set(_CONTEXT_V2_KEYS)
            if self.version == "2.0.0"
            else _CONTEXT_KEYS,
            handled=_CONTEXT_V2_KEYS,
        )
        if fields is None:
            return
        raw = cast(Mapping[str, Any], value)
        if self.version == "1.0.3":
            for key in _CONTEXT_V2_KEYS:
                if key in raw:
                    self.add(
                        _child(path, key),
                        Rule.VERSION_2_ONLY,
                        f"{key!r} exists only in xAPI 2.0; a 1.0.3 LRS rejects it",
                    )
        if "registration" in fields:
            self.uuid(fields["registration"], f"{path}.registration")
        if "instructor" in fields:
            self.actor(fields["instructor"], f"{path}.instructor")
        if "team" in fields:
            team = fields["team"]
            if _is_object(team) and team.get("objectType") != "Group":
                self.add(f"{path}.team.objectType", Rule.OBJECT_TYPE, "team must be a Group")
            else:
                self.group(team, f"{path}.team")
        if "contextActivities" in fields:
            self.context_activities(fields["contextActivities"], f"{path}.contextActivities")
        for key in ("revision", "platform"):
            if key in fields:
                self.string(fields[key], f"{path}.{key}")
                if not object_is_activity:
                    self.add(
                        f"{path}.{key}",
                        Rule.CONTEXT_ACTIVITY_ONLY,
                        f"{key!r} may only be used when the object is an Activity",
                    )
        if "language" in fields:
            self.language_tag(fields["language"], f"{path}.language")
        if "statement" in fields:
            self.statement_ref(fields["statement"], f"{path}.statement")
        if "extensions" in fields:
            self.extensions(fields["extensions"], f"{path}.extensions")
        if "contextAgents" in fields:
            self.context_members(
                fields["contextAgents"], f"{path}.contextAgents", "contextAgent", "agent"
            )
        if "contextGroups" in fields:
            self.context_members(
                fields["contextGroups"], f"{path}.contextGroups", "contextGroup", "group"
            )

    def context_activities(self, value: object, path: str) -> None:
        fields = self.fields(value, path, allowed=_CONTEXT_ACTIVITIES_KEYS)
        if fields is None:
            return
        for key, item in fields.items():
            sub = f"{path}.{key}"
            if _is_object(item):
                self.add(
                    sub,
                    Rule.CONTEXT_ACTIVITIES_ARRAY,
                    "contextActivities values must be sent as arrays",
                )
                self.activity(item, sub)
                continue
            for index, activity in enumerate(self.array(item, sub) or ()):
                if activity is not None:
                    self.activity(activity, f"{sub}[{index}]")

    def context_members(self, value: object, path: str, object_type: str, member: str) -> None:
        allowed = _CONTEXT_AGENT_KEYS if member == "agent" else _CONTEXT_GROUP_KEYS
        for index, item in enumerate(self.array(value, path) or ()):
            if item is None:
                continue
            sub = f"{path}[{index}]"
            fields = self.fields(item, sub, allowed=allowed, required=("objectType", member))
            if fields is None:
                continue
            if "objectType" in fields and fields["objectType"] != object_type:
                self.add(
                    f"{sub}.objectType",
                    Rule.OBJECT_TYPE,
                    f"expected {object_type!r}, got {fields['objectType']!r}",
                )
            if member in fields:
                if member == "agent":
                    self.agent(fields[member], f"{sub}.agent")
                else:
                    self.group(fields[member], f"{sub}.group")
            if "relevantTypes" in fields:
                types = self.array(fields["relevantTypes"], f"{sub}.relevantTypes")
                if types == []:
                    self.add(
                        f"{sub}.relevantTypes",
                        Rule.RELEVANT_TYPES,
                        "relevantTypes must not be empty when present",
                    )
                for position, iri in enumerate(types or ()):
                    if iri is not None:
                        self.iri(iri, f"{sub}.relevantTypes[{position}]", "relevant type")

    def attachments(self, value: object, path: str) -> None:
        for index, item in enumerate(self.array(value, path) or ()):
            if item is None:
                continue
            sub = f"{path}[{index}]"
            fields = self.fields(item, sub, allowed=_ATTACHMENT_KEYS, required=_ATTACHMENT_REQUIRED)
            if fields is None:
                continue
            if "usageType" in fields:
                self.iri(fields["usageType"], f"{sub}.usageType", "usageType")
            for key in ("display", "description"):
                if key in fields:
                    self.language_map(fields[key], f"{sub}.{key}")
            if "contentType" in fields:
                text = self.string(fields["contentType"], f"{sub}.contentType")
                if text is not None and not _CONTENT_TYPE.match(text):
                    self.add(f"{sub}.contentType", Rule.CONTENT_TYPE, f"not a media type: {text!r}")
            if "length" in fields:
                length = fields["length"]
                if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                    self.add(f"{sub}.length", Rule.TYPE, "length must be a non-negative integer")
            if "sha2" in fields:
                text = self.string(fields["sha2"], f"{sub}.sha2")
                if text is not None and not _SHA2.match(text):
                    self.add(f"{sub}.sha2", Rule.SHA2, "sha2 must be a hex SHA-2 digest")
            if "fileUrl" in fields:
                self.iri(fields["fileUrl"], f"{sub}.fileUrl", "fileUrl")
            elif self.hub_rules:
                self.add(
                    f"{sub}.fileUrl",
                    Rule.HUB_REQUIRED,
                    "the hub sends JSON only, so every attachment needs fileUrl",
                )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if _is_number(value) else "non-finite number"
    if isinstance(value, str):
        return "string"
    if _is_object(value):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def validate_statement(
    data: Mapping[str, Any] | Statement | StatementJson,
    *,
    version: XapiVersion = "1.0.3",
    now: datetime | None = None,
    hub_rules: bool = False,
) -> list[ValidationIssue]:
    """Return every producer-rule violation of ``data`` (empty list when valid).

    ``data`` is raw JSON-like data, or a :class:`Statement` (validated as it would be sent).
    ``version`` is the target LRS version. ``now`` (default: the current UTC time) bounds
    future timestamps, with :data:`CLOCK_SKEW` tolerance. ``hub_rules`` adds the hub's own
    requirements on top of xAPI: ``id`` and ``timestamp`` present, ``fileUrl`` on attachments.
    """
    if version not in _VERSION:
        raise ValueError(f"unsupported xAPI version {version!r}")
    if isinstance(data, Statement):
        data = data.to_json()
    elif isinstance(data, StatementJson):
        data = data.data
    current = datetime.now(UTC) if now is None else now
    if current.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    checker = _Checker(version, current, hub_rules)
    checker.statement(data)
    return checker.issues


def ensure_valid(
    data: Mapping[str, Any] | Statement | StatementJson,
    *,
    version: XapiVersion = "1.0.3",
    now: datetime | None = None,
    hub_rules: bool = False,
) -> None:
    """Like :func:`validate_statement` but raise :class:`StatementInvalid` on any issue."""
    issues = validate_statement(data, version=version, now=now, hub_rules=hub_rules)
    if issues:
        raise StatementInvalid(issues)
