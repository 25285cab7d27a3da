"""`/metrics` of a running hub (issue 7 item 2): scraped from a real receiver after real worker
processes ran a small pipeline (signed webhooks → normalize → deliver to the local LRS).

The receiver and the prefork worker children are separate processes: their counters meet in
prometheus-client's multiprocess directory, and the receiver's `/metrics` merges them with its
own webhook counts and the gauges it reads from the store. The families of issue 7 item 2 must
all be listed, with values that match what the test did.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.hubproc import (
    Hub,
    free_port,
    send_events,
    session_event,
    signed,
    wait_until,
    write_hub,
)

pytestmark = pytest.mark.integration

GOOD = 5


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = write_hub(tmp_path, backend="sqlite", lrs=[{"name": "local", "type": "local"}])
    try:
        h.start_all("--pool", "prefork", "-c", "2")  # counters merged across children
        yield h
    finally:
        h.stop()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(hub: Hub | str) -> tuple[set[str], Samples]:
    """Family names (as the parser reports them) and every sample by (name, labels), from the
    hub's receiver or from another `/metrics` URL."""
    url = hub if isinstance(hub, str) else hub.url + "/metrics"
    text = httpx.get(url, timeout=10).text
    families: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_after_a_small_pipeline_run(hub: Hub) -> None:
    assert send_events(hub, range(GOOD), tag="metrics") == [202] * GOOD
    # One forged request (rejected) and one signed event the mapping cannot read (dead letter).
    body = json.dumps(session_event(99, "forged")).encode()
    forged = httpx.post(
        f"{hub.url}/webhooks/acme-coach",
        content=body,
        headers=signed(body, secret="not-the-secret"),
        timeout=10,
    )
    assert forged.status_code == 401
    broken = session_event(98, "broken")
    broken["data"]["session"]["ended_at"] = "not a date"
    body = json.dumps(broken).encode()
    accepted = httpx.post(
        f"{hub.url}/webhooks/acme-coach", content=body, headers=signed(body), timeout=10
    )
    assert accepted.status_code == 202

    def delivered() -> bool:
        _, samples = scrape(hub)
        return (value(samples, "lxhub_statements_delivered_total", lrs="local") or 0) >= GOOD

    wait_until(delivered, timeout=60, what=f"{GOOD} statements delivered to the local LRS")
    wait_until(
        lambda: (value(scrape(hub)[1], "lxhub_dead_letters", lrs="") or 0) >= 1,
        timeout=30,
        what="the unreadable event in the dead letters",
    )
    families, samples = scrape(hub)

    # Every family of issue 7 item 2 is listed.
    expected = {
        "lxhub_events_received",
        "lxhub_events_rejected",
        "lxhub_webhook_requests",
        "lxhub_events_duplicate",
        "lxhub_events_polled",
        "lxhub_events_unmapped",
        "lxhub_statements_produced",
        "lxhub_statements_delivered",
        "lxhub_statements_dead_lettered",
        "lxhub_outbox_depth",
        "lxhub_outbox_in_flight",
        "lxhub_outbox_oldest_age_seconds",
        "lxhub_inbox_depth",
        "lxhub_dead_letters",
        "lxhub_lrs_circuit_open",
        "lxhub_delivery_round_seconds",
        "lxhub_receipt_to_stored_seconds",
        "lxhub_poll_seconds",
        "lxhub_cursor_age_seconds",
    }
    assert expected <= families, f"missing: {sorted(expected - families)}"

    # Receiver (this process's own counts).
    assert value(samples, "lxhub_events_received_total", connector="acme-coach") == GOOD + 1
    assert (
        value(
            samples,
            "lxhub_events_rejected_total",
            connector="acme-coach",
            reason="invalid_signature",
        )
        == 1
    )
    assert value(samples, "lxhub_webhook_requests_total", connector="acme-coach") == GOOD + 2

    # Workers (other processes, merged through the multiprocess directory).
    assert value(samples, "lxhub_statements_produced_total", lrs="local") == GOOD
    assert value(samples, "lxhub_statements_delivered_total", lrs="local") == GOOD
    dead = [
        v for (name, labels), v in samples.items() if name == "lxhub_statements_dead_lettered_total"
    ]
    assert sum(dead) == 1
    assert value(samples, "lxhub_receipt_to_stored_seconds_count", lrs="local") == GOOD
    stored_sum = value(samples, "lxhub_receipt_to_stored_seconds_sum", lrs="local") or 0.0
    assert 0 < stored_sum < GOOD * 60  # each took well under a minute here
    assert value(samples, "lxhub_receipt_to_stored_seconds_bucket", lrs="local", le="+Inf") == GOOD
    rounds = value(samples, "lxhub_delivery_round_seconds_count", lrs="local") or 0
    assert 1 <= rounds <= GOOD

    # Gauges read from the store at scrape time.
    assert value(samples, "lxhub_outbox_depth", lrs="local") == 0
    assert value(samples, "lxhub_outbox_in_flight", lrs="local") == 0
    assert value(samples, "lxhub_outbox_oldest_age_seconds", lrs="local") == 0
    assert value(samples, "lxhub_inbox_depth") == 0
    assert value(samples, "lxhub_lrs_circuit_open", lrs="local") == 0
    assert value(samples, "lxhub_dead_letters", lrs="local") == 0
    assert value(samples, "lxhub_dead_letters", lrs="") == 1

    # No secret is ever part of the metrics.
    text = httpx.get(hub.url + "/metrics", timeout=10).text
    for secret in ("admin-token", "integration-secret"):
        assert secret not in text


def test_a_worker_on_another_machine_serves_its_own_counters(tmp_path: Path) -> None:
    """A worker with its own metrics directory (another machine) and `--metrics-port`: its
    counters are scraped from it, not from the receiver, and the store gauges only from the
    receiver (once, not once per worker)."""
    hub = write_hub(tmp_path, backend="sqlite", lrs=[{"name": "local", "type": "local"}])
    port = free_port()
    elsewhere = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "other-machine-metrics")}
    try:
        hub.start("serve", "--port", str(hub.port))
        hub.start("worker", "--metrics-port", str(port), env=elsewhere)
        hub.start("beat")
        wait_until(hub.ready, timeout=30, what="the receiver's /readyz")
        assert send_events(hub, range(GOOD), tag="remote") == [202] * GOOD
        worker = f"http://127.0.0.1:{port}/metrics"

        def delivered() -> bool:
            try:
                _, samples = scrape(worker)
            except httpx.HTTPError:
                return False  # not listening yet
            return value(samples, "lxhub_statements_delivered_total", lrs="local") == GOOD

        wait_until(delivered, timeout=60, what=f"{GOOD} delivered, counted by the worker")
        families, samples = scrape(worker)
        assert value(samples, "lxhub_statements_produced_total", lrs="local") == GOOD
        assert value(samples, "lxhub_receipt_to_stored_seconds_count", lrs="local") == GOOD
        assert "lxhub_outbox_depth" not in families  # store gauges: the receiver's job
        assert "lxhub_events_received" not in families  # webhook counts: the receiver's own
        # The receiver's machine never saw those counters; its gauges still see the store.
        _, on_web = scrape(hub)
        assert not value(on_web, "lxhub_statements_delivered_total", lrs="local")
        assert value(on_web, "lxhub_outbox_depth", lrs="local") == 0
        assert value(on_web, "lxhub_events_received_total", connector="acme-coach") == GOOD
        assert httpx.get(f"http://127.0.0.1:{port}/status", timeout=5).status_code == 404
    finally:
        hub.stop()
