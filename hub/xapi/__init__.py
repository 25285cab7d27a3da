"""xAPI building blocks for the hub: models, validation, canonical bytes, ids and vocabulary.

Typical producer flow::

    ns = statement_namespace(XAPI_IRI_BASE)
    key = natural_key(source="docebo", tenant=host, verb_key=Verbs.COMPLETED.key, parts=[...])
    stmt = Statement(id=statement_id(ns, key), actor=..., verb=Verbs.COMPLETED.verb(), ...)
    body = canonical_bytes(stmt, version="1.0.3")   # validated; store and resend as-is
"""

from __future__ import annotations

from hub.xapi.ids import (
    activity_iri,
    extension_iri,
    natural_key,
    statement_id,
    statement_namespace,
)
from hub.xapi.models import (
    Account,
    Activity,
    ActivityDefinition,
    Actor,
    Agent,
    Attachment,
    Context,
    ContextActivities,
    ContextAgent,
    ContextGroup,
    Extensions,
    Group,
    InteractionComponent,
    LanguageMap,
    Result,
    Score,
    Statement,
    StatementRef,
    SubStatement,
    Verb,
    XapiModel,
)
from hub.xapi.serialize import (
    canonical_bytes,
    canonical_json,
    statement_differences,
    statement_from_bytes,
    statements_equivalent,
)
from hub.xapi.statement_json import StatementJson, statement_verb_id
from hub.xapi.timefmt import (
    format_duration,
    format_timestamp,
    is_iso_duration,
    key_time,
    parse_duration,
    parse_timestamp,
)
from hub.xapi.validation import (
    Rule,
    StatementInvalid,
    ValidationIssue,
    XapiVersion,
    ensure_valid,
    validate_statement,
)
from hub.xapi.vocab import ActivityTypes, Categories, VerbDef, Verbs

__all__ = [
    "Account",
    "Activity",
    "ActivityDefinition",
    "ActivityTypes",
    "Actor",
    "Agent",
    "Attachment",
    "Categories",
    "Context",
    "ContextActivities",
    "ContextAgent",
    "ContextGroup",
    "Extensions",
    "Group",
    "InteractionComponent",
    "LanguageMap",
    "Result",
    "Rule",
    "Score",
    "Statement",
    "StatementInvalid",
    "StatementJson",
    "StatementRef",
    "SubStatement",
    "ValidationIssue",
    "Verb",
    "VerbDef",
    "Verbs",
    "XapiModel",
    "XapiVersion",
    "activity_iri",
    "canonical_bytes",
    "canonical_json",
    "ensure_valid",
    "extension_iri",
    "format_duration",
    "format_timestamp",
    "is_iso_duration",
    "key_time",
    "natural_key",
    "parse_duration",
    "parse_timestamp",
    "statement_differences",
    "statement_from_bytes",
    "statement_id",
    "statement_namespace",
    "statement_verb_id",
    "statements_equivalent",
    "validate_statement",
]
