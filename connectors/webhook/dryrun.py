"""Dry run: what a request body would become, without queueing or sending anything.

The core of the dry-run endpoint and of ``hub mapping test`` (vendors.md 7.6 H): parse the body
as the receiver would, map every item with a caller-supplied actor resolver, and report per item
its event type, delivery id and outcome (statements, unmapped, or the error that would send it to
the dead-letter queue). Verification is not run: a dry run is for mapping authors holding
fixtures, not signed requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.webhook.connector import GenericWebhookConnector
from hub import ActorResolver, HubError, MappingContext, Unmapped, WebhookRequest
from hub.xapi import validate_statement

__all__ = ["DryRunItem", "dry_run", "mapping_context"]


@dataclass(frozen=True)
class DryRunItem:
    """The fate of one item of the body."""

    event_type: str
    delivery_id: str | None
    outcome: Literal["statements", "unmapped", "error"]
    statements: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def mapping_context(
    connector: GenericWebhookConnector, event: Any, *, base_iri: str, actors: ActorResolver
) -> MappingContext:
    """The MappingContext the pipeline builds for this connector instance."""
    return MappingContext.for_connector(connector, event, base_iri=base_iri, actors=actors)


def dry_run(
    connector: GenericWebhookConnector,
    request: WebhookRequest,
    *,
    base_iri: str,
    actors: ActorResolver,
) -> list[DryRunItem]:
    """Parse and map ``request``; BadRequest from parsing propagates (the body is unusable)."""
    items: list[DryRunItem] = []
    for event in connector.parse(request):
        ctx = mapping_context(connector, event, base_iri=base_iri, actors=actors)
        try:
            result = connector.map(event, ctx)
        except HubError as exc:  # MappingError, UnresolvedActor: what would be dead-lettered
            items.append(DryRunItem(event.event_type, event.delivery_id, "error", error=f"{exc}"))
            continue
        if isinstance(result, Unmapped):
            items.append(DryRunItem(event.event_type, event.delivery_id, "unmapped"))
            continue
        # The pipeline validates every statement before it is queued; so does the dry run.
        problems = [
            f"statements[{i}]: {issue}"
            for i, statement in enumerate(result)
            for issue in validate_statement(statement, now=event.received_at, hub_rules=True)
        ]
        if problems:
            error = "invalid statement: " + "; ".join(problems[:5])
            items.append(DryRunItem(event.event_type, event.delivery_id, "error", error=error))
        else:
            dumped = [s.to_json() for s in result]
            items.append(DryRunItem(event.event_type, event.delivery_id, "statements", dumped))
    return items
