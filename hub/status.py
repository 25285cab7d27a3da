"""The figures of `/api/status`, the status page and `lxhub status`, read from the store.

Everything here is read from the hub's store (never from one process's memory), so the page is
right whichever receiver answers and however many worker machines run. Events/min and
delivered/min are trailing averages over `hub.metrics.RATE_WINDOW_MINUTES`, recorded by the
normalize and delivery tasks (`hub.metrics.record_events`, `hub.metrics.record_delivered`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub import health
from hub.delivery import circuit_state
from hub.inbox import INBOX
from hub.metrics import DELIVERED, EVENTS, RATE_WINDOW_MINUTES, Rates
from hub.store.base import DeadLetterFilter

if TYPE_CHECKING:
    from hub.connector import Connector
    from hub.runtime import HubRuntime

logger = logging.getLogger(__name__)

MAX_DETAILS = 8
"""Facts shown per connector; a plugin cannot flood the page."""


class ConnectorStatus(BaseModel):
    """One connector instance as the status page shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    enabled: bool
    capabilities: list[str]
    last_poll_at: AwareDatetime | None
    last_success_at: AwareDatetime | None
    cursor: str | None
    last_error: str | None
    last_error_at: AwareDatetime | None
    unhealthy: bool
    description: str = ""
    events_per_minute: float = 0.0
    details: dict[str, str] = Field(
        default_factory=dict, description="the connector's own facts (`status_details()`)"
    )


class LrsStatus(BaseModel):
    """One LRS destination: its outbox, its circuit and its dead letters."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    enabled: bool
    backlog: int
    in_flight: int
    oldest_waiting_seconds: float | None
    paused: bool
    paused_reason: str | None
    next_probe_at: AwareDatetime | None
    dead_letters: int
    delivered_per_minute: float = 0.0


class DeadLetterSummary(BaseModel):
    """A recent dead letter, its detail cut to a readable length."""

    model_config = ConfigDict(frozen=True)

    id: str
    stage: str
    lrs: str | None
    instance_id: str | None
    reason: str
    detail: str
    last_at: AwareDatetime


class HubStatus(BaseModel):
    """Everything `/api/status` answers."""

    model_config = ConfigDict(frozen=True)

    generated_at: AwareDatetime
    rate_window_minutes: int = RATE_WINDOW_MINUTES
    inbox_backlog: int
    connectors: list[ConnectorStatus]
    lrs: list[LrsStatus]
    dead_letters_total: int
    recent_dead_letters: list[DeadLetterSummary]


def details(connector: Connector[Any]) -> dict[str, str]:
    """The connector's `status_details()`, bounded; a plugin that fails there must not take
    the status page down with it."""
    try:
        found = connector.status_details()
        return {str(k)[:60]: str(v)[:200] for k, v in list(found.items())[:MAX_DETAILS]}
    except Exception:
        logger.exception("status_details() of connector %r failed", connector.name)
        return {"status details": "unavailable (status_details() failed; see the logs)"}


def collect(runtime: HubRuntime, *, now: datetime | None = None, recent: int = 10) -> HubStatus:
    """Read every figure of the status page from the store (no secret is ever part of it)."""
    store = runtime.store
    now = now or runtime.clock.now()
    rates = Rates(store)
    connectors: list[ConnectorStatus] = []
    for instance_id, instance in sorted(runtime.loaded.instances.items()):
        h = health.read(store, instance_id)
        bound = runtime.connectors.get(instance_id)
        caps = sorted(c.value for c in bound.connector.capabilities()) if bound else []
        connectors.append(
            ConnectorStatus(
                id=instance_id,
                type=instance.type,
                enabled=instance.enabled,
                capabilities=caps,
                last_poll_at=h.last_poll_at,
                last_success_at=h.last_success_at,
                cursor=h.cursor,
                last_error=h.last_error,
                last_error_at=h.last_error_at,
                unhealthy=h.unhealthy,
                description=instance.description,
                events_per_minute=round(rates.per_minute(EVENTS, instance_id, now=now), 2),
                details=details(bound.connector) if bound and instance.enabled else {},
            )
        )
    lrs_list: list[LrsStatus] = []
    for lrs in runtime.config.lrs:
        stats = store.outbox_stats(lrs.name, now=now)
        circuit = circuit_state(store, lrs.name)
        oldest = (
            (now - stats.oldest_enqueued_at).total_seconds() if stats.oldest_enqueued_at else None
        )
        lrs_list.append(
            LrsStatus(
                name=lrs.name,
                type=lrs.type,
                enabled=lrs.enabled,
                backlog=stats.ready,
                in_flight=stats.leased,
                oldest_waiting_seconds=oldest,
                paused=circuit is not None,
                paused_reason=circuit.reason if circuit else None,
                next_probe_at=circuit.probe_at if circuit else None,
                dead_letters=store.dlq_count(lrs=lrs.name),
                delivered_per_minute=round(rates.per_minute(DELIVERED, lrs.name, now=now), 2),
            )
        )
    letters = store.dlq_list(DeadLetterFilter(limit=recent))
    return HubStatus(
        generated_at=now,
        inbox_backlog=store.outbox_stats(INBOX, now=now).weight,  # events, not items
        connectors=connectors,
        lrs=lrs_list,
        dead_letters_total=store.dlq_count(),
        recent_dead_letters=[
            DeadLetterSummary(
                id=d.id,
                stage=d.stage,
                lrs=d.lrs,
                instance_id=d.instance_id,
                reason=d.reason,
                detail=d.detail[:300],
                last_at=d.last_at,
            )
            for d in letters
        ],
    )
