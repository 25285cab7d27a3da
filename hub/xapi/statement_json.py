"""A statement already in its xAPI JSON form: what a compiled mapping returns instead of a model.

A mapper may return :class:`StatementJson` beside (or instead of) :class:`Statement` models.
The hub treats both alike: the pipeline checks every statement against the xAPI rules before
it is queued (:func:`hub.xapi.canonical_bytes`), whichever form it came in. Building pydantic
models only to dump them to this JSON again was about a fifth of the normalizer's CPU per
statement for the generic webhook engine (``bench/profile_stages.py``), which builds these
instead.

The JSON is treated as read-only: nothing in the hub mutates ``data`` or what it holds, so a
builder may share sub-objects (one actor object, one verb object) between statements.
:meth:`StatementJson.to_json` returns a deep copy for callers that want to edit.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.xapi.models import Statement

__all__ = ["StatementJson", "statement_verb_id"]


@dataclass(frozen=True, slots=True)
class StatementJson:
    """One statement as xAPI JSON (aliases as in the spec: ``object``, ``contextActivities``).

    ``data["id"]`` is the deterministic statement id (a UUID string); ``data["timestamp"]`` is
    already formatted. Validation happens where every statement is validated, not here.
    """

    data: Mapping[str, Any]

    @property
    def id(self) -> str | None:
        value = self.data.get("id")
        return value if isinstance(value, str) else None

    @property
    def verb_id(self) -> str | None:
        verb = self.data.get("verb")
        value = verb.get("id") if isinstance(verb, Mapping) else None
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        """A deep copy of the JSON, free to edit (``Statement.to_json`` gives a fresh one too)."""
        return copy.deepcopy(dict(self.data))

    def to_statement(self) -> Statement:
        """The same statement as a pydantic model (for tools and tests that want attributes)."""
        return Statement.model_validate(self.data)


def statement_verb_id(statement: Statement | StatementJson) -> str:
    """The verb IRI of either form, for routes to filter on ("" when a StatementJson has none:
    validation then dead-letters it wherever it is routed)."""
    if isinstance(statement, StatementJson):
        return statement.verb_id or ""
    return statement.verb.id
