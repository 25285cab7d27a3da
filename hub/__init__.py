"""lxhub: the connector hub of a corporate learning ecosystem.

This module is the plugin-author API: a connector plugin (built-in or third-party) imports what it
needs from `hub` (and the xAPI models from `hub.xapi`, the test kit from `hub.testing`), never
from deeper modules, which may change. Everything listed in `__all__` is stable within a major
version; `tests/hub/test_exports.py` keeps the list honest.
"""

from __future__ import annotations

from hub.auth import BearerToken, OAuth2ClientCredentials, OAuth2Password
from hub.backoff import full_jitter, parse_retry_after
from hub.clock import Clock, FrozenClock, SystemClock
from hub.connector import (
    Capability,
    Connector,
    ConnectorRuntime,
    ConnectorSettings,
    KeyValue,
    Person,
    Polling,
    Webhook,
)
from hub.cursor import Cursor, TimeCursor, signpost
from hub.errors import (
    BadRequest,
    ConfigError,
    HubError,
    InvalidSignature,
    MaintenanceIncomplete,
    MappingError,
    PaginationLoop,
    PermanentError,
    RateLimited,
    SourceError,
    TransientError,
    UnresolvedActor,
)
from hub.events import PollResult, SourceEvent, WebhookRequest, WebhookResponse
from hub.http import build_client, classify_source_response, send_with_retry
from hub.mapping import (
    ActorResolver,
    EventPayload,
    MappingContext,
    MapResult,
    StatementMapper,
    Unmapped,
)
from hub.pagination import LoopGuard, iterate_pages, next_link, next_page_number
from hub.ratelimit import RateLimiter, TokenBucket
from hub.signatures import (
    BasicAuthVerifier,
    BodyDigestVerifier,
    DateHeaderVerifier,
    HmacVerifier,
    QueryTokenVerifier,
    StaticHeaderVerifier,
    Verifier,
    hmac_digest,
    matches_any,
    secret_bytes,
)
from hub.webhooks import json_body, json_depth, load_json, media_type

__version__ = "0.1.0"

__all__ = [
    "ActorResolver",
    "BadRequest",
    "BasicAuthVerifier",
    "BearerToken",
    "BodyDigestVerifier",
    "Capability",
    "Clock",
    "ConfigError",
    "Connector",
    "ConnectorRuntime",
    "ConnectorSettings",
    "Cursor",
    "DateHeaderVerifier",
    "EventPayload",
    "FrozenClock",
    "HmacVerifier",
    "HubError",
    "InvalidSignature",
    "KeyValue",
    "LoopGuard",
    "MaintenanceIncomplete",
    "MapResult",
    "MappingContext",
    "MappingError",
    "OAuth2ClientCredentials",
    "OAuth2Password",
    "PaginationLoop",
    "PermanentError",
    "Person",
    "PollResult",
    "Polling",
    "QueryTokenVerifier",
    "RateLimited",
    "RateLimiter",
    "SourceError",
    "SourceEvent",
    "StatementMapper",
    "StaticHeaderVerifier",
    "SystemClock",
    "TimeCursor",
    "TokenBucket",
    "TransientError",
    "Unmapped",
    "UnresolvedActor",
    "Verifier",
    "Webhook",
    "WebhookRequest",
    "WebhookResponse",
    "build_client",
    "classify_source_response",
    "full_jitter",
    "hmac_digest",
    "iterate_pages",
    "json_body",
    "json_depth",
    "load_json",
    "matches_any",
    "media_type",
    "next_link",
    "next_page_number",
    "parse_retry_after",
    "secret_bytes",
    "send_with_retry",
    "signpost",
]
