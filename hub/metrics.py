"""Prometheus metrics: counters and histograms recorded where work happens, gauges computed from
the store at scrape time; and the per-minute rates of the status page.

Workers are prefork processes, so counters and histograms use prometheus-client's multiprocess
mode when `PROMETHEUS_MULTIPROC_DIR` is set (the lxhub commands set it under the data dir);
`/metrics` then merges every process's values. Gauges that describe shared state (outbox depth,
oldest waiting statement, dead letters, circuit state, cursor age) are read from the store when
scraped, so they are right whichever process scrapes. Each `Metrics` owns its registry: nothing
registers itself globally at import.

Webhook counts (`lxhub_events_received_total`, `lxhub_events_rejected_total`, ...) come from the
receiver's own `ReceiverStats` of the process that serves `/metrics` (the receiver), so they
need no recording call.

Rates (`Rates`, `record_events`, `record_delivered`): the status page shows events/min per
connector and delivered/min per LRS. Those must be right whichever process asks and however many
machines run workers, so they live in the hub's store, not in a process: one cumulative counter
per name (`Store.incr`, atomic on both backends) plus, per minute, a mark of the counter's value
before the first increment of that minute (kv with a TTL, claimed once with `mark_seen`). The
rate is (counter now - the oldest mark in the window) / the time since that mark: a trailing
average over the last `RATE_WINDOW_MINUTES`, costing two or three store calls per batch.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from hub.delivery import DeliveryReport
    from hub.events import SourceEvent
    from hub.pipeline import NormalizeReport, PollReport
    from hub.runtime import HubRuntime
    from hub.store.base import Store
    from hub.webhooks import ReceiverStats

logger = logging.getLogger(__name__)

EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Media type of the Prometheus text format, for every `/metrics` the hub serves."""

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 1800, 3600)


class Metrics:
    """The counters and histograms one process records, and the `/metrics` exposition."""

    def __init__(self) -> None:
        # Imported here, not at module import: prometheus-client picks its multiprocess mode when
        # first imported, and the lxhub commands set PROMETHEUS_MULTIPROC_DIR after reading the
        # config (it lives under the data dir).
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Webhook counts are not here: `ReceiverCollector` reads the receiver's own stats.
        self.events_polled = Counter(
            "lxhub_events_polled", "Events fetched by polls", ["connector"], registry=r
        )
        self.events_unmapped = Counter(
            "lxhub_events_unmapped", "Events no mapping handles", ["event_type"], registry=r
        )
        self.statements_produced = Counter(
            "lxhub_statements_produced", "Statements appended to an LRS outbox", ["lrs"], registry=r
        )
        self.statements_delivered = Counter(
            "lxhub_statements_delivered", "Statements the LRS confirmed", ["lrs"], registry=r
        )
        self.statements_dead_lettered = Counter(
            "lxhub_statements_dead_lettered",
            "Items moved to the dead letters",
            ["lrs", "reason"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "lxhub_delivery_round_seconds",
            "Duration of one delivery round to an LRS",
            ["lrs"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.receipt_to_stored = Histogram(
            "lxhub_receipt_to_stored_seconds",
            "From the hub receiving a source event to the LRS confirming its statement",
            ["lrs"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.poll_seconds = Histogram(
            "lxhub_poll_seconds",
            "Duration of one poll page",
            ["connector"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def record_normalize(self, report: NormalizeReport) -> None:
        for lrs, n in report.produced.items():
            self.statements_produced.labels(lrs).inc(n)
        for event_type, n in report.unmapped.items():
            self.events_unmapped.labels(event_type).inc(n)
        for reason, n in report.dead_lettered.items():
            self.statements_dead_lettered.labels("", reason).inc(n)

    def record_delivery(
        self, report: DeliveryReport, *, now: datetime, seconds: float | None = None
    ) -> None:
        if report.stored:
            self.statements_delivered.labels(report.lrs).inc(report.stored)
        if report.dead_lettered:
            self.statements_dead_lettered.labels(report.lrs, "delivery").inc(report.dead_lettered)
        hist = self.receipt_to_stored.labels(report.lrs)
        for received in report.stored_received_at:
            hist.observe(max((now - received).total_seconds(), 0.0))
        if seconds is not None and report.requests:
            self.delivery_seconds.labels(report.lrs).observe(seconds)

    def record_poll(self, report: PollReport, *, now: datetime) -> None:
        self.poll_seconds.labels(report.instance_id).observe(report.seconds)
        if report.events:
            self.events_polled.labels(report.instance_id).inc(report.events)

    def record_outboxes(self, runtime: HubRuntime, *, now: datetime) -> None:
        """Outbox gauges are computed at scrape time (`StoreCollector`); nothing to push."""
        return None

    def exposition(self, runtime: HubRuntime | None = None) -> bytes:
        """The Prometheus text for `/metrics`: all processes' counters, the receiver's webhook
        counts (when this process receives) and the store gauges."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            registry.register(_Complete(merged, declared=self.registry))
        else:
            registry.register(_Forward(self.registry))
        if runtime is not None:
            registry.register(StoreCollector(runtime))
            if runtime.receiver_stats is not None:
                registry.register(ReceiverCollector(runtime.receiver_stats))
        return generate_latest(registry)


class _Forward:
    """Exposes one process's own registry (no multiprocess directory configured)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class _Complete:
    """The merged multiprocess values, plus an empty family (HELP and TYPE only) for every
    declared metric no process has recorded yet, so `/metrics` always lists the same families
    (multiprocess mode only writes a metric once a process touched it)."""

    def __init__(self, merged: CollectorRegistry, *, declared: CollectorRegistry) -> None:
        self._merged = merged
        self._declared = declared

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import Metric as Family

        seen: set[str] = set()
        for family in self._merged.collect():
            seen.add(family.name.removesuffix("_total"))
            yield family
        for family in self._declared.collect():
            if family.name.removesuffix("_total") not in seen:
                yield Family(family.name, family.documentation, family.type, family.unit)


class StoreCollector:
    """Gauges read from the hub's store when scraped."""

    def __init__(self, runtime: HubRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from hub import health
        from hub.delivery import circuit_state

        rt = self.runtime
        now = rt.clock.now()
        depth = GaugeMetricFamily(
            "lxhub_outbox_depth", "Statements waiting per LRS", labels=["lrs"]
        )
        leased = GaugeMetricFamily(
            "lxhub_outbox_in_flight", "Statements being delivered per LRS", labels=["lrs"]
        )
        oldest = GaugeMetricFamily(
            "lxhub_outbox_oldest_age_seconds",
            "Age of the oldest waiting statement per LRS",
            labels=["lrs"],
        )
        circuit = GaugeMetricFamily(
            "lxhub_lrs_circuit_open", "1 while an LRS is paused (401/403)", labels=["lrs"]
        )
        dlq = GaugeMetricFamily(
            "lxhub_dead_letters",
            "Dead letters per LRS (empty label: before delivery)",
            labels=["lrs"],
        )
        for lrs in rt.config.lrs:
            stats = rt.store.outbox_stats(lrs.name, now=now)
            depth.add_metric([lrs.name], stats.ready)
            leased.add_metric([lrs.name], stats.leased)
            oldest_at = stats.oldest_enqueued_at
            age = (now - oldest_at).total_seconds() if oldest_at is not None else 0.0
            oldest.add_metric([lrs.name], max(age, 0.0))
            circuit.add_metric([lrs.name], 1.0 if circuit_state(rt.store, lrs.name) else 0.0)
            dlq.add_metric([lrs.name], rt.store.dlq_count(lrs=lrs.name))
        dlq.add_metric(
            [""],
            rt.store.dlq_count(stage="normalize")
            + rt.store.dlq_count(stage="identity")
            + rt.store.dlq_count(stage="ingest"),
        )
        inbox = GaugeMetricFamily("lxhub_inbox_depth", "Raw events held for normalizing")
        from hub.inbox import INBOX

        inbox.add_metric([], rt.store.outbox_stats(INBOX, now=now).weight)
        cursor_age = GaugeMetricFamily(
            "lxhub_cursor_age_seconds",
            "Time since a connector's last successful poll",
            labels=["connector"],
        )
        for instance_id, bound in rt.connectors.items():
            if bound.enabled and bound.polls:
                h = health.read(rt.store, instance_id)
                if h.last_success_at is not None:
                    cursor_age.add_metric([instance_id], (now - h.last_success_at).total_seconds())
        yield from (depth, leased, oldest, circuit, dlq, inbox, cursor_age)


class ReceiverCollector:
    """The web receiver's per-instance counts (`hub.webhooks.ReceiverStats`) as counters.

    They count since this receiver process started, as Prometheus counters do; `rate()` and
    `increase()` handle the reset of a restart.
    """

    def __init__(self, stats: ReceiverStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        snap = self.stats.snapshot()
        received = CounterMetricFamily(
            "lxhub_events_received",
            "Webhook events accepted and durably enqueued",
            labels=["connector"],
        )
        for instance, n in sorted(snap.enqueued.items()):
            received.add_metric([instance], n)
        requests = CounterMetricFamily(
            "lxhub_webhook_requests",
            "Webhook requests received (before any check)",
            labels=["connector"],
        )
        for instance, n in sorted(snap.received.items()):
            requests.add_metric([instance], n)
        rejected = CounterMetricFamily(
            "lxhub_events_rejected",
            "Webhook requests refused, by reason",
            labels=["connector", "reason"],
        )
        for (instance, reason), n in sorted(snap.rejected.items()):
            rejected.add_metric([instance, str(reason)], n)
        duplicates = CounterMetricFamily(
            "lxhub_events_duplicate",
            "Events dropped as a repeated delivery of the source",
            labels=["connector"],
        )
        for instance, n in sorted(snap.duplicates.items()):
            duplicates.add_metric([instance], n)
        yield from (received, requests, rejected, duplicates)


# -- per-minute rates shared through the store ---------------------------------------------------

RATE_WINDOW_MINUTES = 5
"""The status page's events/min and delivered/min are averages over this trailing window."""

RATE_COUNTERS = "rate"
"""`Store.incr` namespace of the cumulative totals (key: ``{kind}:{name}``)."""

RATE_MARKS = "rate-mark"
"""kv / `mark_seen` namespace of the per-minute marks (key: ``{kind}:{name}:{epoch minute}``)."""

EVENTS = "events"
"""Rate kind: raw events normalized, per connector instance."""

DELIVERED = "delivered"
"""Rate kind: statements the LRS confirmed, per LRS."""


class Rates:
    """Per-minute rates kept in the hub's store, so every process and machine shares them."""

    def __init__(self, store: Store, *, window_minutes: int = RATE_WINDOW_MINUTES) -> None:
        if window_minutes < 1:
            raise ValueError("window_minutes must be at least 1")
        self.store = store
        self.window = window_minutes
        # A mark must outlive the window it may start; a couple of minutes more for clock skew.
        self._ttl = window_minutes * 60.0 + 120.0

    def add(self, kind: str, name: str, n: int, *, now: datetime) -> None:
        """Count `n` more of `kind` for `name` (e.g. 40 events of connector `docebo-main`)."""
        if n <= 0:
            return
        key = f"{kind}:{name}"
        total = self.store.incr(RATE_COUNTERS, key, n)
        mark = f"{key}:{_minute(now)}"
        if self.store.mark_seen(RATE_MARKS, mark, ttl_seconds=self._ttl):
            doc = {"total": total - n, "at": now.timestamp()}
            self.store.kv_set(RATE_MARKS, mark, json.dumps(doc), ttl_seconds=self._ttl)

    def per_minute(self, kind: str, name: str, *, now: datetime) -> float:
        """The trailing average per minute over the window (0.0 when nothing happened)."""
        key = f"{kind}:{name}"
        current = _minute(now)
        start: dict[str, float] | None = None
        for minute in range(current - self.window + 1, current + 1):
            raw = self.store.kv_get(RATE_MARKS, f"{key}:{minute}")
            if raw is None:
                continue
            try:
                doc = json.loads(raw)
                start = {"total": float(doc["total"]), "at": float(doc["at"])}
            except (ValueError, KeyError, TypeError):
                continue
            break
        if start is None:
            return 0.0
        total = self.store.incr(RATE_COUNTERS, key, 0)
        seconds = max(now.timestamp() - start["at"], 60.0)
        return max(total - start["total"], 0.0) * 60.0 / seconds


def _minute(at: datetime) -> int:
    return int(at.timestamp() // 60)


def record_events(store: Store, events: Sequence[SourceEvent], *, now: datetime) -> None:
    """Hook for the normalize task: count the events it normalized, per connector instance.

    Best effort: a store hiccup here is logged, never raised (the work itself is done).
    """
    try:
        rates = Rates(store)
        for instance_id, n in Tally(e.instance_id for e in events).items():
            rates.add(EVENTS, instance_id, n, now=now)
    except Exception as exc:
        logger.warning("could not record event rates: %s", type(exc).__name__)


def record_delivered(store: Store, report: DeliveryReport, *, now: datetime) -> None:
    """Hook for the delivery task: count the statements one round stored in its LRS.

    Best effort: a store hiccup here is logged, never raised (the work itself is done).
    """
    if not report.stored:
        return
    try:
        Rates(store).add(DELIVERED, report.lrs, report.stored, now=now)
    except Exception as exc:
        logger.warning(
            "could not record delivery rates: %s", type(exc).__name__, extra={"lrs": report.lrs}
        )
