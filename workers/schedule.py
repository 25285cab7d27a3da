"""The beat schedule, built from the enabled connector instances (one entry per polling
instance) plus the hub's own periodic flush and maintenance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.connector import Polling
from hub.runtime import HubRuntime


def build_beat_schedule(runtime: HubRuntime) -> dict[str, dict[str, Any]]:
    cfg = runtime.config
    schedule: dict[str, dict[str, Any]] = {
        # Drains the inbox and every outbox that has due items: guarantees a quiet source's last
        # partial batch still goes out after max_batch_wait, and retries come back on time.
        "hub.flush": {
            "task": "hub.flush",
            "schedule": timedelta(seconds=cfg.delivery.flush_interval),
            "options": {"expires": max(cfg.delivery.flush_interval * 5, 5.0)},
        },
        # Subscription renewals and other connector housekeeping.
        "hub.maintain": {
            "task": "hub.maintain",
            "schedule": timedelta(minutes=5),
            "options": {"expires": 240},
        },
    }
    for instance_id, bound in sorted(runtime.connectors.items()):
        if not (bound.enabled and bound.polls):
            continue
        connector = bound.connector
        default = connector.default_interval if isinstance(connector, Polling) else timedelta(0)
        every = (
            bound.config.schedule.effective_interval(default) if bound.config.schedule else default
        )
        schedule[f"poll:{instance_id}"] = {
            "task": "hub.poll_connector",
            "schedule": every,
            "args": (instance_id,),
            # A poll that could not start within its own interval is superseded by the next.
            "options": {"expires": max(every.total_seconds(), 5.0)},
        }
    return schedule
