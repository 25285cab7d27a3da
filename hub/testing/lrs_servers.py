"""Start and stop real third-party LRSs for integration tests.

Two LRSs, installed by ``bash .ci/install-lrs`` under ``<root>/.lrs`` (see shared/spec/xapi.md §6):

* **Learning Locker's statement service** (npm ``xapi-statements`` 5.0.1) in ``.lrs/node``, run in
  memory with the ``test`` auth repo. That repo accepts *any* credentials (or none) as a trusted
  all-scope client, so a 401 cannot be provoked on it.
* **Ralph** (PyPI ``ralph-malph[cli,lrs]==5.1.0``) in its own venv ``.lrs/ralph-venv``, with the fs
  backend. The stock fs backend accepts only one write (every later write is a 500), so the launcher
  sets ``FSLRSBackend.default_operation_type = APPEND`` before starting uvicorn. Set
  ``RALPH_FS_STOCK=1`` in the environment to run it unpatched and reproduce that bug.

Both bind to 127.0.0.1 on a free port, write their output to a log file (its tail is put in every
start error), and are stopped with SIGTERM, then SIGKILL. Every server is started with the user
``hub`` / ``hub-secret``; ``LrsServer.endpoint`` is the xAPI base URL (``.../xAPI/``), to which
``statements`` is appended.

Usage::

    with start_ralph(root, tmp_path / "ralph") as lrs:
        httpx.post(lrs.statements_url, json=statement, auth=lrs.auth, headers=...)
        assert get_statement(lrs, statement["id"]) is not None
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = [
    "INSTALL_HINT",
    "LL_VERSION",
    "LrsServer",
    "RALPH_VERSION",
    "get_statement",
    "read_statements",
    "start_learning_locker",
    "start_ralph",
    "stop_server",
]

LL_VERSION = "5.0.1"
RALPH_VERSION = "5.1.0"
USERNAME = "hub"
PASSWORD = "hub-secret"  # noqa: S105 - a throwaway credential for a local test LRS
INSTALL_HINT = "run `bash .ci/install-lrs` in the project root (CI runs it before the tests)"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
_ADDRESS_IN_USE = ("EADDRINUSE", "address already in use")

# Preloaded with `node --require`: `server.js` calls `app.listen(port)`, which binds every
# interface; this makes a port-only listen() bind 127.0.0.1 instead.
_LL_LOOPBACK_PRELOAD = """\
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
"""

# Run by the Ralph venv's python as `python -c _RALPH_LAUNCHER <port>`.
_RALPH_LAUNCHER = """\
import os, sys
if os.environ.get("RALPH_FS_STOCK") != "1":
    from ralph.backends.data.base import BaseOperationType
    from ralph.backends.lrs.fs import FSLRSBackend
    FSLRSBackend.default_operation_type = BaseOperationType.APPEND
import uvicorn
uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
"""


@dataclass
class LrsServer:
    """A running LRS subprocess.

    ``endpoint`` is the xAPI base URL with a trailing slash, e.g. ``http://127.0.0.1:41234/xAPI/``.
    """

    name: str
    endpoint: str
    username: str
    password: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path | None = field(default=None, repr=False)
    """A private temporary directory removed by :func:`stop_server`."""

    @property
    def statements_url(self) -> str:
        return self.endpoint + "statements"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines)

    def stop(self) -> None:
        stop_server(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- starting ---------------------------------------------------------------------------------


def start_learning_locker(root: Path, *, timeout: float = START_TIMEOUT) -> LrsServer:
    """Start Learning Locker's statement service (in memory) on a free 127.0.0.1 port."""
    server_js = root / ".lrs" / "node" / "node_modules" / "xapi-statements" / "dist" / "server.js"
    if not server_js.is_file():
        raise RuntimeError(
            f"Learning Locker (npm xapi-statements {LL_VERSION}) is not installed: "
            f"{server_js} is missing; {INSTALL_HINT}"
        )
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Learning Locker needs `node` on PATH (Node 20 is known to work)")

    workdir = Path(tempfile.mkdtemp(prefix="lxhub-learning-locker-"))
    preload = workdir / "loopback.js"
    preload.write_text(_LL_LOOPBACK_PRELOAD)

    def env(port: int) -> dict[str, str]:
        return _child_env(
            drop_prefixes=(),
            AUTH_REPO="test",
            EVENTS_REPO="test",
            MODELS_REPO="memory",
            STORAGE_REPO="memory",
            EXPRESS_PORT=str(port),
            # Access logs and the storage dir default to $CWD/storage; keep them in workdir.
            EXPRESS_MORGAN_DIRECTORY=str(workdir / "access-logs"),
            FS_LOCAL_STORAGE_DIR=str(workdir / "storage"),
            # config.js takes the translator language from $LANG (e.g. "C.UTF-8").
            LANG="en",
            AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE="1",
        )

    return _launch(
        name="learning-locker",
        argv=lambda port: [node, "--require", str(preload), str(server_js)],
        env=env,
        cwd=workdir,
        workdir=workdir,
        ready_path="/xAPI/about",
        timeout=timeout,
    )


def start_ralph(root: Path, data_dir: Path, *, timeout: float = START_TIMEOUT) -> LrsServer:
    """Start Ralph (fs backend storing in ``data_dir``) on a free 127.0.0.1 port."""
    python = root / ".lrs" / "ralph-venv" / "bin" / "python"
    if not python.is_file():
        raise RuntimeError(
            f"Ralph (ralph-malph {RALPH_VERSION}) is not installed: {python} is missing; "
            f"{INSTALL_HINT}"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="lxhub-ralph-"))
    auth_file = workdir / "auth.json"
    base_env = {
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(data_dir.resolve()),
        "RALPH_AUTH_FILE": str(auth_file),
        "RALPH_APP_DIR": str(workdir / "app"),
    }
    if os.environ.get("RALPH_FS_STOCK") == "1":
        base_env["RALPH_FS_STOCK"] = "1"
    try:
        _ralph_auth(python, workdir, _child_env(drop_prefixes=("RALPH_",), **base_env))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    return _launch(
        name="ralph",
        argv=lambda port: [str(python), "-c", _RALPH_LAUNCHER, str(port)],
        env=lambda port: _child_env(drop_prefixes=("RALPH_",), **base_env),
        cwd=workdir,  # Ralph's settings also read `.env` from the CWD
        workdir=workdir,
        ready_path="/__heartbeat__",
        timeout=timeout,
    )


def _ralph_auth(python: Path, workdir: Path, env: dict[str, str]) -> None:
    argv = [
        str(python), "-m", "ralph", "auth",
        "-u", USERNAME, "-p", PASSWORD, "-s", "all",
        "-M", f"mailto:{USERNAME}@lrs.example.org", "-N", USERNAME,
        "-w",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"`ralph auth` did not finish in {exc.timeout:.0f}s") from exc
    if result.returncode != 0 or not (workdir / "auth.json").is_file():
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise RuntimeError(
            f"`ralph auth` failed (exit {result.returncode}); is Ralph installed correctly? "
            f"{INSTALL_HINT}\n--- output tail ---\n{_last_lines(output, _LOG_TAIL_LINES)}"
        )


def _child_env(*, drop_prefixes: tuple[str, ...], **overrides: str) -> dict[str, str]:
    """The current environment minus Python/venv leakage and ``drop_prefixes``, plus overrides."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "NODE_OPTIONS")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(drop_prefixes)
    }
    env.update(overrides)
    return env


def _launch(
    *,
    name: str,
    argv: Callable[[int], list[str]],
    env: Callable[[int], Mapping[str, str]],
    cwd: Path,
    workdir: Path,
    ready_path: str,
    timeout: float,
) -> LrsServer:
    """Start the server, retrying with a new port if another process grabbed the chosen one."""
    try:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            log_path = workdir / f"{name}-{port}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    argv(port),
                    cwd=cwd,
                    env=dict(env(port)),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stop_server signals the group
                )
            server = LrsServer(
                name=name,
                endpoint=f"http://127.0.0.1:{port}/xAPI/",
                username=USERNAME,
                password=PASSWORD,
                process=process,
                log_path=log_path,
                workdir=workdir,
            )
            try:
                _wait_ready(server, server.origin + ready_path, timeout)
            except _PortTaken:
                _terminate(process)
                if attempt == _PORT_ATTEMPTS:
                    raise RuntimeError(
                        f"{name} could not bind a free port after {attempt} attempts\n"
                        f"--- {name} log tail ---\n{server.log_tail()}"
                    ) from None
                continue
            except BaseException:
                _terminate(process)
                raise
            return server
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(Exception):
    pass


def _wait_ready(server: LrsServer, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            code = server.process.poll()
            if code is not None:
                tail = server.log_tail()
                if any(marker in tail for marker in _ADDRESS_IN_USE):
                    raise _PortTaken
                raise RuntimeError(
                    f"{server.name} exited with code {code} before answering on {url}\n"
                    f"--- {server.name} log tail ---\n{tail}"
                )
            try:
                response = client.get(url)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{server.name} did not answer 200 on {url} within {timeout:.0f}s "
                    f"(last: {last_error})\n--- {server.name} log tail ---\n{server.log_tail()}"
                )
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- stopping ---------------------------------------------------------------------------------


def stop_server(server: LrsServer, *, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout``); idempotent.

    Removes the server's private workdir (auth file, logs), not Ralph's ``data_dir``.
    """
    _terminate(server.process, timeout)
    if server.workdir is not None:
        shutil.rmtree(server.workdir, ignore_errors=True)
        server.workdir = None


def _terminate(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    # Only signal while the leader is unreaped, so its pid (= the group id) cannot be reused.
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - the group id was reused by someone else
        if process.poll() is None:
            process.send_signal(sig)


# --- reading ----------------------------------------------------------------------------------


def read_statements(
    server: LrsServer,
    *,
    version: str = "1.0.3",
    limit: int | None = None,
    params: Mapping[str, str] | None = None,
    max_pages: int = 10_000,
) -> list[dict[str, Any]]:
    """GET every statement, following ``more`` (resolved against the origin, xapi.md §5).

    ``limit`` sets the page size; ``params`` adds query filters to the first request.
    """
    query: dict[str, str] = dict(params or {})
    if limit is not None:
        query["limit"] = str(limit)
    statements: list[dict[str, Any]] = []
    seen_urls: set[str] = set()
    with _client(server, version) as client:
        response = client.get(server.statements_url, params=query)
        for _ in range(max_pages):
            response.raise_for_status()
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get("statements"), list):
                raise RuntimeError(f"{server.name}: not a StatementResult: {body!r:.300}")
            statements.extend(body["statements"])
            more = body.get("more")
            if not more:
                return statements
            url = urljoin(server.origin + "/", str(more))
            if url in seen_urls:
                raise RuntimeError(f"{server.name}: `more` loops back to {url}")
            seen_urls.add(url)
            response = client.get(url)
    raise RuntimeError(f"{server.name}: still a `more` link after {max_pages} pages")


def get_statement(
    server: LrsServer, statement_id: str, *, version: str = "1.0.3"
) -> dict[str, Any] | None:
    """GET one statement by id, or None if the LRS does not have it.

    Handles both shapes: a bare Statement (spec, Learning Locker; unknown id → 404) and Ralph's
    ``{"statements": [...]}`` wrapper (unknown id → 200 with an empty list).
    """
    with _client(server, version) as client:
        response = client.get(server.statements_url, params={"statementId": statement_id})
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise RuntimeError(f"{server.name}: unexpected body for statementId: {body!r:.300}")
    if "statements" in body:  # Ralph's wrapper; a bare Statement never has this key
        found: dict[str, Any]
        for found in body["statements"]:
            if found.get("id") == statement_id:
                return found
        return None
    return body


def _client(server: LrsServer, version: str) -> httpx.Client:
    return httpx.Client(
        auth=server.auth,
        headers={"X-Experience-API-Version": version},
        timeout=30.0,
        trust_env=False,  # never send test traffic through a proxy from the environment
    )


# --- logs -------------------------------------------------------------------------------------


def _tail(path: Path, lines: int) -> str:
    try:
        data = path.read_bytes()[-64_000:]
    except OSError as exc:
        return f"<no log: {exc}>"
    return _last_lines(data.decode(errors="replace"), lines)


def _last_lines(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "<empty>"


# Manual smoke check: python -m hub.testing.lrs_servers
if __name__ == "__main__":  # pragma: no cover
    _root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as _data:
        for _server in (start_learning_locker(_root), start_ralph(_root, Path(_data))):
            with _server:
                print(_server.name, _server.endpoint, file=sys.stderr)
