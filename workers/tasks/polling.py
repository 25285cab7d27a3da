"""`hub.poll_connector(instance_id)`: one page per task; `hub.maintain`: connector upkeep."""

from __future__ import annotations

import logging
import random
from typing import Any

from hub import health
from hub.backoff import full_jitter
from hub.errors import ConfigError, PermanentError, RateLimited, TransientError
from hub.pipeline import run_maintain, run_poll
from workers import state
from workers.app import app
from workers.celeryconfig import MAX_COUNTDOWN

logger = logging.getLogger(__name__)

MAX_TRANSIENT_RETRIES = 8


@app.task(name="hub.poll_connector", bind=True, max_retries=None)
def poll_connector(self: Any, instance_id: str) -> int:
    rt = state.runtime()
    bound = rt.enabled_instance(instance_id)
    if bound is None or not bound.polls:
        logger.warning(
            "not polling %s: no enabled polling instance by that id",
            instance_id,
            extra={"instance": instance_id},
        )
        return 0
    now = rt.clock.now()
    try:
        report = run_poll(bound, store=rt.store, enqueuer=rt.inbox, clock=rt.clock)
    except RateLimited as exc:
        # The source said when; Celery waits (never time.sleep in a task).
        raise self.retry(countdown=min(max(exc.retry_after, 1.0), MAX_COUNTDOWN)) from None
    except TransientError as exc:
        if self.request.retries >= MAX_TRANSIENT_RETRIES:
            logger.error(
                "poll of %s still failing, next scheduled poll will try again: %s",
                instance_id,
                exc,
                extra={"instance": instance_id},
            )
            return 0
        rng = random.Random()  # noqa: S311 (jitter, not security)
        countdown = full_jitter(self.request.retries + 1, base=5.0, cap=MAX_COUNTDOWN, rng=rng)
        raise self.retry(countdown=countdown) from None
    except ConfigError as exc:
        health.record_error(
            rt.store, instance_id, at=now, error=f"ConfigError: {exc}", unhealthy=True
        )
        logger.error(
            "connector %s needs attention (credentials or settings): %s",
            instance_id,
            exc,
            extra={"instance": instance_id},
        )
        return 0
    except PermanentError as exc:
        logger.error(
            "poll of %s failed permanently: %s", instance_id, exc, extra={"instance": instance_id}
        )
        return 0
    rt.metrics.record_poll(report, now=now)
    if report.has_more:
        # The next page is its own small task (Celery's granularity advice).
        poll_connector.apply_async((instance_id,))
    return report.events


@app.task(name="hub.maintain")
def maintain() -> None:
    rt = state.runtime()
    for instance_id, bound in rt.connectors.items():
        if not bound.enabled:
            continue
        try:
            found = run_maintain(bound, enqueuer=rt.inbox)
            if found:
                logger.info("maintenance of %s found %d event(s)", instance_id, found,
                            extra={"instance": instance_id})  # fmt: skip
        except Exception as exc:  # one connector's upkeep must not stop the others'
            health.record_error(
                rt.store,
                instance_id,
                at=rt.clock.now(),
                error=f"maintenance: {type(exc).__name__}: {exc}",
                polled=False,
            )
            logger.exception(
                "maintenance of %s failed", instance_id, extra={"instance": instance_id}
            )
