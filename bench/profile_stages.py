"""Per-stage CPU profile of the hub, in one process, against real Redis (store DB 9).

    .venv/bin/python bench/profile_stages.py [--events 4000] [--per-request 50] [--top 25]

Runs the three stages the benchmark's processes run, one after the other, on the bench's
connector config: the receiver (`Receiver.receive` on signed requests), the normalizer
(`drain_inbox` until the inbox is empty) and the deliverer (`deliver_once` into an in-process
null LRS transport). Prints wall ms per event of each stage and, under cProfile, the functions
with the most cumulative time. It measures where CPU goes; `bench/run.py` measures the system.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402 - the bench's own config and traffic helpers
    BATCH_INSTANCE,
    SECRET,
    WEBHOOK_INSTANCE,
    batch_mapping,
    session_event,
    signed,
)

STORE_DB = 9


def write_config(root: Path) -> Path:
    cfg = root / "config"
    (cfg / "connectors").mkdir(parents=True)
    hub = {
        "base_iri": "https://lrs-hub.example.com/xapi",
        "data_dir": str(root / "data"),
        "store_url": f"redis://127.0.0.1:6379/{STORE_DB}",
        "lrs": [{"name": "bench", "endpoint": "http://null.invalid/xAPI/", "username": "hub",
                 "password": "x", "batch_size": 100, "max_batch_wait": 0.0}],
    }  # fmt: skip
    (cfg / "hub.yaml").write_text(yaml.safe_dump(hub))
    secrets = {"ACMECOACH_SECRET": SECRET}
    single = {"id": WEBHOOK_INSTANCE, "type": "webhook", "enabled": True,
              "settings": {"preset": "example-coaching", "tenant": "acme", "secrets": secrets}}
    batched = {"id": BATCH_INSTANCE, "type": "webhook", "enabled": True,
               "settings": {"mapping": batch_mapping(), "tenant": "acme", "secrets": secrets}}
    for conn in (single, batched):
        (cfg / "connectors" / f"{conn['id']}.yaml").write_text(yaml.safe_dump(conn))
    return cfg


def null_lrs(request: httpx.Request) -> httpx.Response:
    ids = [s["id"] for s in json.loads(request.content)]
    return httpx.Response(200, json=ids)


def redis_cpu(r: redis.Redis) -> float:
    """The Redis server's CPU seconds so far (user + system), from INFO."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


REDIS: redis.Redis | None = None


def timed(name: str, fn: Callable[[], int], events: int, top: int, profile: bool) -> float:
    prof = cProfile.Profile() if profile else None
    server0 = redis_cpu(REDIS) if REDIS is not None else 0.0
    started = time.process_time()
    wall = time.perf_counter()
    if prof:
        prof.enable()
    count = fn()
    if prof:
        prof.disable()
    cpu = time.process_time() - started
    wall = time.perf_counter() - wall
    server = (redis_cpu(REDIS) - server0) if REDIS is not None else 0.0
    print(f"\n== {name}: {count} done, {cpu * 1000 / events:.3f} ms CPU/event "
          f"({wall * 1000 / events:.3f} ms wall/event){' under cProfile' if prof else ''}; "
          f"Redis server {server * 1000 / events:.3f} ms CPU/event")
    if prof:
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out).sort_stats(os.environ.get("SORT", "cumulative"))
        stats.print_stats(top)
        if os.environ.get("CALLERS"):
            stats.print_callers(os.environ["CALLERS"])
        print("\n".join(out.getvalue().splitlines()[6:]))
    return cpu * 1000 / events


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--per-request", type=int, default=50)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the stages this many times (fresh Redis DB each time) and "
                        "print the lowest CPU per event of each: this machine is noisy")
    args = parser.parse_args()
    r = redis.Redis(host="127.0.0.1", port=6379, db=STORE_DB)
    r.flushdb()
    global REDIS
    REDIS = r

    from hub.delivery import deliver_once
    from hub.events import WebhookRequest
    from hub.pipeline import drain_inbox
    from hub.runtime import HubRuntime
    from hub.webhooks import Receiver, ReceiverInstance

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("LXHUB_CONFIG", None)
        rt = HubRuntime.from_config_dir(write_config(Path(tmp)))
        rt._transports["lrs:bench"] = httpx.MockTransport(null_lrs)
        receiver = Receiver(
            {i: ReceiverInstance(connector=b.connector, enabled=True)
             for i, b in rt.connectors.items()},
            store=rt.store, enqueuer=rt.inbox, clock=rt.clock,
        )  # fmt: skip
        per = args.per_request
        instance = WEBHOOK_INSTANCE if per == 1 else BATCH_INSTANCE
        requests = []
        now = int(time.time())
        for start in range(0, args.events, per):
            evs = [session_event(n, "p") for n in range(start, min(start + per, args.events))]
            body = json.dumps(evs[0] if per == 1 else {"events": evs}).encode()
            headers = {k.lower(): v for k, v in signed(body, now).items()}
            requests.append(WebhookRequest(
                method="POST", path=f"/webhooks/{instance}", headers=headers, body=body,
                received_at=datetime.now(UTC)))  # fmt: skip

        def receive() -> int:
            ok = 0
            for req in requests:
                ok += receiver.receive(instance, req).status < 300
            return ok

        def normalize() -> int:
            done = 0
            for _ in range(100_000):
                rep = drain_inbox(store=rt.store, clock=rt.clock, normalize_batch=rt.normalize,
                                  backoff=lambda a: 1.0)  # fmt: skip
                done += rep.leased
                if not rep.leased:
                    return done
            return done

        def deliver() -> int:
            client = rt.lrs_client("bench")
            done = 0
            for _ in range(100_000):
                rep = deliver_once(store=rt.store, lrs_name="bench", client=client,
                                   clock=rt.clock, batch_size=100, max_batch_wait=0.0,
                                   lease_seconds=60, retry_horizon=3600,
                                   rng=random.Random(1))  # fmt: skip
                done += rep.stored
                if not rep.requests:
                    return done
            return done

        prof = not args.no_profile
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            r.flushdb()
            for name, fn in (("receive", receive), ("normalize", normalize), ("deliver", deliver)):
                ms = timed(name, fn, args.events, args.top, prof)
                best[name] = min(best.get(name, ms), ms)
        if args.repeat > 1:
            print("\nlowest ms CPU/event: " + ", ".join(f"{k} {v:.3f}" for k, v in best.items()))
        rt.close()
    r.flushdb()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
