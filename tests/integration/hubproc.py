"""Runs a real hub for integration tests: a config directory, and `lxhub serve`, `lxhub worker`
and `lxhub beat` as real processes, on Redis or on the embedded SQLite default.

Redis isolation: the tests use their own database numbers on the machine's Redis (broker and store
apart) and flush them before and after, so nothing of another run leaks in.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-secret"
BROKER_DB = 13
STORE_DB = 14


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flush_redis() -> None:
    for db in (BROKER_DB, STORE_DB):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    every: float = 0.2,
    hub: Hub | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    context = f"\n{hub.diagnose()}" if hub is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{context}")


@dataclass
class Hub:
    config_dir: Path
    data_dir: Path
    port: int
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, role: str, *args: str, env: dict[str, str] | None = None) -> None:
        """Start `lxhub <role> <args>`; `env` adds to the hub's environment for this process."""
        log = self.data_dir / f"{role}.log"
        self.logs[role] = log
        cmd = [sys.executable, "-m", "hub.cli", "--config", str(self.config_dir), role, *args]
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.procs[role] = subprocess.Popen(
                cmd,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill reaches the pool children
            )

    def start_all(self, *worker_args: str) -> None:
        """Receiver, one worker (the product's default shape unless `worker_args` say) and beat."""
        self.start("serve", "--port", str(self.port))
        self.start("worker", *worker_args)
        self.start("beat")
        wait_until(self.ready, timeout=30, what="the receiver's /readyz")

    def ready(self) -> bool:
        for role, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"lxhub {role} exited:\n{self.tail(role)}")
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, role: str, sig: int = signal.SIGKILL) -> None:
        """SIGKILL: the whole process group dies at once (a crashed container). Any other signal
        goes to the main process only, as `docker stop` does: signalling a prefork pool's
        children too would kill them mid-operation and hang the parent's shutdown."""
        proc = self.procs.pop(role)
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a warm shutdown that hangs is ended like `docker stop`
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def stop(self) -> None:
        for role in list(self.procs):
            proc = self.procs.pop(role)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # main process only, like `docker stop`
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            # Nothing of this hub may outlive the test and steal the next test's work.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def tail(self, role: str, lines: int = 40) -> str:
        path = self.logs.get(role)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def diagnose(self) -> str:
        """What an operator would look at: status and the tail of every process's log."""
        status = self.lxhub("status").stdout
        logs = "\n".join(f"--- {role} log ---\n{self.tail(role, 25)}" for role in self.logs)
        return f"--- lxhub status ---\n{status}\n{logs}"

    def lxhub(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", "--config", str(self.config_dir), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def write_hub(
    tmp: Path,
    *,
    backend: str,
    lrs: Iterable[dict[str, Any]],
    connectors: Iterable[dict[str, Any]] | None = None,
    delivery: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Hub:
    config_dir = tmp / "config"
    data_dir = tmp / "data"
    (config_dir / "connectors").mkdir(parents=True)
    data_dir.mkdir()
    port = free_port()
    hub: dict[str, Any] = {
        "base_iri": "https://lrs-hub.example.com/xapi",
        "data_dir": str(data_dir),
        "web": {"host": "127.0.0.1", "port": port, "admin_token": "${LXHUB_ADMIN_TOKEN}"},
        "lrs": list(lrs),
        "delivery": {"lease_seconds": 8, "flush_interval": 0.5, **(delivery or {})},
        "log_format": "text",
    }
    if backend == "redis":
        hub["broker_url"] = f"redis://127.0.0.1:6379/{BROKER_DB}"
        hub["store_url"] = f"redis://127.0.0.1:6379/{STORE_DB}"
        flush_redis()
    (config_dir / "hub.yaml").write_text(yaml.safe_dump(hub))
    for conn in connectors if connectors is not None else [acme_connector()]:
        (config_dir / "connectors" / f"{conn['id']}.yaml").write_text(yaml.safe_dump(conn))
    proc_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LXHUB_")},
        "LXHUB_ADMIN_TOKEN": "admin-token",
        "ACMECOACH_SECRET": SECRET,
        "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics"),
        **(env or {}),
    }
    return Hub(config_dir=config_dir, data_dir=data_dir, port=port, env=proc_env)


def acme_connector(instance_id: str = "acme-coach") -> dict[str, Any]:
    return {
        "id": instance_id,
        "type": "webhook",
        "enabled": True,
        "settings": {
            "preset": "example-coaching",
            "tenant": "acme",
            "secrets": {"ACMECOACH_SECRET": "${ACMECOACH_SECRET}"},
        },
    }


def session_event(n: int, tag: str = "t") -> dict[str, Any]:
    return {
        "id": f"evt_{tag}_{n:06d}",
        "type": "session.completed",
        "created_at": "2024-05-03T15:01:12Z",
        "data": {
            "engagement_id": "eng_42",
            "session": {
                "id": f"ses_{tag}_{n:06d}",
                "topic": "Delegation",
                "duration_minutes": 45,
                "started_at": "2024-05-03T14:15:00Z",
                "ended_at": "2024-05-03T15:00:00Z",
            },
            "coachee": {"id": f"u_{n % 50}", "email": f"learner{n % 50}@example.com"},
            "coach": {"id": "c_77", "email": "coach.kim@acmecoach.example"},
        },
    }


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    ts = str(at if at is not None else int(time.time()))
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-AcmeCoach-Timestamp": ts,
        "X-AcmeCoach-Signature": f"sha256={mac}",
    }


def send_events(
    hub: Hub, numbers: Iterable[int], *, tag: str, instance: str = "acme-coach"
) -> list[int]:
    statuses = []
    with httpx.Client(base_url=hub.url, timeout=10) as client:
        for n in numbers:
            body = json.dumps(session_event(n, tag)).encode()
            statuses.append(
                client.post(f"/webhooks/{instance}", content=body, headers=signed(body)).status_code
            )
    return statuses
