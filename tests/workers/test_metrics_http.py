"""The worker's `/metrics` server: only `GET`/`HEAD /metrics`, a failing render answers 500 and
the server keeps serving, and a port in use is a clear CLI error."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hub.metrics import EXPOSITION_CONTENT_TYPE
from workers.metrics_http import MetricsServer


@pytest.fixture
def served() -> Iterator[tuple[str, list[bytes | Exception]]]:
    answers: list[bytes | Exception] = []

    def render() -> bytes:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    server = MetricsServer(render, host="127.0.0.1", port=0).start()
    host, port = server.address
    try:
        yield f"http://{host}:{port}", answers
    finally:
        server.stop()


def test_metrics_are_served_and_nothing_else(
    served: tuple[str, list[bytes | Exception]],
) -> None:
    url, answers = served
    answers += [b"lxhub_statements_delivered_total 3.0\n", RuntimeError("boom"), b"x 1.0\n"]
    ok = httpx.get(url + "/metrics")
    assert (ok.status_code, ok.headers["content-type"]) == (200, EXPOSITION_CONTENT_TYPE)
    assert ok.content == b"lxhub_statements_delivered_total 3.0\n"
    assert httpx.get(url + "/metrics").status_code == 500  # the render failed ...
    assert httpx.get(url + "/metrics?x=1").content == b"x 1.0\n"  # ... and the next one works
    assert httpx.get(url + "/").status_code == 404
    assert httpx.get(url + "/status").status_code == 404
    assert httpx.post(url + "/metrics").status_code == 501
    assert answers == []


def test_a_port_in_use_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.cli import main

    config = Path(__file__).resolve().parents[2] / "config"
    monkeypatch.setenv("LXHUB_DATA_DIR", str(tmp_path))
    # The command sets it for its process; monkeypatch puts back what this process had.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["--config", str(config), "worker", "--metrics-port", str(port)]
        )
    assert result.exit_code == 1, result.output
    assert f"--metrics-port: cannot listen on 127.0.0.1:{port}" in result.output
    assert "choose a free port" in result.output
