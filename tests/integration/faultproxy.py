"""A programmable HTTP proxy in front of a real LRS, for failure tests.

The LRS stays real (it stores and compares statements); the proxy only decides, per request,
whether to pass it through or answer on the LRS's behalf: 503 for a while, 429 with Retry-After,
401 until the credentials are fixed, or a slow answer (to catch a worker mid-request).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class Plan:
    mode: str = "pass"  # pass | status | slow
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    remaining: int | None = None  # requests to answer this way, then pass (None: until changed)
    delay: float = 0.0
    require_auth: str | None = None  # answer 401 unless Authorization equals this


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = Plan()
        self.lock = threading.Lock()
        self.log: list[tuple[float, str, str, int]] = []  # (time, method, path, status)
        self.inflight = 0  # requests received and not yet answered
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                proxy.log.append((time.monotonic(), self.command, self.path, status))

            def _handle(self) -> None:
                with proxy.lock:
                    proxy.inflight += 1
                try:
                    self._forward()
                finally:
                    with proxy.lock:
                        proxy.inflight -= 1

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    plan = proxy.plan
                    act = plan.mode
                    if plan.remaining is not None:
                        if plan.remaining <= 0:
                            act = "pass"
                        else:
                            plan.remaining -= 1
                if (
                    plan.require_auth is not None
                    and self.headers.get("Authorization") != plan.require_auth
                ):
                    self._answer(
                        401, b'{"message":"bad credentials"}', {"Content-Type": "application/json"}
                    )
                    return
                if act == "status":
                    self._answer(
                        plan.status,
                        b'{"message":"injected"}',
                        {"Content-Type": "application/json", **plan.headers},
                    )
                    return
                if act == "slow":
                    time.sleep(plan.delay)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"host", "content-length", "connection"}
                }
                upstream = httpx.request(
                    self.command,
                    proxy.upstream + self.path,
                    content=body,
                    headers=headers,
                    timeout=60,
                )
                out = {
                    k: v
                    for k, v in upstream.headers.items()
                    if k.lower() in {"content-type", "x-experience-api-version", "retry-after"}
                }
                self._answer(upstream.status_code, upstream.content, out)

            do_GET = do_POST = do_PUT = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def set(self, plan: Plan) -> None:
        with self.lock:
            self.plan = plan

    def statuses(self) -> list[int]:
        return [entry[3] for entry in self.log]

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
