"""The lxhub benchmark: real receiver, real Redis, real worker processes, real and null LRSs.

    .venv/bin/python bench/run.py            # full run (about 6-8 minutes), appends to RESULTS.md
    .venv/bin/python bench/run.py --quick    # smoke run (under 2 minutes), also appended

What runs (see bench/README.md for the definitions of every figure):

* `lxhub serve`, `lxhub worker -c 2`, `lxhub beat` as separate processes on Redis DBs 10 (broker)
  and 11 (store), both flushed before and after every scenario;
* LRS (b), the null LRS (`bench/nulllrs.py`): fixed rate 200 req/s (one event per request), full
  speed one event per request, full speed 50 events per request (a bench-only inline mapping
  with ``items: "events"``); then direct batched POSTs and one-per-request POSTs of the same
  statements straight into it;
* LRS (a), Learning Locker's statement service (in memory, fresh instance per measurement): the
  same fixed-rate and full-speed phases, and the same two direct-POST baselines.

Bounded everywhere: every loop has a count and a deadline; only 127.0.0.1 is contacted; every
process started here is stopped by its own process group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml


def _stub_sniffio() -> None:
    """httpcore's async lock setup runs `import sniffio` on every request; sniffio is not
    installed in this venv, so each request paid ~4 failed imports (a sys.path scan each, about
    1 ms of CPU per request in the driver). The driver only ever runs on asyncio: say so."""
    if "sniffio" in sys.modules:
        return
    try:
        import sniffio  # noqa: F401
    except ImportError:
        import types

        stub = types.ModuleType("sniffio")
        stub.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
        sys.modules["sniffio"] = stub


_stub_sniffio()

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS_MD = BENCH / "RESULTS.md"
RESULTS_DIR = BENCH / "results"
BROKER_DB = 10
STORE_DB = 11
SECRET = "bench-secret"  # noqa: S105 - a throwaway HMAC key for local traffic
LRS_USER, LRS_PASSWORD = "hub", "hub-secret"
WEBHOOK_INSTANCE = "acme-coach"
BATCH_INSTANCE = "acme-batch"
EVENTS_PER_BATCH_REQUEST = 50
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

TARGETS = {
    "null_e2e": ("statements/s end to end into the null LRS (full speed)", ">=", 1000.0),
    "ll_ratio": ("end-to-end rate / direct batched POST rate, real LRS", ">=", 0.85),
    "webhook_p99": ("webhook response p99 at 200 req/s (ms)", "<=", 50.0),
    "latency_p95": ("receipt-to-stored p95 at 200 events/s (s)", "<=", 3.0),
    "worker_rss": ("worker RSS, process tree, peak (MB)", "<=", 150.0),
}


@dataclass(frozen=True)
class Profile:
    name: str
    fixed_rate: float = 200.0
    fixed_seconds: float = 30.0
    full_events: int = 10_000
    batch_events: int = 20_000
    ll_fixed_seconds: float = 20.0
    ll_full_events: int = 5_000
    ll_batch_events: int = 10_000
    direct_statements: int = 10_000
    single_statements: int = 2_000
    concurrency: int = 16
    clients: int = 4
    drain_timeout: float = 180.0
    warmup_events: int = 20
    quiet_wait: float = 45.0
    concurrent_baselines: bool = True


FULL = Profile(name="full")
QUICK = Profile(
    name="quick", fixed_seconds=5.0, full_events=1_000, batch_events=2_000,
    ll_fixed_seconds=0.0, ll_full_events=0, ll_batch_events=1_500,
    direct_statements=1_500, single_statements=200, drain_timeout=30.0, warmup_events=5,
    quiet_wait=2.0, concurrent_baselines=False,
)  # fmt: skip


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- processes, /proc sampling -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, cpu ticks utime+stime, rss bytes) for every readable process."""
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        # fields after the comm: state(0) ppid(1) ... utime(11) stime(12) ... rss(21) in pages
        table[int(entry)] = (int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[21]) * PAGE)
    return table


def tree(pid: int, table: dict[int, tuple[int, int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for p, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(p)
    out: list[int] = []
    stack = [pid]
    for _ in range(10_000):
        if not stack:
            break
        p = stack.pop()
        if p in table:
            out.append(p)
            stack.extend(children.get(p, []))
    return out


@dataclass
class Usage:
    rss: int
    cpu_ticks: int
    processes: int


def usage(pid: int, table: dict[int, tuple[int, int, int]] | None = None) -> Usage:
    table = table if table is not None else _proc_table()
    pids = tree(pid, table)
    return Usage(
        rss=sum(table[p][2] for p in pids),
        cpu_ticks=sum(table[p][1] for p in pids),
        processes=len(pids),
    )


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def pss(pid: int) -> int:
    """Proportional set size of a process tree (shared pages split between sharers), bytes."""
    total = 0
    for p in tree(pid, _proc_table()):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


def wait_for_quiet(max_wait: float, busy_limit: float = 0.25) -> float:
    """Wait (bounded) until the machine is mostly idle before a phase; returns the busy share
    of the last 2 s (other engineers' builds and tests share these 2 cores)."""
    deadline = time.monotonic() + max_wait
    share = 1.0
    cpus = os.cpu_count() or 1
    for _ in range(1000):
        b0 = machine_busy_seconds()
        time.sleep(2.0)
        share = (machine_busy_seconds() - b0) / (2.0 * cpus)
        if share <= busy_limit or time.monotonic() > deadline:
            break
        log(f"machine busy ({share:.0%} of {cpus} CPUs used by others); waiting")
    return round(share, 3)


class Proc:
    """A child process in its own process group, stopped by that group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                list(argv), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Sampler:
    """Samples RSS and CPU of named process trees every `every` seconds (peak RSS kept)."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.roots: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_pss: dict[str, int] = {}
        self._ticks = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self.roots[name] = pid

    def forget(self, name: str) -> None:
        with self._lock:
            self.roots.pop(name, None)

    def reset_peaks(self) -> None:
        with self._lock:
            self.peak.clear()
            self.peak_pss.clear()

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each watched tree, plus this driver process."""
        table = _proc_table()
        with self._lock:
            roots = dict(self.roots)
        out = {name: usage(pid, table).cpu_ticks / TICKS for name, pid in roots.items()}
        t = os.times()
        out["driver"] = t.user + t.system
        out["machine"] = machine_busy_seconds()
        with contextlib.suppress(redis.RedisError):
            info = redis.Redis(host="127.0.0.1", port=6379).info("cpu")
            out["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return out

    def _run(self) -> None:
        for _ in range(10_000_000):
            if self._stop.wait(self.every):
                return
            table = _proc_table()
            self._ticks += 1
            with self._lock:
                for name, pid in self.roots.items():
                    rss = usage(pid, table).rss
                    self.peak[name] = max(self.peak.get(name, 0), rss)
                    if name == "worker" and self._ticks % 4 == 0:  # smaps is costlier: 1 Hz
                        self.peak_pss[name] = max(self.peak_pss.get(name, 0), pss(pid))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


# -- LRSs ----------------------------------------------------------------------------------------


@dataclass
class Lrs:
    kind: str  # "null" | "learning-locker"
    endpoint: str  # xAPI base URL ending in /
    stop: Callable[[], None]
    pid: int

    @property
    def statements_url(self) -> str:
        return self.endpoint + "statements"

    @property
    def origin(self) -> str:
        return self.endpoint.split("/xAPI/")[0]


def start_null_lrs(workdir: Path, keep_bodies: int) -> Lrs:
    port = free_port()
    proc = Proc("nulllrs", [sys.executable, str(BENCH / "nulllrs.py"), "--port", str(port),
                            "--keep-bodies", str(keep_bodies)],
                log_path=workdir / f"nulllrs-{port}.log")  # fmt: skip
    origin = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"null LRS exited:\n{proc.tail()}")
        try:
            return httpx.get(origin + "/xAPI/about", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=15, what="the null LRS")
    return Lrs("null", origin + "/xAPI/", proc.stop, proc.pid)


def start_ll() -> Lrs:
    from hub.testing.lrs_servers import start_learning_locker

    server = start_learning_locker(ROOT)
    return Lrs("learning-locker", server.endpoint, server.stop, server.process.pid)


class Arrivals:
    """Which bench events reached an LRS, and when (stored time), keyed by (tag, n)."""

    OBJECT = re.compile(r"/session/ses_([A-Za-z0-9]+)_(\d+)$")

    def __init__(self, lrs: Lrs) -> None:
        self.lrs = lrs
        self.seen: dict[str, dict[int, float]] = {}
        self.ids: set[str] = set()
        self.duplicates = 0
        self._since_index = 0
        self._since_stored: str | None = None
        self._http = httpx.Client(timeout=30, auth=(LRS_USER, LRS_PASSWORD),
                                  headers={"X-Experience-API-Version": "1.0.3"})  # fmt: skip

    def close(self) -> None:
        self._http.close()

    def _record(self, sid: str, when: float, object_id: str) -> None:
        if sid in self.ids:
            self.duplicates += 1
            return
        self.ids.add(sid)
        m = self.OBJECT.search(object_id)
        if m:
            self.seen.setdefault(m.group(1), {}).setdefault(int(m.group(2)), when)

    def poll(self) -> None:
        if self.lrs.kind == "null":
            for _ in range(1000):
                rows = self._http.get(
                    self.lrs.origin + "/bench/arrivals", params={"since": self._since_index}
                ).json()
                if not rows:
                    return
                self._since_index += len(rows)
                for sid, when, oid in rows:
                    self._record(sid, float(when), oid)
            return
        # Learning Locker: page through statements stored since the last poll (2 s overlap,
        # de-duplicated by id); `stored` is the LRS's own storage time.
        params = {"ascending": "true", "limit": "1000"}
        if self._since_stored is not None:
            since = dt.datetime.fromisoformat(self._since_stored) - dt.timedelta(seconds=2)
            params["since"] = since.isoformat().replace("+00:00", "Z")
        url: str | None = self.lrs.statements_url
        first = True
        for _ in range(1000):
            if url is None:
                return
            resp = self._http.get(url, params=params if first else None)
            first = False
            resp.raise_for_status()
            body = resp.json()
            for st in body.get("statements", []):
                stored = str(st.get("stored"))
                if self._since_stored is None or stored > self._since_stored:
                    self._since_stored = stored
                obj = st.get("object") or {}
                when = dt.datetime.fromisoformat(stored.replace("Z", "+00:00")).timestamp()
                if st["id"] in self.ids:
                    continue  # the overlap window re-reads a few: not duplicates
                self._record(st["id"], when, str(obj.get("id", "")))
            more = body.get("more")
            url = self.lrs.origin + more if more else None

    def count(self, tag: str) -> int:
        return len(self.seen.get(tag, {}))

    def wait_for(self, tag: str, n: int, *, timeout: float, every: float = 0.5,
                 drained: Callable[[], bool] | None = None) -> bool:  # fmt: skip
        """Until `n` events of `tag` arrived. With `drained` (the hub's inbox and outbox are
        empty), Learning Locker is read only once the hub says it is done: reading it while the
        hub writes would take the LRS's single thread from the measured deliveries."""
        deadline = time.monotonic() + timeout
        if drained is not None and self.lrs.kind != "null":
            for _ in range(1_000_000):
                if drained() or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        for _ in range(100_000):
            self.poll()
            if self.count(tag) >= n:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(every)
        return False


# -- the hub -------------------------------------------------------------------------------------


def launcher() -> tuple[list[str], str]:
    """`python -m hub.cli` if it already has the process commands, else the bench shim."""
    probe = subprocess.run([sys.executable, "-m", "hub.cli", "--help"], capture_output=True,
                           text=True, timeout=60, cwd=ROOT)  # fmt: skip
    if re.search(r"^\s+serve\b", probe.stdout, re.MULTILINE):
        return [sys.executable, "-m", "hub.cli"], "python -m hub.cli"
    shim = [sys.executable, str(BENCH / "lxhub_shim.py")]
    return shim, "bench/lxhub_shim.py (hub.cli + workers.commands)"


def flush_redis() -> None:
    for db in (BROKER_DB, STORE_DB):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def batch_mapping() -> dict[str, Any]:
    """The example-coaching preset with ``items: "events"``: one request carries many events."""
    from connectors.webhook.settings import load_preset

    spec = load_preset("example-coaching")
    mapping = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    mapping["items"] = "events"
    return mapping


@dataclass
class HubOptions:
    concurrency: int = 2
    log_level: str = "INFO"
    batch_size: int = 100
    max_batch_wait: float = 2.0
    topology: str = "threads"

    def workers(self) -> list[tuple[str, list[str]]]:
        """(role, `lxhub worker` arguments) of each worker process this topology starts."""
        if self.topology == "threads":  # what `lxhub up` and docker-compose run
            # `--workers N`: N such processes, as `docker compose up --scale worker=N` runs.
            args = ["--pool", "threads", "-c", str(self.threads)]
            return [(worker_role(i), args) for i in range(self.processes)]
        if self.topology == "split":  # prefork normalizers + a threaded deliverer
            return [("worker", ["-Q", "poll,ingest", "-c", str(self.concurrency)]),
                    ("deliverer", ["-Q", "deliver", "--pool", "threads", "-c", "4"])]
        return [("worker", ["-c", str(self.concurrency)])]  # prefork, every queue

    threads: int = 8
    processes: int = 1
    # Autogroup nice of every hub process (0: the default). Each process runs in its own
    # session, so its own scheduler group, like a container; a positive value lowers the hub's
    # CPU weight against the LRS's, as `cpu_shares` below 1024 does for a compose service.
    nice: int = 0


def worker_role(index: int) -> str:
    """Role name of the `index`-th threaded worker process ("worker", "worker-2", ...)."""
    return "worker" if index == 0 else f"worker-{index + 1}"


def is_worker_role(role: str) -> bool:
    return role == "worker" or role.startswith("worker-")


class Hub:
    def __init__(self, workdir: Path, lrs: Lrs, opts: HubOptions, cli: list[str],
                 sampler: Sampler) -> None:  # fmt: skip
        self.workdir = workdir
        self.config_dir = workdir / "config"
        self.data_dir = workdir / "data"
        (self.config_dir / "connectors").mkdir(parents=True)
        self.data_dir.mkdir()
        self.port = free_port()
        self.lrs = lrs
        self.cli = cli
        self.sampler = sampler
        self.procs: dict[str, Proc] = {}
        hub = {
            "base_iri": "https://lrs-hub.example.com/xapi",
            "data_dir": str(self.data_dir),
            "broker_url": f"redis://127.0.0.1:6379/{BROKER_DB}",
            "store_url": f"redis://127.0.0.1:6379/{STORE_DB}",
            "web": {"host": "127.0.0.1", "port": self.port},
            "lrs": [{"name": "bench", "endpoint": lrs.endpoint, "username": LRS_USER,
                     "password": "${BENCH_LRS_PASSWORD}", "batch_size": opts.batch_size,
                     "max_batch_wait": opts.max_batch_wait, "timeout": 30}],
            "log_format": "text",
            "log_level": opts.log_level,
        }  # fmt: skip
        (self.config_dir / "hub.yaml").write_text(yaml.safe_dump(hub))
        secrets = {"ACMECOACH_SECRET": "${ACMECOACH_SECRET}"}
        single = {"id": WEBHOOK_INSTANCE, "type": "webhook", "enabled": True,
                  "settings": {"preset": "example-coaching", "tenant": "acme",
                               "secrets": secrets}}  # fmt: skip
        batched = {"id": BATCH_INSTANCE, "type": "webhook", "enabled": True,
                   "settings": {"mapping": batch_mapping(), "tenant": "acme",
                                "secrets": secrets}}  # fmt: skip
        for conn in (single, batched):
            path = self.config_dir / "connectors" / f"{conn['id']}.yaml"
            path.write_text(yaml.safe_dump(conn, sort_keys=False))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LXHUB_")},
            "ACMECOACH_SECRET": SECRET,
            "BENCH_LRS_PASSWORD": LRS_PASSWORD,
            "PROMETHEUS_MULTIPROC_DIR": str(self.data_dir / "metrics"),
        }
        self.opts = opts
        self._probe: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self, role: str, *args: str, command: str | None = None) -> None:
        argv = [*self.cli, "--config", str(self.config_dir), command or role, *args]
        self.procs[role] = Proc(role, argv, log_path=self.data_dir / f"{role}.log", env=self.env,
                                cwd=ROOT)  # fmt: skip
        self.sampler.watch(role, self.procs[role].pid)

    def start(self) -> None:
        flush_redis()
        check = subprocess.run([*self.cli, "--config", str(self.config_dir), "config", "check"],
                               env=self.env, capture_output=True, text=True, timeout=120,
                               cwd=ROOT)  # fmt: skip
        if check.returncode != 0:
            raise RuntimeError(f"config check failed:\n{check.stdout}\n{check.stderr}")
        self._start("serve", "--port", str(self.port))
        for role, worker_args in self.opts.workers():
            self._start(role, *worker_args, command="worker")
        self._start("beat")
        if self.opts.nice:
            for role, proc in self.procs.items():
                try:
                    Path(f"/proc/{proc.pid}/autogroup").write_text(str(self.opts.nice))
                except OSError as exc:
                    raise RuntimeError(f"--hub-nice: {role}'s autogroup: {exc}") from None
        wait_until(self.ready, timeout=60, what="the receiver's /readyz")

    def ready(self) -> bool:
        for role, proc in self.procs.items():
            if not proc.alive():
                raise RuntimeError(f"lxhub {role} exited:\n{proc.tail()}")
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for role in ("beat", "serve", *[r for r in self.procs if r not in ("beat", "serve")]):
            proc = self.procs.pop(role, None)
            if proc is not None:
                proc.stop()
                self.sampler.forget(role)
                if LOG_DIR is not None:
                    LOG_DIR.mkdir(parents=True, exist_ok=True)
                    dest = LOG_DIR / f"{self.workdir.name}-{role}.log"
                    dest.write_bytes(proc.log_path.read_bytes()[-5_000_000:])
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        flush_redis()

    def drained(self) -> bool:
        """Nothing waits in the inbox or the LRS outbox (ready or leased): all stored."""
        from hub.inbox import INBOX
        from hub.store.redis import RedisStore

        if self._probe is None:
            self._probe = RedisStore.from_url(f"redis://127.0.0.1:6379/{STORE_DB}")
        now = dt.datetime.now(dt.UTC)
        return all(
            (st := self._probe.outbox_stats(name, now=now)).ready + st.leased == 0
            for name in (INBOX, "bench")
        )

    def dead_letters(self) -> int:
        from hub.store.redis import RedisStore

        store = RedisStore.from_url(f"redis://127.0.0.1:6379/{STORE_DB}")
        try:
            return store.dlq_count()
        finally:
            store.close()


# -- webhook traffic -----------------------------------------------------------------------------


def session_event(n: int, tag: str) -> dict[str, Any]:
    """The AcmeCoach `session.completed` body of tests/integration/hubproc.py."""
    return {
        "id": f"evt_{tag}_{n:06d}", "type": "session.completed",
        "created_at": "2024-05-03T15:01:12Z",
        "data": {"engagement_id": "eng_42",
                 "session": {"id": f"ses_{tag}_{n:06d}", "topic": "Delegation",
                             "duration_minutes": 45, "started_at": "2024-05-03T14:15:00Z",
                             "ended_at": "2024-05-03T15:00:00Z"},
                 "coachee": {"id": f"u_{n % 50}", "email": f"learner{n % 50}@example.com"},
                 "coach": {"id": "c_77", "email": "coach.kim@acmecoach.example"}},
    }  # fmt: skip


def signed(body: bytes, at: int) -> dict[str, str]:
    ts = str(at)
    mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-AcmeCoach-Timestamp": ts,
            "X-AcmeCoach-Signature": f"sha256={mac}"}  # fmt: skip


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str]
    events: list[int]


def build_requests(tag: str, n_events: int, per_request: int) -> list[Request]:
    now = int(time.time())
    out: list[Request] = []
    for start in range(0, n_events, per_request):
        numbers = list(range(start, min(start + per_request, n_events)))
        if per_request == 1:
            body = json.dumps(session_event(numbers[0], tag)).encode()
            path = f"/webhooks/{WEBHOOK_INSTANCE}"
        else:
            body = json.dumps({"events": [session_event(n, tag) for n in numbers]}).encode()
            path = f"/webhooks/{BATCH_INSTANCE}"
        out.append(Request(path, body, signed(body, now), numbers))
    return out


@dataclass
class Sent:
    sent_at: list[float] = field(default_factory=list)  # wall clock, per request
    status: dict[int, int] = field(default_factory=dict)  # request index -> HTTP status
    latency: list[float] = field(default_factory=list)  # seconds, per request
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    first: float = 0.0
    last: float = 0.0


class RawConnection:
    """One keep-alive HTTP/1.1 connection: the load generator's cheap client.

    httpx.AsyncClient costs about 1.9 ms of CPU per request on this machine (0.05 ms for this),
    and the driver shares the 2 cores with the hub, so the default client is this one;
    ``--client httpx`` switches to httpx.AsyncClient for comparison.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            for _ in range(100_000):
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Up to `size` connections: raw ones, or httpx.AsyncClients (`clients` of them)."""

    def __init__(self, base_url: str, *, size: int, kind: str, clients: int) -> None:
        host_port = base_url.split("://", 1)[1]
        self.host, port = host_port.split(":")
        self.port = int(port)
        self.size = size
        self.kind = kind
        self.idle: list[RawConnection] = []
        self.opened = 0
        self.free = asyncio.Semaphore(size)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.httpx = [httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits)
                      for _ in range(max(clients, 1))] if kind == "httpx" else []  # fmt: skip
        self._next = 0

    async def post(self, req: Request) -> int:
        if self.kind == "httpx":
            self._next += 1
            client = self.httpx[self._next % len(self.httpx)]
            resp = await client.post(req.path, content=req.body, headers=req.headers)
            return resp.status_code
        async with self.free:
            # Most recently used first; a reused connection the server already closed (uvicorn's
            # keep-alive timeout is 5 s) fails before any answer: reconnect and send once more
            # (the hub dedupes by delivery id, so even a doubled request is harmless).
            for attempt in range(2):
                reused = bool(self.idle)
                conn = self.idle.pop() if reused else await RawConnection.open(self.host, self.port)
                try:
                    status = await asyncio.wait_for(conn.post(req.path, req.body, req.headers), 30)
                except (ConnectionError, asyncio.IncompleteReadError):
                    conn.close()
                    if reused and attempt == 0:
                        self.idle.clear()  # older idle ones are likely stale too
                        continue
                    raise
                except BaseException:
                    conn.close()
                    raise
                self.idle.append(conn)
                return status
            raise ConnectionError("unreachable")

    async def close(self) -> None:
        for conn in self.idle:
            conn.close()
        for client in self.httpx:
            await client.aclose()


async def _send(reqs: Sequence[Request], base_url: str, *, rate: float | None,
                concurrency: int, clients: int, deadline: float, kind: str) -> Sent:  # fmt: skip
    sent = Sent(sent_at=[0.0] * len(reqs), latency=[float("nan")] * len(reqs))
    pool = Pool(base_url, size=concurrency, kind=kind, clients=clients)

    async def one(i: int) -> None:
        sent.sent_at[i] = time.time()
        t0 = time.perf_counter()
        try:
            status = await pool.post(reqs[i])
            sent.latency[i] = time.perf_counter() - t0
            sent.statuses[status] = sent.statuses.get(status, 0) + 1
            sent.status[i] = status
        except (OSError, httpx.HTTPError, TimeoutError, asyncio.IncompleteReadError,
                ValueError, IndexError):  # fmt: skip
            sent.errors += 1

    try:
        sent.first = time.time()
        if rate is None:
            cursor = iter(range(len(reqs)))

            async def worker() -> None:
                for i in cursor:
                    if time.monotonic() > deadline:
                        return
                    await one(i)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            # Open loop: request i goes out at start + i/rate whatever earlier ones are doing
            # (at most `concurrency` in flight; beyond that the schedule slips and it shows).
            loop = asyncio.get_running_loop()
            tasks: list[asyncio.Task[None]] = []
            start = loop.time() + 0.05
            for i in range(len(reqs)):
                if time.monotonic() > deadline:
                    break
                delay = start + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        sent.last = time.time()
    finally:
        await pool.close()
    return sent


CLIENT_KIND = "raw"


def send(reqs: Sequence[Request], base_url: str, *, rate: float | None, concurrency: int,
         clients: int, timeout: float) -> Sent:  # fmt: skip
    deadline = time.monotonic() + timeout
    return asyncio.run(_send(reqs, base_url, rate=rate, concurrency=concurrency,
                             clients=clients, deadline=deadline, kind=CLIENT_KIND))  # fmt: skip


# -- statistics ----------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float | None:
    data = sorted(v for v in values if v == v)  # drop NaN
    if not data:
        return None
    k = min(len(data) - 1, max(0, round(q / 100 * (len(data) - 1))))
    return data[k]


@dataclass
class PhaseResult:
    name: str
    lrs: str
    mode: str
    events: int
    requests: int
    per_request: int
    statuses: dict[int, int]
    errors: int
    send_seconds: float
    request_rate: float
    stored: int
    complete: bool
    e2e_seconds: float | None
    events_per_s: float | None
    statements_per_s: float | None
    steady_statements_per_s: float | None
    """Between the 10th and the 90th percentile arrival: the rate without start-up and tail."""
    webhook_p50_ms: float | None
    webhook_p99_ms: float | None
    webhook_max_ms: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    latency_max_s: float | None
    lrs_duplicates: int
    dead_letters: int
    peak_rss_mb: dict[str, float]
    worker_pss_mb: float | None
    cpu_seconds: dict[str, float]
    cpu_ms_per_event: dict[str, float]
    others_cpu_share: float
    quiet_before: float


def run_phase(name: str, *, hub: Hub, arrivals: Arrivals, sampler: Sampler, mode: str,
              n_events: int, per_request: int, rate: float | None, prof: Profile,
              tag: str) -> PhaseResult:  # fmt: skip
    reqs = build_requests(tag, n_events, per_request)
    log(
        f"{name}: {n_events} events in {len(reqs)} requests "
        f"({f'{rate:g} req/s' if rate else 'full speed'}) into {arrivals.lrs.kind}"
    )
    arrivals.poll()
    quiet = wait_for_quiet(prof.quiet_wait)
    sampler.reset_peaks()
    spies = start_profilers(hub, name)
    cpu0 = sampler.cpu()
    send_budget = (len(reqs) / rate + 60) if rate else prof.drain_timeout
    sent = send(
        reqs,
        hub.url,
        rate=rate,
        concurrency=prof.concurrency if rate is None else 32,
        clients=prof.clients,
        timeout=send_budget,
    )
    accepted = sum(n for s, n in sent.statuses.items() if 200 <= s < 300)
    # Only events the hub accepted (2xx) are owed; a refused or failed request is counted apart.
    owed = sum(len(r.events) for i, r in enumerate(reqs) if 200 <= sent.status.get(i, 0) < 300)
    at_drained: dict[str, float] = {}

    def drained() -> bool:
        done = hub.drained()
        if done and not at_drained:
            at_drained.update(sampler.cpu())
        return done

    complete = arrivals.wait_for(tag, owed, timeout=prof.drain_timeout, drained=drained)
    cpu1 = sampler.cpu()
    if "lrs" in at_drained:
        # The LRS's CPU up to the moment the hub had delivered everything: reading the
        # statements back afterwards (to time them) is the bench's work, not the delivery's.
        cpu1["lrs"] = at_drained["lrs"]
    stop_profilers(spies)
    peaks = {k: round(v / 1e6, 1) for k, v in sampler.peak.items()}
    got = arrivals.seen.get(tag, {})
    receipt: dict[int, float] = {}
    for i, r in enumerate(reqs):
        for n in r.events:
            receipt[n] = sent.sent_at[i]
    lat = [got[n] - receipt[n] for n in got if receipt.get(n)]
    e2e = (max(got.values()) - sent.first) if got else None
    rate_out = len(got) / e2e if e2e else None
    p = {q: pct(sent.latency, q) for q in (50, 99, 100)}
    cpu = {k: round(cpu1[k] - cpu0.get(k, 0.0), 2) for k in cpu1}
    workers = [k for k in cpu if is_worker_role(k) and k != "worker"]
    if workers:  # several worker processes: their CPU counts as the worker's
        cpu["worker"] = round(cpu.get("worker", 0.0) + sum(cpu.pop(k) for k in workers), 2)
    ours = sum(v for k, v in cpu.items() if k != "machine")
    wall = max(time.time() - sent.first, 1e-6)
    others = max(cpu.get("machine", 0.0) - ours, 0.0) / (wall * (os.cpu_count() or 1))
    per_event = {k: round(1000 * v / max(len(got), 1), 3) for k, v in cpu.items()
                 if k in ("serve", "worker", "deliverer", "redis", "lrs", "beat")}  # fmt: skip
    result = PhaseResult(
        name=name, lrs=arrivals.lrs.kind, mode=mode, events=n_events, requests=len(reqs),
        per_request=per_request, statuses=dict(sent.statuses), errors=sent.errors,
        send_seconds=round(sent.last - sent.first, 3),
        request_rate=round(len(reqs) / (sent.last - sent.first), 1),
        stored=len(got), complete=complete and accepted == len(reqs),
        e2e_seconds=round(e2e, 3) if e2e else None,
        events_per_s=round(rate_out, 1) if rate_out else None,
        statements_per_s=round(rate_out, 1) if rate_out else None,
        steady_statements_per_s=steady_rate(list(got.values())),
        webhook_p50_ms=_ms(p[50]), webhook_p99_ms=_ms(p[99]), webhook_max_ms=_ms(p[100]),
        latency_p50_s=_r(pct(lat, 50)), latency_p95_s=_r(pct(lat, 95)),
        latency_p99_s=_r(pct(lat, 99)), latency_max_s=_r(pct(lat, 100)),
        lrs_duplicates=arrivals.duplicates, dead_letters=hub.dead_letters(),
        peak_rss_mb=peaks,
        worker_pss_mb=round(sampler.peak_pss["worker"] / 1e6, 1)
        if "worker" in sampler.peak_pss else None,
        cpu_seconds=cpu, cpu_ms_per_event=per_event, others_cpu_share=round(others, 3),
        quiet_before=quiet,
    )  # fmt: skip
    log(
        f"  -> {result.stored}/{n_events} stored, {result.statements_per_s} st/s e2e, webhook "
        f"p50/p99 {result.webhook_p50_ms}/{result.webhook_p99_ms} ms, latency p50/p95/p99 "
        f"{result.latency_p50_s}/{result.latency_p95_s}/{result.latency_p99_s} s, "
        f"RSS {peaks}, worker PSS {result.worker_pss_mb}, CPU ms/event {per_event}, "
        f"others used {others:.0%} of the machine"
    )
    return result


def steady_rate(stored_at: list[float]) -> float | None:
    """Statements per second between the 10th and 90th percentile arrival times.

    The end-to-end rate includes the start (the receiver absorbing a full-speed burst while the
    LRS waits for its first batch) and the tail; this one shows what the pipeline sustains
    once it is full, to tell the two losses apart. Reported beside the target, never for it.
    """
    if len(stored_at) < 100:
        return None
    times = sorted(stored_at)
    lo, hi = len(times) // 10, len(times) * 9 // 10 - 1
    span = times[hi] - times[lo]
    return round((hi - lo) / span, 1) if span > 0 else None


PROFILE_DIR: Path | None = None
QUIET_WAIT = 45.0
LOG_DIR: Path | None = None


def start_profilers(hub: Hub, phase: str) -> list[tuple[Proc, Path]]:
    """py-spy (collapsed stacks, 100 Hz, non-blocking) on serve and the worker tree."""
    if PROFILE_DIR is None:
        return []
    spy = Path(sys.executable).with_name("py-spy")
    out: list[tuple[Proc, Path]] = []
    for role in ("serve", "worker"):
        target = PROFILE_DIR / f"{phase}-{role}.txt"
        argv = [
            str(spy),
            "record",
            "--format",
            "raw",
            "--rate",
            os.environ.get("BENCH_PROFILE_RATE", "100"),
            "--nonblocking",
            "--subprocesses",
            "--pid",
            str(hub.procs[role].pid),
            "--output",
            str(target),
        ]
        out.append((Proc(f"py-spy-{role}", argv, log_path=PROFILE_DIR / "py-spy.log"), target))
    time.sleep(1.0)  # let py-spy attach before the traffic starts
    return out


def stop_profilers(spies: list[tuple[Proc, Path]]) -> None:
    for proc, target in spies:
        if proc.alive():
            os.killpg(proc.pid, signal.SIGINT)  # py-spy writes its output on Ctrl-C
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(30)
        proc.stop()
        if target.exists():
            summarize_profile(target)


def summarize_profile(path: Path, top: int = 30) -> None:
    """Self and inclusive sample shares per function, from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines()[:1_000_000]:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    lines = [f"{path.name}: {total} samples"]
    for title, table in (("self", own), ("inclusive", incl)):
        lines.append(f"-- top {top} by {title} --")
        for f, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"{100 * n / max(total, 1):5.1f}%  {f}")
    path.with_suffix(".summary.txt").write_text("\n".join(lines) + "\n")


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 2)


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


# -- direct POST baselines -----------------------------------------------------------------------


@dataclass
class Baseline:
    name: str
    lrs: str
    statements: int
    per_request: int
    connections: int
    seconds: float
    statements_per_s: float
    non_2xx: int
    others_cpu_share: float
    lrs_cpu_ms_per_statement: float
    lrs_cores: float
    """The LRS's CPU over the wall time: how many cores the LRS alone takes at its limit."""


def direct_post(lrs: Lrs, statements: Sequence[bytes], *, per_request: int,
                connections: int = 1, name: str) -> Baseline:  # fmt: skip
    """POST pre-built statements straight into the LRS with httpx, like a perfect forwarder."""
    chunks = [statements[i : i + per_request] for i in range(0, len(statements), per_request)]
    bad = 0
    lock = threading.Lock()
    cursor = iter(chunks)

    def worker() -> None:
        nonlocal bad
        headers = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
        with httpx.Client(auth=(LRS_USER, LRS_PASSWORD), headers=headers, timeout=60) as c:
            for _ in range(len(chunks)):
                with lock:
                    chunk = next(cursor, None)
                if chunk is None:
                    return
                body = b"[" + b",".join(chunk) + b"]" if per_request > 1 else chunk[0]
                resp = c.post(lrs.statements_url, content=body)
                if not 200 <= resp.status_code < 300:
                    with lock:
                        bad += 1

    wait_for_quiet(QUIET_WAIT)
    busy0 = machine_busy_seconds()
    self0 = sum(os.times()[:2])
    lrs0 = usage(lrs.pid).cpu_ticks / TICKS
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    seconds = time.perf_counter() - t0
    lrs_cpu = usage(lrs.pid).cpu_ticks / TICKS - lrs0
    ours = sum(os.times()[:2]) - self0 + lrs_cpu
    others = max(machine_busy_seconds() - busy0 - ours, 0.0) / (seconds * (os.cpu_count() or 1))
    b = Baseline(name=name, lrs=lrs.kind, statements=len(statements), per_request=per_request,
                 connections=connections, seconds=round(seconds, 3),
                 statements_per_s=round(len(statements) / seconds, 1), non_2xx=bad,
                 others_cpu_share=round(others, 3),
                 lrs_cpu_ms_per_statement=round(1000 * lrs_cpu / len(statements), 3),
                 lrs_cores=round(lrs_cpu / seconds, 2))  # fmt: skip
    log(
        f"baseline {name} into {lrs.kind}: {b.statements_per_s} st/s "
        f"({b.statements} statements, {per_request}/request, {connections} conn, {bad} non-2xx, "
        f"LRS CPU {b.lrs_cpu_ms_per_statement} ms per statement on {b.lrs_cores} cores, "
        f"others used {others:.0%} of the machine)"
    )
    return b


def canonical(st: Any) -> bytes:
    return json.dumps(st, separators=(",", ":"), ensure_ascii=False).encode()


# -- machine and report --------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    rinfo = redis.Redis(host="127.0.0.1", port=6379).info("server")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, timeout=30, cwd=ROOT)  # fmt: skip
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": str(rinfo.get("redis_version")),
        "node": node.stdout.strip(),
        "commit": commit.stdout.strip() or "?",
    }


def ll_direct_rate(results: dict[str, Any]) -> tuple[float | None, str]:
    """The direct batched POST rate the Learning Locker ratio divides by, and how it was got.

    Measured right before ll-batched and again right after it, each on a fresh instance: this
    host's speed drifts by ±10 % within minutes, and a baseline measured a minute earlier
    moved the ratio by as much. The mean of the two brackets the phase.
    """
    bl = {b["name"]: b["statements_per_s"] for b in results["baselines"]}
    before, after = bl.get("ll-direct-batched"), bl.get("ll-direct-batched-after")
    if before and after:
        return round((before + after) / 2, 1), (
            f"mean of ll-direct-batched {fmt(before)} (before) and {fmt(after)} (after)"
        )
    return before, f"ll-direct-batched {fmt(before)}"


def evaluate(results: dict[str, Any]) -> dict[str, tuple[float | None, bool | None, str]]:
    ph = {p["name"]: p for p in results["phases"]}
    out: dict[str, tuple[float | None, bool | None, str]] = {}

    def put(key: str, value: float | None, source: str) -> None:
        _, op, limit = TARGETS[key]
        ok = None if value is None else (value >= limit if op == ">=" else value <= limit)
        out[key] = (value, ok, source)

    null_best = max((ph[k]["statements_per_s"] or 0.0 for k in ("null-full", "null-batched")
                     if k in ph), default=None)  # fmt: skip
    put("null_e2e", null_best, "best of null-full / null-batched")
    ll_hub = ph.get("ll-batched", {}).get("statements_per_s")
    ll_direct, source = ll_direct_rate(results)
    ratio = round(ll_hub / ll_direct, 3) if ll_hub and ll_direct else None
    put("ll_ratio", ratio, f"ll-batched {ll_hub} / {source}")
    fixed = ph.get("null-fixed", {})
    put("webhook_p99", fixed.get("webhook_p99_ms"), "null-fixed")
    put("latency_p95", fixed.get("latency_p95_s"), "null-fixed")
    # Worker + deliverer together (sum of their peaks: an upper bound), so splitting the
    # delivery queue into its own process cannot make the figure look smaller than it is.
    # With several worker processes (`--workers`), each is its own container: the largest.
    rss = max(
        (max(v for k, v in p["peak_rss_mb"].items() if is_worker_role(k))
         + p["peak_rss_mb"].get("deliverer", 0.0)
         for p in results["phases"]),
        default=None,
    )
    put("worker_rss", rss, "every worker process tree, max over all phases")
    return out


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def report(results: dict[str, Any], command: str) -> str:
    m = results["machine"]
    lines = [
        f"## {results['date']} ({results['profile']})",
        "",
        f"- command: `{command}`",
        f"- machine: {m['nproc']} CPUs, {m['cpu']}, {m['ram']} RAM, Linux {m['kernel']}; "
        f"Python {m['python']}, Redis {m['redis']}, Node {m['node']}; commit {m['commit']}",
        f"- hub: `{results['launcher']} serve | "
        + " | ".join("worker " + " ".join(a) for a in results["options"]["worker_args"])
        + f" | beat`, Redis broker DB {BROKER_DB} + store DB {STORE_DB}, log level "
        f"{results['options']['log_level']}, LRS batch_size {results['options']['batch_size']}, "
        f"max_batch_wait {results['options']['max_batch_wait']} s"
        + (
            f", every hub process at autogroup nice {results['options']['nice']} (`--hub-nice`)"
            if results["options"].get("nice")
            else ""
        ),
        f"- load generator: this driver ({results['client']} HTTP/1.1 client, "
        f"{results['concurrency']} concurrent requests at full speed, open loop at fixed rate), "
        "on the same 2 cores; the machine is shared, so each phase first waits (bounded) for "
        "it to be quiet and reports the CPU share other processes still used",
        "",
        "| target | goal | measured | from | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, (value, ok, source) in results["targets"].items():
        label, op, limit = TARGETS[key]
        verdict = "n/a" if ok is None else ("**met**" if ok else "**missed**")
        lines.append(f"| {label} | {op} {fmt(limit)} | {fmt(value)} | {source} | {verdict} |")
    lines += [
        "",
        "| phase | LRS | events | ev/req | req/s sent | e2e st/s | webhook p50 / p99 ms | "
        "receipt→stored p50 / p95 / p99 s | stored | dup | DLQ | worker RSS (PSS) MB | "
        "CPU ms per event (serve / worker / Redis / LRS) | others' CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in results["phases"]:
        c = p["cpu_ms_per_event"]
        failed = f" ({p['errors']} requests failed)" if p["errors"] else ""
        lines.append(
            f"| {p['name']} | {p['lrs']} | {p['events']} | {p['per_request']} | "
            f"{fmt(p['request_rate'])} | {fmt(p['statements_per_s'])} | "
            f"{fmt(p['webhook_p50_ms'])} / {fmt(p['webhook_p99_ms'])} | "
            f"{fmt(p['latency_p50_s'])} / {fmt(p['latency_p95_s'])} / {fmt(p['latency_p99_s'])} | "
            f"{p['stored']}{'' if p['complete'] else ' (INCOMPLETE)'}"
            f"{failed} | "
            f"{p['lrs_duplicates']} | "
            f"{p['dead_letters']} | {fmt(p['peak_rss_mb'].get('worker'))} "
            f"({fmt(p['worker_pss_mb'])}) | "
            f"{fmt(c.get('serve'))} / {fmt(c.get('worker'))} / {fmt(c.get('redis'))} / "
            f"{fmt(c.get('lrs'))} | {p['others_cpu_share']:.0%} |"
        )
    lines += [
        "",
        "| baseline (direct POST, no hub) | LRS | statements | per request | connections | st/s "
        "| LRS CPU ms per statement | LRS cores | others' CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for b in results["baselines"]:
        lines.append(f"| {b['name']} | {b['lrs']} | {b['statements']} | {b['per_request']} | "
                     f"{b['connections']} | {fmt(b['statements_per_s'])} | "
                     f"{fmt(b.get('lrs_cpu_ms_per_statement'))} | {fmt(b.get('lrs_cores'))} | "
                     f"{b['others_cpu_share']:.0%} |")  # fmt: skip
    lines += ["", "Ratios (hub end to end / direct POST):", ""]
    for r in results["ratios"]:
        lines.append(f"- {r}")
    lines += cpu_ceiling(results)
    if results.get("notes"):
        lines += ["", *[f"- {n}" for n in results["notes"]]]
    return "\n".join(lines) + "\n"


def lrs_share(results: dict[str, Any]) -> list[str]:
    """Learning Locker's cores during ll-batched over its cores in the direct baselines.

    A rate is cores / CPU per statement, and this host's speed (so the CPU per statement)
    drifts by a third within a minute on a bad day, between the phase and the baselines that
    bracket it. The core share does not depend on the speed: it says what fraction of the CPU
    Learning Locker had at its own limit it still got with the hub beside it. Shown beside the
    ratio, never instead of it.
    """
    phase = next((p for p in results["phases"] if p["name"] == "ll-batched"), None)
    cores = [b["lrs_cores"] for b in results["baselines"]
             if b["name"] in ("ll-direct-batched", "ll-direct-batched-after")
             and b.get("lrs_cores")]  # fmt: skip
    if phase is None or not cores or not phase["statements_per_s"]:
        return []
    used = phase["cpu_ms_per_event"].get("lrs", 0.0) * phase["statements_per_s"] / 1000.0
    direct = sum(cores) / len(cores)
    return [
        f"Learning Locker's cores in ll-batched ({used:.2f}) / in the direct baselines "
        f"({direct:.2f}), independent of the host's speed: {used / direct:.3f}"
    ]


def cpu_ceiling(results: dict[str, Any]) -> list[str]:
    """What the CPU figures allow the Learning Locker ratio to be on this machine's cores.

    Everything shares the cores, so the end-to-end rate can be at most cores / (CPU per
    statement of the hub and the LRS together), however well the work overlaps; and at the
    target ratio the LRS's own CPU leaves the hub a fixed allowance per statement.
    """
    phase = next((p for p in results["phases"] if p["name"] == "ll-batched"), None)
    direct, _ = ll_direct_rate(results)
    if phase is None or not direct:
        return []
    cpu = phase["cpu_ms_per_event"]
    hub = sum(cpu.get(k, 0.0) for k in ("serve", "worker", "deliverer", "redis", "beat"))
    lrs = cpu.get("lrs", 0.0)
    if hub + lrs <= 0:
        return []
    cores = os.cpu_count() or 1
    ceiling = cores * 1000.0 / (hub + lrs) / direct
    target = TARGETS["ll_ratio"][2]
    allowance = cores * 1000.0 / (target * direct) - lrs
    return ["", (
        f"CPU ceiling of ll-batched / ll-direct-batched: {ceiling:.2f} ({cores} cores / "
        f"(hub {hub:.2f} + Learning Locker {lrs:.2f} ms CPU per statement) / {fmt(direct)} st/s); "
        f"at {target} the hub may spend at most {allowance:.2f} ms per statement"
    )]


RESULTS_HEADER = """# lxhub benchmark results

Produced by `.venv/bin/python bench/run.py` (see `bench/README.md` for what each figure means).
Each run appends a dated section; nothing here is asserted by the tests.

Targets (issue #3, on this 2-core machine):

| target | goal |
| --- | --- |
| statements/s end to end into the null LRS | >= 1,000 |
| end-to-end rate into the real LRS / direct batched POST rate | >= 0.85 |
| webhook response p99 at 200 requests/s | <= 50 ms |
| receipt-to-stored p95 at 200 events/s | <= 3 s |
| worker RSS (process tree, peak) | <= 150 MB |

"""


# -- scenarios -----------------------------------------------------------------------------------


@contextlib.contextmanager
def running_hub(workdir: Path, lrs: Lrs, opts: HubOptions, cli: list[str],
                sampler: Sampler) -> Iterator[Hub]:  # fmt: skip
    hub = Hub(workdir, lrs, opts, cli, sampler)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()


def warm_up(hub: Hub, arrivals: Arrivals, n: int, tag: str) -> None:
    reqs = build_requests(tag, n, 1)
    send(reqs, hub.url, rate=None, concurrency=2, clients=1, timeout=30)
    if not arrivals.wait_for(tag, n, timeout=60):
        raise RuntimeError(f"warm-up: only {arrivals.count(tag)}/{n} statements arrived")


def main() -> int:
    parser = argparse.ArgumentParser(description="lxhub benchmark")
    parser.add_argument("--quick", action="store_true", help="smoke run, under 2 minutes")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (-c)")
    parser.add_argument(
        "--topology", choices=["threads", "split", "prefork"], default="threads",
        help="threads: one threaded worker for every queue (as `lxhub up` and docker-compose); "
        "split: prefork poll/ingest worker (-c) + threaded deliverer; prefork: one prefork "
        "worker (-c) for every queue",
    )
    parser.add_argument("--threads", type=int, default=8, help="threads of a threaded worker")
    parser.add_argument("--workers", type=int, default=1,
                        help="threaded worker processes (topology threads), like "
                        "`docker compose up --scale worker=N`")  # fmt: skip
    parser.add_argument(
        "--hub-nice",
        type=int,
        default=10,
        help="autogroup nice of the hub's processes (0-19; default 10, weight 110 against the "
        "LRS's 1024): on this host shared with the LRS, the hub runs at the lower CPU weight "
        "docs/operations.md recommends for such a host; 0 gives both equal weights",
    )
    parser.add_argument("--log-level", default="INFO", help="hub log level")
    parser.add_argument("--skip-ll", action="store_true", help="null LRS only")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator's HTTP client (raw asyncio, or httpx.AsyncClient)",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="copy the hub processes' logs to bench/results/logs-*/",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the receiver and the workers in every phase (bench/results/profile-*/)",
    )
    args = parser.parse_args()
    global CLIENT_KIND, PROFILE_DIR, LOG_DIR, QUIET_WAIT
    CLIENT_KIND = args.client
    if args.keep_logs:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        LOG_DIR = RESULTS_DIR / f"logs-{stamp}"
    if args.profile:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        PROFILE_DIR = RESULTS_DIR / f"profile-{stamp}"
        PROFILE_DIR.mkdir(parents=True)
    prof = QUICK if args.quick else FULL
    QUIET_WAIT = prof.quiet_wait
    opts = HubOptions(concurrency=args.concurrency, log_level=args.log_level.upper(),
                      topology=args.topology, threads=args.threads,
                      processes=args.workers, nice=args.hub_nice)  # fmt: skip
    command = " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    started = time.monotonic()
    cli, cli_name = launcher()
    log(f"profile {prof.name}; hub launched with {cli_name}")
    sampler = Sampler()
    phases: list[PhaseResult] = []
    baselines: list[Baseline] = []
    notes: list[str] = []
    run_id = f"{int(time.time()) % 100000:05d}"
    try:
        with tempfile.TemporaryDirectory(prefix="lxhub-bench-") as tmp:
            work = Path(tmp)
            keep = max(prof.direct_statements, prof.single_statements)
            # (b) the null LRS
            null = start_null_lrs(work, keep_bodies=keep)
            sampler.watch("lrs", null.pid)
            arrivals = Arrivals(null)
            try:
                with running_hub(work / "hub-null", null, opts, cli, sampler) as hub:
                    warm_up(hub, arrivals, prof.warmup_events, f"w{run_id}n")
                    phases.append(run_phase(
                        "null-fixed", hub=hub, arrivals=arrivals, sampler=sampler, mode="fixed",
                        n_events=int(prof.fixed_rate * prof.fixed_seconds), per_request=1,
                        rate=prof.fixed_rate, prof=prof, tag=f"f{run_id}n"))  # fmt: skip
                    phases.append(run_phase(
                        "null-full", hub=hub, arrivals=arrivals, sampler=sampler, mode="full",
                        n_events=prof.full_events, per_request=1, rate=None, prof=prof,
                        tag=f"s{run_id}n"))  # fmt: skip
                    phases.append(run_phase(
                        "null-batched", hub=hub, arrivals=arrivals, sampler=sampler,
                        mode="full", n_events=prof.batch_events,
                        per_request=EVENTS_PER_BATCH_REQUEST, rate=None, prof=prof,
                        tag=f"b{run_id}n"))  # fmt: skip
                bodies = [
                    canonical(s)
                    for s in httpx.get(
                        null.origin + "/bench/bodies", params={"limit": keep}, timeout=60
                    ).json()
                ]
                if len(bodies) < keep:
                    notes.append(f"only {len(bodies)} statements captured for the baselines")
                direct = bodies[: prof.direct_statements]
                single = bodies[: prof.single_statements]
                sampler.reset_peaks()
                baselines.append(direct_post(null, direct, per_request=100,
                                             name="null-direct-batched"))  # fmt: skip
                if prof.concurrent_baselines:
                    baselines.append(direct_post(null, direct, per_request=100, connections=4,
                                                 name="null-direct-batched-4conn"))  # fmt: skip
                baselines.append(direct_post(null, single, per_request=1,
                                             name="null-one-per-request"))  # fmt: skip
            finally:
                arrivals.close()
                sampler.forget("lrs")
                null.stop()

            # (a) Learning Locker, a fresh in-memory instance per measurement
            if not args.skip_ll:

                def ll_baseline(name: str, per: int, conns: int, stmts: list[bytes]) -> None:
                    ll = start_ll()
                    try:
                        baselines.append(direct_post(ll, stmts, per_request=per,
                                                     connections=conns, name=name))  # fmt: skip
                    finally:
                        ll.stop()

                if prof.concurrent_baselines:
                    ll_baseline("ll-direct-batched-4conn", 100, 4, direct)
                ll_baseline("ll-one-per-request", 1, 1, single)
                ll_runs: list[tuple[str, str, int, int, float | None]] = []
                if prof.ll_fixed_seconds > 0:
                    ll_runs.append(("ll-fixed", "fixed",
                                    int(prof.fixed_rate * prof.ll_fixed_seconds), 1,
                                    prof.fixed_rate))  # fmt: skip
                if prof.ll_full_events > 0:
                    ll_runs.append(("ll-full", "full", prof.ll_full_events, 1, None))
                ll_runs.append(("ll-batched", "full", prof.ll_batch_events,
                                EVENTS_PER_BATCH_REQUEST, None))  # fmt: skip
                for i, (name, mode, n, per, rate) in enumerate(ll_runs):
                    if name == "ll-batched":  # the ratio's baseline brackets it (ll_direct_rate)
                        ll_baseline("ll-direct-batched", 100, 1, direct)
                    ll = start_ll()
                    sampler.watch("lrs", ll.pid)
                    arrivals = Arrivals(ll)
                    try:
                        with running_hub(work / f"hub-ll{i}", ll, opts, cli, sampler) as hub:
                            warm_up(hub, arrivals, prof.warmup_events, f"w{run_id}l{i}")
                            phases.append(run_phase(
                                name, hub=hub, arrivals=arrivals, sampler=sampler, mode=mode,
                                n_events=n, per_request=per, rate=rate, prof=prof,
                                tag=f"x{run_id}l{i}"))  # fmt: skip
                    finally:
                        arrivals.close()
                        sampler.forget("lrs")
                        ll.stop()
                    if name == "ll-batched":
                        ll_baseline("ll-direct-batched-after", 100, 1, direct)
    finally:
        sampler.close()
        flush_redis()

    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "profile": prof.name,
        "command": command,
        "launcher": cli_name,
        "machine": machine(),
        "options": {**asdict(opts), "worker_args": [a for _, a in opts.workers()]},
        "concurrency": prof.concurrency,
        "client": "raw asyncio" if CLIENT_KIND == "raw" else "httpx.AsyncClient",
        "clients": prof.clients,
        "phases": [asdict(p) for p in phases],
        "baselines": [asdict(b) for b in baselines],
        "duration_s": round(time.monotonic() - started, 1),
    }
    results["targets"] = evaluate(results)
    bl = {b.name: b.statements_per_s for b in baselines}
    ratios = []
    for p in phases:
        if not p.statements_per_s:
            continue
        key = "null" if p.lrs == "null" else "ll"
        for base in (f"{key}-direct-batched", f"{key}-direct-batched-4conn",
                     f"{key}-one-per-request"):  # fmt: skip
            if bl.get(base):
                ratios.append(f"{p.name} / {base}: {p.statements_per_s / bl[base]:.3f}")
    direct_mean, source = ll_direct_rate({"baselines": [asdict(b) for b in baselines]})
    for p in phases:
        if p.lrs != "null" and direct_mean and p.name == "ll-batched":
            ratios.append(f"{p.name} / {source}: "
                          f"{(p.statements_per_s or 0) / direct_mean:.3f}")  # fmt: skip
            if p.steady_statements_per_s:
                ratios.append(f"{p.name} steady (10th-90th percentile arrivals, "
                              f"{fmt(p.steady_statements_per_s)} st/s) / the same mean: "
                              f"{p.steady_statements_per_s / direct_mean:.3f}")  # fmt: skip
    results["ratios"] = ratios + lrs_share(results)
    results["notes"] = notes + [
        "receipt = the moment the driver sent the request; stored = arrival at the null LRS "
        "(its clock) or the `stored` time Learning Locker assigned; same machine clock.",
        "fixed-rate phases are open-loop (a request is sent on schedule whatever the previous "
        "one is doing); e2e = (last statement stored − first request sent).",
        f"run took {results['duration_s']} s",
    ]
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"{stamp}-{prof.name}.json").write_text(json.dumps(results, indent=1))
    text = report(results, command)
    print(text)
    if not args.no_write:
        if not RESULTS_MD.exists():
            RESULTS_MD.write_text(RESULTS_HEADER)
        with RESULTS_MD.open("a") as f:
            f.write("\n" + text)
        log(f"appended to {RESULTS_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
