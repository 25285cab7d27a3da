"""The Celery app. `configure()` binds it to a validated hub configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from hub.runtime import HubRuntime
from workers import celeryconfig, state
from workers.schedule import build_beat_schedule

app = Celery(
    "lxhub",
    include=[
        "workers.tasks.normalize",
        "workers.tasks.delivery",
        "workers.tasks.polling",
    ],
)
app.config_from_object("workers.celeryconfig")


def configure(runtime: HubRuntime, *, factory: Callable[[], HubRuntime] | None = None) -> Celery:
    """Point the app at the runtime's broker and schedule; install the runtime for tasks."""
    cfg = runtime.config
    app.conf.broker_url = cfg.effective_broker_url
    options: dict[str, float] = dict(celeryconfig.broker_transport_options)
    if cfg.effective_broker_url.startswith("sqla+"):
        # kombu's SQLAlchemy transport polls its table; 1 s (the default) would add a second of
        # latency to every hop on the embedded default. Our subclass keeps the option away from
        # SQLAlchemy (see workers/embedded.py).
        options["polling_interval"] = 0.1
        app.conf.broker_transport = "workers.embedded:Transport"
        app.conf.broker_url = cfg.effective_broker_url.removeprefix("sqla+")
    app.conf.broker_transport_options = options
    app.conf.beat_schedule = build_beat_schedule(runtime)
    state.install(factory or (lambda: runtime), runtime)
    return app


@worker_process_init.connect
def _fresh_runtime_per_child(**_: Any) -> None:
    state.reset_after_fork()
