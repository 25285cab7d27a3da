"""The process commands of `lxhub`: `up`, `serve`, `worker`, `beat`, `healthcheck`.

They live in `workers` (which may import Celery and the task modules) and reach the `lxhub`
command through the `lxhub.commands` entry point, so `hub` never imports `workers`.

Every command loads and validates the config first, with the same code `lxhub config check`
runs: a bad config stops the service with `file: key: message` lines and exit status 1.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from hub.commands import CliState
from hub.logs import setup_logging
from hub.runtime import HubRuntime

logger = logging.getLogger(__name__)

THREADS = 8
"""Default threads of a worker. One process per worker is the default shape: the tasks wait on
Redis and the LRSs most of the time, normalizing takes at most one core per process anyway (the
GIL; see workers/gate.py), and one process is a third of the memory of a prefork
parent with two children (bench/RESULTS.md). Scale with more worker processes or containers."""

GIL_SWITCH_SECONDS = 0.001

GC_YOUNG_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default is 700)."""


def _tune_gc() -> None:
    """Fewer, cheaper cyclic-garbage collections for a long-running service.

    Everything loaded at startup (Celery, pydantic's schemas, the connectors) lives for the
    whole process; `gc.freeze()` moves it out of the collector's sight, and a higher young
    threshold stops the collector from walking the heap every 700 allocations while a batch is
    mapped (each statement allocates hundreds of short-lived objects that reference counting
    frees anyway). Measured: about a quarter of mapping time went to collections.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _runtime(state: CliState) -> HubRuntime:
    rt = HubRuntime.from_config_dir(state.config_dir)
    setup_logging(level=rt.config.log_level, fmt=rt.config.log_format)
    return rt


def _metrics_dir(rt: HubRuntime, *, wipe: bool = False) -> None:
    """prometheus-client multiprocess mode: every process writes its values under one dir."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(rt.config.data_dir) / "metrics")
    if wipe and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def _configure_celery(rt: HubRuntime) -> Any:
    from workers.app import configure
    from workers.kicks import kick

    app = configure(rt, factory=lambda: HubRuntime.from_config_dir(rt.loaded.config_dir))

    def send(task: str, args: tuple[str, ...]) -> None:
        kick(rt.store, task, args)

    rt.kick = send
    return app


def _broker_ping(app: Any) -> bool:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return True


@click.command("serve")
@click.option("--host", default=None, help="Listen address (default: web.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: web.port).")
@click.pass_obj
def serve_cmd(state: CliState, host: str | None, port: int | None) -> None:
    """Run the web receiver (webhooks, health, metrics, status page)."""
    from hub.web import serve
    from hub.webapp import build_app

    rt = _runtime(state)
    _metrics_dir(rt)
    app = _configure_celery(rt)
    web = build_app(rt, broker_ping=lambda: _broker_ping(app))
    h, p = host or rt.config.web.host, port or rt.config.web.port
    logger.info("lxhub web receiver on http://%s:%s", h, p)
    _tune_gc()
    serve(web, h, p)


@click.command("worker")
@click.option(
    "--queues",
    "-Q",
    default="poll,ingest,deliver",
    show_default=True,
    help="Comma-separated queues to consume (scale them apart if you like).",
)
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=None,
    help=f"Threads (default {THREADS}) or, with --pool prefork, processes (default: CPUs).",
)
@click.option(
    "--pool",
    default="threads",
    show_default=True,
    type=click.Choice(["threads", "prefork", "solo"]),
    help="threads: one process (scale with more workers); prefork: a process per slot.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="LXHUB_METRICS_PORT",
    help="Serve this machine's counters at GET /metrics on this port (for worker machines "
    "without a web container; off by default).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    envvar="LXHUB_METRICS_HOST",
    help="Listen address of --metrics-port (0.0.0.0 in a container; keep it internal).",
)
@click.pass_obj
def worker_cmd(
    state: CliState,
    queues: str,
    concurrency: int | None,
    pool: str,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run a Celery worker for this hub."""
    rt = _runtime(state)
    _metrics_dir(rt)
    if metrics_port is not None:
        from workers.metrics_http import MetricsServer

        try:
            # The first scrape builds the metrics (after _metrics_dir chose their directory).
            server = MetricsServer(
                lambda: rt.metrics.exposition(), host=metrics_host, port=metrics_port
            )
        except OSError as exc:
            raise click.ClickException(
                f"--metrics-port: cannot listen on {metrics_host}:{metrics_port} ({exc.strerror});"
                " choose a free port or leave the option out"
            ) from None
        host, port = server.start().address
        logger.info("worker metrics on http://%s:%s/metrics", host, port)
    app = _configure_celery(rt)
    from workers.heartbeat import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)
    argv = [
        "worker",
        f"--queues={queues}",
        f"--pool={pool}",
        f"--hostname=lxhub-{os.getpid()}@{socket.gethostname()}",
        f"--loglevel={rt.config.log_level}",
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency or pool == "threads":
        argv.append(f"--concurrency={concurrency or THREADS}")
    _tune_gc()
    if pool == "threads":
        # Deliveries and polls wait on I/O next to CPU-bound normalizing threads; each time a
        # response arrives they need the GIL back, and at the default 5 ms switch interval a
        # delivery round (lease, POST, acknowledge) can wait for the GIL about as long as for
        # the LRS itself.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
    app.worker_main(argv=argv)


@click.command("beat")
@click.pass_obj
def beat_cmd(state: CliState) -> None:
    """Run the scheduler (polls, flushes, upkeep); a second one only stands by."""
    rt = _runtime(state)
    app = _configure_celery(rt)
    from workers.beat import LockedScheduler

    schedule = Path(rt.config.data_dir) / "beat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.Beat(scheduler=LockedScheduler, schedule=str(schedule), loglevel=rt.config.log_level).run()


@click.command("up")
@click.option(
    "--concurrency", "-c", type=int, default=THREADS, show_default=True, help="Worker threads."
)
@click.pass_obj
def up_cmd(state: CliState, concurrency: int) -> None:
    """Run everything (receiver, worker, scheduler) in one process tree.

    On the embedded default (no Redis configured) broker and state are SQLite files under the
    data directory. Ctrl-C or SIGTERM shuts down cleanly: queued work stays in the store.
    """
    rt = _runtime(state)
    _metrics_dir(rt, wipe=True)
    cfg = rt.config
    Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "hub.cli", "--config", str(rt.loaded.config_dir)]
    env = dict(os.environ)
    # Our own interpreter and module with fixed arguments: nothing user-controlled is executed.
    children = {
        "web": subprocess.Popen([*base, "serve"], env=env),  # noqa: S603
        "worker": subprocess.Popen(  # noqa: S603
            [*base, "worker", "--pool", "threads", "-c", str(concurrency)], env=env
        ),
        "beat": subprocess.Popen([*base, "beat"], env=env),  # noqa: S603
    }
    click.echo(
        f"lxhub is up: receiver on http://{cfg.web.host}:{cfg.web.port}/  "
        f"(broker: {_scheme(cfg.effective_broker_url)}, store: {_scheme(cfg.effective_store_url)})"
        "\nPress Ctrl-C to stop."
    )
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                click.echo(
                    f"lxhub {name} exited with status {proc.returncode}; stopping the rest",
                    err=True,
                )
                stopping, code = True, 1
                break
        time.sleep(0.5)
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
    deadline = time.monotonic() + 30
    for proc in children.values():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
    click.echo("lxhub stopped; queued work is kept in the store and resumes on the next start.")
    sys.exit(code)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0]


@click.command("healthcheck")
@click.option("--role", type=click.Choice(["web", "worker", "beat"]), required=True)
@click.pass_obj
def healthcheck_cmd(state: CliState, role: str) -> None:
    """Exit 0 when this container's role is alive (for Docker health checks)."""
    import httpx

    rt = HubRuntime.from_config_dir(state.config_dir)
    if role == "web":
        url = f"http://127.0.0.1:{rt.config.web.port}/healthz"
        ok = httpx.get(url, timeout=3).status_code == 200
    else:
        from workers.heartbeat import NAMESPACE, beat_key

        ok = rt.store.kv_get(NAMESPACE, beat_key(role)) is not None
    if not ok:
        click.echo(f"{role} is not healthy", err=True)
        sys.exit(1)
    click.echo(f"{role} ok")


COMMANDS = (serve_cmd, worker_cmd, beat_cmd, up_cmd, healthcheck_cmd)
