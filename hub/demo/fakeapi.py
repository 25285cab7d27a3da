"""A local fake of the vendor APIs the demo's connectors call, served on 127.0.0.1.

The connectors in the demo are the real ones, and they really call their vendors' APIs during
normalization (Docebo's OAuth token, enrollment and user endpoints; Entra's token endpoint and
Graph's ``/users/{id}`` and ``/subscriptions``; Slack's ``users.info``; YouTube's
``videos.list``). This module answers those calls over real HTTP, so the demo needs no network
beyond the loopback interface and no vendor account.

How the calls get here:

* connectors that use the hub's ``httpx.Client`` (Docebo, Teams, YouTube) keep their real vendor
  URLs in their settings (so activity IRIs and statement ids are exactly those of a production
  install); the demo gives their clients a `VendorRedirect` transport through the same seam the
  tests use (``HubRuntime(transports=...)``), which rewrites ``https://{host}/{path}`` to
  ``http://127.0.0.1:{port}/_vendor/{host}/{path}``: an egress proxy in one class;
* Slack's ``WebClient`` does its own HTTP, so its ``api_base_url`` setting points at
  `FakeVendorApi.vendor_url` (``…/_vendor/slack.com/api/``) directly.

Each demo step registers the routes its connector needs (`FakeRoute`); a call nobody registered is
answered 404 and recorded in `FakeVendorApi.unmatched`, so a missing route shows up in the demo's
report instead of as a mystery.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "BackgroundServer",
    "FakeCall",
    "FakeReply",
    "FakeRequest",
    "FakeRoute",
    "FakeVendorApi",
    "VendorRedirect",
    "free_socket",
]

VENDOR_PREFIX = "/_vendor"


@dataclass(frozen=True)
class FakeRequest:
    """What a fake route handler sees of a vendor call."""

    method: str
    host: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields (last value wins)."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        """The body as JSON (None when it is empty)."""
        return json.loads(self.body) if self.body else None

    def param(self, name: str) -> str | None:
        """A parameter from the query string or, for form posts, the body (Slack accepts both)."""
        return self.query.get(name) or self.form.get(name)


@dataclass(frozen=True)
class FakeReply:
    """A vendor answer: JSON (any non-bytes body is JSON-encoded) or raw bytes."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


Handler = Callable[[FakeRequest, "re.Match[str]"], FakeReply]


@dataclass(frozen=True)
class FakeRoute:
    """One vendor endpoint: ``method`` on ``host`` with a path matching ``path`` (a regex,
    matched in full against the decoded path); ``handler`` builds the answer from the request
    and the match (named groups are the path parameters)."""

    method: str
    host: str
    path: str
    handler: Handler
    summary: str = ""

    def match(self, method: str, host: str, path: str) -> re.Match[str] | None:
        if method != self.method or host != self.host:
            return None
        return re.fullmatch(self.path, path)


def static(body: Any, *, status: int = 200) -> Handler:
    """A handler that always answers the same JSON."""

    def handler(request: FakeRequest, match: re.Match[str]) -> FakeReply:
        return FakeReply(body, status=status)

    return handler


@dataclass(frozen=True)
class FakeCall:
    """One call the fake answered (for the demo's report)."""

    method: str
    host: str
    path: str
    status: int


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready TCP socket bound to a free port on `host` (the kernel picks it, so two
    demos or a running `lxhub up` never collide)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class BackgroundServer:
    """A uvicorn server on a pre-bound socket, run in a daemon thread.

    Binding the socket first (instead of asking uvicorn for port 0) gives the port before the
    server starts and leaves no window for another process to take it.
    """

    def __init__(self, server: uvicorn.Server, *, host: str = "127.0.0.1") -> None:
        self._server = server
        self._socket = free_socket(host)
        self.host, self.port = self._socket.getsockname()[:2]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the local server on {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10.0)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeVendorApi:
    """The vendors' APIs, as far as the demo's connectors call them."""

    def __init__(self, routes: Sequence[FakeRoute] = ()) -> None:
        self.routes: list[FakeRoute] = list(routes)
        self.calls: list[FakeCall] = []
        self.unmatched: list[FakeCall] = []
        # Vendor-side state handlers keep between calls (e.g. Graph subscriptions).
        self.state: dict[str, Any] = {}
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route(
                    VENDOR_PREFIX + "/{host}/{path:path}",
                    self._endpoint,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                )
            ]
        )
        config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            ws="none",
        )
        self._server = BackgroundServer(uvicorn.Server(config))

    def add(self, routes: Sequence[FakeRoute]) -> None:
        self.routes.extend(routes)

    @property
    def url(self) -> str:
        return self._server.url

    def vendor_url(self, host: str) -> str:
        """Where calls to ``https://{host}`` land on this fake (for clients we cannot give a
        transport, like slack_sdk's WebClient)."""
        return f"{self.url}{VENDOR_PREFIX}/{host}"

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport that sends every request to this fake instead of its host."""
        return VendorRedirect(self.url)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def _answer(self, request: FakeRequest) -> FakeReply:
        for route in self.routes:
            match = route.match(request.method, request.host, request.path)
            if match is not None:
                return route.handler(request, match)
        return FakeReply(
            {"error": "not_found", "message": "the demo's fake vendor API has no such route"},
            status=404,
        )

    async def _endpoint(self, request: Request) -> Response:
        host = request.path_params["host"]
        fake = FakeRequest(
            method=request.method,
            host=host,
            path="/" + request.path_params["path"],
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        # Handlers are tiny and touch shared state: one at a time keeps them simple.
        with self._lock:
            try:
                reply = self._answer(fake)
            except Exception as exc:  # a demo bug must read as one, not as a vendor outage
                reply = FakeReply({"error": f"fake handler crashed: {exc!r}"}, status=500)
            call = FakeCall(fake.method, host, fake.path, reply.status)
            self.calls.append(call)
            if reply.status == 404:
                self.unmatched.append(call)
        return Response(
            reply.encode(),
            status_code=reply.status,
            headers=dict(reply.headers),
            media_type=reply.content_type,
        )


class VendorRedirect(httpx.BaseTransport):
    """Sends ``https://{host}/{path}?{query}`` to ``{fake}/_vendor/{host}/{path}?{query}``.

    The request keeps its method, headers (with Host corrected) and body, so the fake sees what
    the vendor would see.
    """

    def __init__(self, fake_url: str) -> None:
        self._fake = httpx.URL(fake_url)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        original = request.url
        raw_path = f"{VENDOR_PREFIX}/{original.host}".encode() + original.raw_path
        request.url = self._fake.copy_with(raw_path=raw_path)
        request.headers["Host"] = self._fake.netloc.decode("ascii")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
