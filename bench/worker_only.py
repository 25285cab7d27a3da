"""One worker process on a full inbox, with no scheduler: throughput, CPU and stalls.

    .venv/bin/python bench/worker_only.py [--events 20000] [--runs 3] [--worker-args "..."]

The inbox is filled in this process (the real `Receiver` on signed 50-event requests, Redis
store DB 11), then ONE `lxhub worker` starts against the null LRS and drains it; no `lxhub beat`
runs, so nothing but the worker's own kicks and follow-ups moves the work. Per run it prints the
statements per second after the first arrival, the worker's CPU per statement, and the longest
gap between two arrivals: a lost kick shows as a gap of many seconds (before the kick fix of
2026-11-28, 3 of 6 runs left the last 400 statements waiting about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402 - the bench's processes, config and traffic helpers

PER_REQUEST = 50


def preload(hub: bench.Hub, n_events: int, tag: str) -> None:
    """Receive `n_events` signed webhook events in-process and kick the normalizer once."""
    os.environ.update(hub.env)
    from hub.events import WebhookRequest
    from hub.runtime import HubRuntime
    from hub.webhooks import Receiver, ReceiverInstance
    from workers.app import app, configure

    rt = HubRuntime.from_config_dir(hub.config_dir)
    configure(rt)
    instances = {i: ReceiverInstance(connector=b.connector, enabled=True)
                 for i, b in rt.connectors.items()}  # fmt: skip
    receiver = Receiver(instances, store=rt.store, enqueuer=rt.inbox, clock=rt.clock)
    now = int(time.time())
    for start in range(0, n_events, PER_REQUEST):
        events = [bench.session_event(n, tag) for n in range(start, min(start + PER_REQUEST,
                                                                         n_events))]  # fmt: skip
        body = json.dumps({"events": events}).encode()
        headers = {k.lower(): v for k, v in bench.signed(body, now).items()}
        request = WebhookRequest(
            method="POST",
            path=f"/webhooks/{bench.BATCH_INSTANCE}",
            headers=headers,
            body=body,
            received_at=datetime.now(UTC),
        )
        answer = receiver.receive(bench.BATCH_INSTANCE, request)
        if answer.status >= 300:
            raise RuntimeError(f"the receiver answered {answer.status} while preloading")
    app.send_task("hub.normalize_events")
    rt.close()


def one_run(work: Path, null: bench.Lrs, n_events: int, worker_args: list[str], tag: str) -> str:
    sampler = bench.Sampler()
    arrivals = bench.Arrivals(null)
    cli, _ = bench.launcher()
    hub = bench.Hub(work, null, bench.HubOptions(), cli, sampler)
    bench.flush_redis()
    try:
        preload(hub, n_events, tag)
        started = time.monotonic()
        hub._start("worker", *worker_args, command="worker")
        pid = hub.procs["worker"].pid
        while arrivals.count(tag) == 0:
            arrivals.poll()
            time.sleep(0.01)
            if time.monotonic() - started > 60:
                tail = hub.procs["worker"].tail()
                raise RuntimeError(f"no statement arrived within 60 s:\n{tail}")
        first = time.monotonic()
        cpu0 = bench.usage(pid).cpu_ticks
        first_count = arrivals.count(tag)
        deadline = first + 600
        while arrivals.count(tag) < n_events and time.monotonic() < deadline:
            time.sleep(0.05)
            arrivals.poll()
        done = time.monotonic()
        cpu = (bench.usage(pid).cpu_ticks - cpu0) / os.sysconf("SC_CLK_TCK")
        stored = sorted(arrivals.seen.get(tag, {}).values())
        gap = max((b - a for a, b in zip(stored, stored[1:], strict=False)), default=0.0)
        n = arrivals.count(tag) - first_count
        return (
            f"{arrivals.count(tag)}/{n_events} stored; {n / (done - first):,.0f} st/s after the "
            f"first arrival ({first - started:.2f} s after start); worker CPU "
            f"{1000 * cpu / max(n, 1):.3f} ms/statement; longest gap between arrivals {gap:.2f} s"
        )
    finally:
        for proc in hub.procs.values():
            proc.stop()
        arrivals.close()
        sampler.close()
        bench.flush_redis()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker-args", default="--pool threads -c 8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lxhub-worker-only-") as tmp:
        null = bench.start_null_lrs(Path(tmp), keep_bodies=10)
        try:
            for run in range(args.runs):
                tag = f"wo{run}x{int(time.time()) % 10000}"
                work = Path(tmp) / f"hub{run}"
                line = one_run(work, null, args.events, args.worker_args.split(), tag=tag)
                print(f"run {run + 1}: {line}", flush=True)
        finally:
            null.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
