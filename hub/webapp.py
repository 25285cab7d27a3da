"""The full web app of a running hub: the receiver plus metrics, status and the local LRS.

`hub.web.create_app` is the receiver; this module wires it to a `HubRuntime` and adds the
operator routes:

* `GET /metrics`: Prometheus text (all processes' counters plus store gauges). No secrets in it.
* `GET /` (status page), `GET /api/status`: behind the admin token. The page signs in with a
  form that sets an HttpOnly, SameSite=Strict cookie holding an HMAC of the token (never the
  token itself); API clients send `Authorization: Bearer <token>`.
* `GET /xapi/statements`: read-only view of the local destination (also behind the token:
  statements hold personal data).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.resources
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from hub import status
from hub.local_lrs import LocalLrsTransport
from hub.metrics import EXPOSITION_CONTENT_TYPE
from hub.runtime import HubRuntime
from hub.web import create_app
from hub.webhooks import Receiver, ReceiverInstance

COOKIE = "lxhub_admin"


def _page(name: str) -> str:
    return importlib.resources.files("hub.static").joinpath(name).read_text(encoding="utf-8")


class AdminAuth:
    """Checks the admin token (constant-time); no token configured means the operator routes
    are closed, not open."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def session_value(self) -> str:
        if self._token is None:
            raise RuntimeError("no admin token configured")
        return hmac.new(self._token, b"lxhub-status-session", hashlib.sha256).hexdigest()

    def allows(self, request: Request) -> bool:
        if self._token is None:
            return False
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return hmac.compare_digest(header[7:].strip().encode(), self._token)
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, self.session_value())

    def login(self, supplied: str) -> bool:
        return self._token is not None and hmac.compare_digest(supplied.encode(), self._token)

    @property
    def configured(self) -> bool:
        return self._token is not None


def build_app(runtime: HubRuntime, *, broker_ping: Callable[[], bool] | None = None) -> Starlette:
    cfg = runtime.config
    receiver = Receiver(
        {
            iid: ReceiverInstance(connector=b.connector, enabled=b.enabled)
            for iid, b in runtime.connectors.items()
        },
        store=runtime.store,
        enqueuer=runtime.inbox,
        clock=runtime.clock,
        max_body_bytes=cfg.web.max_body_bytes,
        dedupe_ttl=cfg.web.dedupe_ttl,
    )
    runtime.receiver_stats = receiver.stats
    token = cfg.web.admin_token.get_secret_value() if cfg.web.admin_token else None
    auth = AdminAuth(token)

    def readiness() -> dict[str, bool]:
        checks = {"store": _safe(runtime.store.ping)}
        if broker_ping is not None:
            checks["broker"] = _safe(broker_ping)
        return checks

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(runtime.metrics.exposition, runtime)
        return Response(body, media_type=EXPOSITION_CONTENT_TYPE)

    async def status_api(request: Request) -> Response:
        if not auth.allows(request):
            return JSONResponse({"error": "unauthorized", "message": _auth_hint(auth)}, 401)
        report = await run_in_threadpool(status.collect, runtime)
        return Response(report.model_dump_json(), media_type="application/json")

    async def status_page(request: Request) -> Response:
        if not auth.allows(request):
            html = _page("login.html").replace("{{hint}}", _auth_hint(auth))
            return HTMLResponse(html, status_code=401)
        return HTMLResponse(_page("status.html"))

    async def login(request: Request) -> Response:
        # Parsed here rather than with request.form(), which needs python-multipart for one field.
        body = (await request.body())[:4096].decode("utf-8", "replace")
        supplied = parse_qs(body).get("token", [""])[0]
        if not auth.login(supplied):
            html = _page("login.html").replace("{{hint}}", "That token is not right.")
            return HTMLResponse(html, status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            auth.session_value(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def statements(request: Request) -> Response:
        if not auth.allows(request):
            return JSONResponse({"error": "unauthorized", "message": _auth_hint(auth)}, 401)
        transport = LocalLrsTransport(runtime.local_lrs)
        answer = await run_in_threadpool(transport.handle_get, request.url.query)
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type="application/json",
            headers={"X-Experience-API-Version": "1.0.3"},
        )

    return create_app(
        receiver=receiver,
        readiness=readiness,
        extra_routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/", status_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/api/status", status_api, methods=["GET"]),
            Route("/xapi/statements", statements, methods=["GET"]),
        ],
    )


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


def _auth_hint(auth: AdminAuth) -> str:
    if not auth.configured:
        return (
            "No admin token is configured: set web.admin_token in hub.yaml "
            "(e.g. ${LXHUB_ADMIN_TOKEN}) to open the status page."
        )
    return "Sign in with the admin token (web.admin_token in hub.yaml)."
