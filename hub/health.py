"""Per-instance health records (last poll, cursor, last error) kept in the store for the status
page, `lxhub status` and metrics. Small JSON documents under the `health` namespace."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict

from hub.store.base import Store

NAMESPACE = "health"


class InstanceHealth(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    instance_id: str
    last_poll_at: AwareDatetime | None = None
    last_success_at: AwareDatetime | None = None
    last_error: str | None = None
    last_error_at: AwareDatetime | None = None
    last_page_events: int = 0
    cursor: str | None = None
    unhealthy: bool = False


def read(store: Store, instance_id: str) -> InstanceHealth:
    raw = store.kv_get(NAMESPACE, instance_id)
    if raw is None:
        return InstanceHealth(instance_id=instance_id)
    return InstanceHealth.model_validate_json(raw)


def _write(store: Store, health: InstanceHealth) -> None:
    store.kv_set(NAMESPACE, health.instance_id, health.model_dump_json())


def record_success(
    store: Store, instance_id: str, *, at: datetime, events: int, cursor: str | None
) -> None:
    old = read(store, instance_id)
    _write(
        store,
        old.model_copy(
            update={
                "last_poll_at": at,
                "last_success_at": at,
                "last_page_events": events,
                "cursor": cursor if cursor is not None else old.cursor,
                "unhealthy": False,
            }
        ),
    )


def record_error(
    store: Store,
    instance_id: str,
    *,
    at: datetime,
    error: str,
    unhealthy: bool = False,
    polled: bool = True,
) -> None:
    """`error` must already be free of secrets (exception messages of hub errors are).

    `polled=False` for an error outside a poll (maintenance): the last poll time stays what it
    was, so a webhook-only connector never shows a poll it did not make.
    """
    old = read(store, instance_id)
    update: dict[str, object] = {
        "last_error": error[:500],
        "last_error_at": at,
        "unhealthy": unhealthy or old.unhealthy,
    }
    if polled:
        update["last_poll_at"] = at
    _write(store, old.model_copy(update=update))
