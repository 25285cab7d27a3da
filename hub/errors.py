"""The hub's exception tree.

Every failure a connector or the pipeline can meet is one of these; `hub.resolution` turns them
into a decision (retry, wait, dead-letter, stop) so no task invents its own policy::

    HubError
    ├─ ConfigError            never retried: a human must fix configuration or credentials
    ├─ SourceError            talking to a source (vendor API)
    │  ├─ TransientError      5xx, timeouts, connection resets: retry with backoff
    │  │  └─ RateLimited      429 / throttling: wait `.retry_after` seconds, then retry
    │  └─ PermanentError      other 4xx, schema violations: dead-letter, do not retry
    ├─ InvalidSignature       a webhook failed authentication (never raised to the sender)
    ├─ BadRequest             a webhook body that cannot be parsed (400/413/415)
    ├─ PaginationLoop         a source returned a page token it had already returned
    ├─ UnresolvedActor        no identifier could be formed for a person
    ├─ MappingError           an event the mapper handles but cannot turn into a valid statement
    ├─ PluginLoadError        a connector plugin failed to import or validate
    ├─ MaintenanceIncomplete  part of a connector's upkeep failed; the events it found still go in
    └─ DeliveryError          the LRS side, with the same transient/permanent split
       ├─ DeliveryTransient
       └─ DeliveryPermanent

Messages never contain secrets: constructors take already-redacted text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.events import SourceEvent


class HubError(Exception):
    """Base of every error lxhub raises on purpose."""


class ConfigError(HubError):
    """Configuration or credentials are wrong; retrying cannot help."""


class SourceError(HubError):
    """A call to a source's API failed."""


class TransientError(SourceError):
    """A failure that may succeed when retried (5xx, timeout, connection reset)."""


class RateLimited(TransientError):
    """The source asked us to slow down; `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(SourceError):
    """A failure that will fail the same way when retried (4xx other than 408/425/429)."""


class InvalidSignature(HubError):
    """A webhook request failed authentication; `reason` is safe to log.

    `status` is what the receiver answers: 401 by default. A 2xx status means "acknowledge and
    drop" (WebSub hubs must not learn which deliveries were rejected, and retry non-2xx forever).
    """

    def __init__(self, reason: str, *, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class BadRequest(HubError):
    """A webhook request whose body cannot be accepted; `status` is the HTTP answer."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class PaginationLoop(PermanentError):
    """A paginator saw the same page token twice; stopping beats looping forever."""


class UnresolvedActor(HubError):
    """No actor identifier could be formed for a source user."""

    def __init__(self, source: str, user_ref: str) -> None:
        super().__init__(f"no identity for {source} user {user_ref!r}")
        self.source = source
        self.user_ref = user_ref


class MappingError(HubError):
    """An event of a handled type could not be turned into a valid statement."""


class PluginLoadError(HubError):
    """A connector plugin could not be loaded or failed validation; names its package."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"connector plugin {plugin}: {reason}")
        self.plugin = plugin
        self.reason = reason


class MaintenanceIncomplete(HubError):
    """Raised by `maintain()` when part of the upkeep failed after other parts found events.

    The hub enqueues `events` (they are not lost with the failed part) and then records the
    failure as the instance's health error, so an admin sees it. `errors` are the failed parts'
    messages, already free of secrets.
    """

    def __init__(self, events: Sequence[SourceEvent], errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors) or "maintenance incomplete")
        self.events = list(events)
        self.errors = list(errors)


class DeliveryError(HubError):
    """Sending statements to an LRS failed."""


class DeliveryTransient(DeliveryError):
    """The LRS may accept the same bytes later (429, 5xx, network)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryPermanent(DeliveryError):
    """The LRS will never accept these bytes as they are."""
