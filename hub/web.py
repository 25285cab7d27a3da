"""The ASGI web receiver: `/webhooks/{connector_id}`, `/healthz`, `/readyz` (DESIGN §1 HTTP).

A thin Starlette layer over `hub.webhooks.Receiver`: it refuses what it can before reading a byte
of the body (unknown instance, oversized Content-Length), streams the body while counting so it
never holds more than the cap, builds the `WebhookRequest`, and runs the (blocking) receive
algorithm in a worker thread so one slow store call never stalls the event loop.

`/metrics` and the status page are other engineers' routes, added with `extra_routes`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub.events import WebhookRequest, WebhookResponse
from hub.webhooks import Receiver

__all__ = ["Pingable", "create_app", "make_server", "readiness_checks", "serve"]

logger = logging.getLogger(__name__)

# After refusing an oversized body, read and discard at most this much more of it, so a client
# that is still sending sees the 413 instead of a reset connection; beyond it, just close.
_DRAIN_LIMIT_BYTES = 4 * 1_048_576


class Pingable(Protocol):
    def ping(self) -> bool: ...


def readiness_checks(**components: Pingable) -> Callable[[], dict[str, bool]]:
    """A `readiness` callable for `create_app`: `readiness_checks(broker=enqueuer, store=store)`.

    A check that raises counts as failed: readiness must answer, not crash.
    """

    def check() -> dict[str, bool]:
        results: dict[str, bool] = {}
        for name, component in components.items():
            try:
                results[name] = bool(component.ping())
            except Exception as exc:
                logger.warning("readiness check %s raised %s", name, type(exc).__name__)
                results[name] = False
        return results

    return check


def _to_starlette(answer: WebhookResponse) -> Response:
    return Response(
        content=answer.body,
        status_code=answer.status,
        headers=dict(answer.headers),
        media_type=answer.content_type,
    )


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None  # the server (h11/httptools) already refuses a malformed one


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` (never buffering more)."""
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _drain(stream, already=size)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(stream: AsyncIterator[bytes], *, already: int) -> None:
    # Discarded, not kept: memory stays bounded by the chunk size.
    seen = already
    async for chunk in stream:
        seen += len(chunk)
        if seen > _DRAIN_LIMIT_BYTES:
            return


def _headers(request: Request) -> dict[str, str]:
    # Lower-cased names; a repeated header is joined with ", " (RFC 9110 §5.3).
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def create_app(
    *,
    receiver: Receiver,
    readiness: Callable[[], Mapping[str, bool]],
    extra_routes: Iterable[BaseRoute] = (),
) -> Starlette:
    """The receiver's ASGI app.

    Args:
        receiver: runs the receive algorithm for `POST/GET /webhooks/{connector_id}`.
        readiness: returns one boolean per dependency (`{"broker": True, "store": False}`);
            `/readyz` is 200 only when all are true. Called in a worker thread (it does I/O).
        extra_routes: more routes (metrics, status page), mounted after these.
    """

    async def webhook(request: Request) -> Response:
        instance_id: str = request.path_params["connector_id"]
        early = receiver.admit(
            instance_id, method=request.method, content_length=_content_length(request)
        )
        if early is not None:
            return _to_starlette(early)
        try:
            body = await _read_limited(request, receiver.max_body_bytes)
        except ClientDisconnect:
            logger.info("client went away mid-body for %s", instance_id,
                        extra={"instance": instance_id})  # fmt: skip
            return Response(status_code=400)  # nobody will read it; nothing was enqueued
        if body is None:
            return _to_starlette(receiver.body_too_large(instance_id))
        wr = WebhookRequest(
            method=request.method,
            path=request.url.path,
            query_string=request.url.query,
            headers=_headers(request),
            body=body,
            received_at=receiver.clock.now(),
            client_host=request.client.host if request.client else None,
        )
        answer = await run_in_threadpool(receiver.receive, instance_id, wr)
        return _to_starlette(answer)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            checks = dict(await run_in_threadpool(readiness))
        except Exception as exc:
            logger.warning("readiness callable raised %s", type(exc).__name__)
            checks = {"readiness": False}
        failed = sorted(name for name, ok in checks.items() if not ok)
        body = {"status": "unavailable" if failed else "ready", "checks": checks, "failed": failed}
        return JSONResponse(body, status_code=503 if failed else 200)

    routes: list[BaseRoute] = [
        Route("/webhooks/{connector_id}", webhook, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes)


def make_server(
    app: Starlette,
    host: str,
    port: int,
    *,
    graceful_timeout: int = 10,
    access_log: bool = False,
) -> uvicorn.Server:
    """A configured uvicorn server; `.run()` blocks, `.should_exit = True` stops it gracefully.

    Graceful shutdown: on SIGTERM/SIGINT (when run in the main thread) or `should_exit`, uvicorn
    stops accepting, lets in-flight requests finish for up to `graceful_timeout` seconds, then
    closes. A webhook whose enqueue had not finished gets no 2xx, so its source retries.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        timeout_graceful_shutdown=graceful_timeout,
        access_log=access_log,  # off by default: query strings may carry tokens (query_token)
        log_config=None,  # the process configures logging, not uvicorn
        server_header=False,
        ws="none",  # no websocket routes: don't import a websocket library at all
    )
    return uvicorn.Server(config)


def serve(
    app: Starlette,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    graceful_timeout: int = 10,
    access_log: bool = False,
) -> None:
    """Run the app with uvicorn until SIGTERM/SIGINT, shutting down gracefully (blocking)."""
    make_server(app, host, port, graceful_timeout=graceful_timeout, access_log=access_log).run()
