"""`lxhub worker --metrics-port`: `GET /metrics` served by a worker machine itself.

The web container's `/metrics` merges the counters of every process that shares its
`PROMETHEUS_MULTIPROC_DIR`, which is every process of its machine in the compose file. A worker
on another machine writes to its own directory, so its counters (normalized, delivered,
dead-lettered, poll and delivery durations) were visible nowhere. With `--metrics-port` the
worker serves that machine's merged counters and histograms for Prometheus to scrape.

It serves counters and histograms only: the store gauges (outbox depth, dead letters, circuit)
describe shared state and come from the web's `/metrics`, once, rather than from every worker.

A small standard-library HTTP server on a daemon thread of the worker's main process: no
framework, no other path, nothing but `GET /metrics` (and `HEAD`); anything else is 404.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hub.metrics import EXPOSITION_CONTENT_TYPE

__all__ = ["MetricsServer"]

logger = logging.getLogger(__name__)


class MetricsServer:
    """Serves `render()` at `/metrics` on `host:port` (port 0: any free port) until `stop()`."""

    def __init__(self, render: Callable[[], bytes], *, host: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            server_version = "lxhub-worker"

            def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
                self._answer(send_body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(send_body=False)

            def _answer(self, *, send_body: bool) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                try:
                    body = render()
                except Exception:  # a scrape must never take the worker down
                    logger.exception("rendering /metrics failed")
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", EXPOSITION_CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                logger.debug("metrics scrape: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lxhub-metrics", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
