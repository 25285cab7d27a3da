"""Prometheus metrics: counters and histograms recorded where work happens, gauges computed from
the store at scrape time.

Workers are prefork processes, so counters and histograms use prometheus-client's multiprocess
mode when `PROMETHEUS_MULTIPROC_DIR` is set (the lxhub commands set it under the data dir);
`/metrics` then merges every process's values. Gauges that describe shared state (outbox depth,
oldest waiting statement, dead letters, circuit state, cursor age) are read from the store when
scraped, so they are right whichever process scrapes. Each `Metrics` owns its registry: nothing
registers itself globally at import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from hub.delivery import DeliveryReport
    from hub.pipeline import NormalizeReport, PollReport
    from hub.runtime import HubRuntime

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        # Imported here, not at module import: prometheus-client picks its multiprocess mode when
        # first imported, and the lxhub commands set PROMETHEUS_MULTIPROC_DIR after reading the
        # config (it lives under the data dir).
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_received = Counter(
            "lxhub_events_received", "Webhook events accepted and enqueued", ["connector"],
            registry=r)
        self.events_rejected = Counter(
            "lxhub_events_rejected", "Webhook requests rejected", ["connector", "reason"],
            registry=r)
        self.events_polled = Counter(
            "lxhub_events_polled", "Events fetched by polls", ["connector"], registry=r)
        self.events_unmapped = Counter(
            "lxhub_events_unmapped", "Events no mapping handles", ["event_type"], registry=r)
        self.statements_produced = Counter(
            "lxhub_statements_produced", "Statements appended to an LRS outbox", ["lrs"],
            registry=r)
        self.statements_delivered = Counter(
            "lxhub_statements_delivered", "Statements the LRS confirmed", ["lrs"], registry=r)
        self.statements_dead_lettered = Counter(
            "lxhub_statements_dead_lettered", "Items moved to the dead letters",
            ["lrs", "reason"], registry=r)
        self.delivery_seconds = Histogram(
            "lxhub_delivery_round_seconds", "Duration of one delivery round to an LRS", ["lrs"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.receipt_to_stored = Histogram(
            "lxhub_receipt_to_stored_seconds",
            "From the hub receiving a source event to the LRS confirming its statement",
            ["lrs"], buckets=LATENCY_BUCKETS, registry=r)
        self.poll_seconds = Histogram(
            "lxhub_poll_seconds", "Duration of one poll page", ["connector"],
            buckets=LATENCY_BUCKETS, registry=r)

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
        """The Prometheus text for `/metrics`: all processes' counters plus store gauges."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)
        else:
            registry.register(_Forward(self.registry))
        if runtime is not None:
            registry.register(StoreCollector(runtime))
        return generate_latest(registry)


class _Forward:
    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


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
        depth = GaugeMetricFamily("lxhub_outbox_depth", "Statements waiting per LRS", labels=["lrs"])
        leased = GaugeMetricFamily(
            "lxhub_outbox_in_flight", "Statements being delivered per LRS", labels=["lrs"])
        oldest = GaugeMetricFamily(
            "lxhub_outbox_oldest_age_seconds", "Age of the oldest waiting statement per LRS",
            labels=["lrs"])
        circuit = GaugeMetricFamily(
            "lxhub_lrs_circuit_open", "1 while an LRS is paused (401/403)", labels=["lrs"])
        dlq = GaugeMetricFamily(
            "lxhub_dead_letters", "Dead letters per LRS (empty label: before delivery)",
            labels=["lrs"])
        for lrs in rt.config.lrs:
            stats = rt.store.outbox_stats(lrs.name, now=now)
            depth.add_metric([lrs.name], stats.ready)
            leased.add_metric([lrs.name], stats.leased)
            age = (now - stats.oldest_enqueued_at).total_seconds() if stats.oldest_enqueued_at else 0
            oldest.add_metric([lrs.name], max(age, 0.0))
            circuit.add_metric([lrs.name], 1.0 if circuit_state(rt.store, lrs.name) else 0.0)
            dlq.add_metric([lrs.name], rt.store.dlq_count(lrs=lrs.name))
        dlq.add_metric([""], rt.store.dlq_count(stage="normalize") + rt.store.dlq_count(
            stage="identity") + rt.store.dlq_count(stage="ingest"))
        inbox = GaugeMetricFamily("lxhub_inbox_depth", "Raw events waiting to be normalized")
        from hub.inbox import INBOX

        inbox.add_metric([], rt.store.outbox_stats(INBOX, now=now).ready)
        cursor_age = GaugeMetricFamily(
            "lxhub_cursor_age_seconds", "Time since a connector's last successful poll",
            labels=["connector"])
        for instance_id, bound in rt.connectors.items():
            if bound.enabled and bound.polls:
                h = health.read(rt.store, instance_id)
                if h.last_success_at is not None:
                    cursor_age.add_metric(
                        [instance_id], (now - h.last_success_at).total_seconds())
        yield from (depth, leased, oldest, circuit, dlq, inbox, cursor_age)


