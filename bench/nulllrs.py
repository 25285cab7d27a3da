"""A null LRS for the benchmark: stores nothing, counts statements, answers fast.

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length bodies only, no chunked uploads), so it
is never the bottleneck of a hub benchmark. It speaks just enough xAPI for the hub's LRS client:

* ``POST /xAPI/statements`` with a JSON array (or one object): 200 and the array of ids. Each
  statement id's FIRST arrival is recorded with the wall-clock time (``time.time()``, the same
  clock the benchmark driver uses on this machine) and the statement's ``object.id``, which
  carries the webhook event's session id, so receipt-to-stored latency can be computed.
* ``GET /xAPI/statements?statementId=…``: 404 (it keeps no statements).
* ``GET /xAPI/about``: the versions.
* ``GET /bench/stats``: ``{"statements", "unique", "duplicates", "requests"}``.
* ``GET /bench/arrivals?since=K``: arrivals K.. as ``[[id, t, object_id], …]`` (for polling).
* ``GET /bench/bodies?limit=N``: up to N raw statement bodies as a JSON array (what the hub sent,
  reused by the direct-POST baselines). Only the first ``--keep-bodies`` are kept.
* ``POST /bench/reset``: forget everything.

Run: ``python bench/nulllrs.py --port 8099`` (binds 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Counts:
    keep_bodies: int
    statements: int = 0
    duplicates: int = 0
    requests: int = 0
    first_seen: dict[str, float] = field(default_factory=dict)
    arrivals: list[tuple[str, float, str]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)

    def reset(self) -> None:
        self.statements = self.duplicates = self.requests = 0
        self.first_seen.clear()
        self.arrivals.clear()
        self.bodies.clear()

    def take(self, doc: Any, now: float) -> list[str]:
        items = doc if isinstance(doc, list) else [doc]
        ids: list[str] = []
        for st in items:
            if not isinstance(st, dict):
                continue
            sid = str(st.get("id", ""))
            ids.append(sid)
            self.statements += 1
            if sid in self.first_seen:
                self.duplicates += 1
                continue
            self.first_seen[sid] = now
            obj = st.get("object")
            oid = str(obj.get("id", "")) if isinstance(obj, dict) else ""
            self.arrivals.append((sid, now, oid))
            if len(self.bodies) < self.keep_bodies:
                self.bodies.append(st)
        return ids


def _response(status: int, body: bytes, *, reason: str = "OK") -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Experience-API-Version: 1.0.3\r\n\r\n"
    )
    return head.encode() + body


class NullLrs:
    def __init__(self, keep_bodies: int) -> None:
        self.counts = Counts(keep_bodies=keep_bodies)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(10_000_000):  # keep-alive, bounded
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = (lines[0].split(" ") + ["", ""])[:3]
                length = 0
                close = False
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    lname = name.strip().lower()
                    if lname == "content-length":
                        length = int(value.strip())
                    elif lname == "connection" and value.strip().lower() == "close":
                        close = True
                if length > MAX_BODY_BYTES:
                    writer.write(_response(413, b"{}", reason="Too Large"))
                    await writer.drain()
                    return
                body = await reader.readexactly(length) if length else b""
                writer.write(self.route(method, target, body))
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    def route(self, method: str, target: str, body: bytes) -> bytes:
        now = time.time()
        url = urlsplit(target)
        path = url.path.rstrip("/")
        query = parse_qs(url.query)
        c = self.counts
        if path.endswith("/statements") and method in ("POST", "PUT"):
            c.requests += 1
            try:
                doc = json.loads(body)
            except ValueError:
                return _response(400, b'{"message":"bad json"}', reason="Bad Request")
            return _response(200, json.dumps(c.take(doc, now)).encode())
        if path.endswith("/statements") and method == "GET":
            return _response(404, b'{"message":"null LRS keeps nothing"}', reason="Not Found")
        if path.endswith("/about"):
            return _response(200, b'{"version":["1.0.3","2.0.0"]}')
        if path == "/bench/stats":
            stats = {
                "statements": c.statements,
                "unique": len(c.first_seen),
                "duplicates": c.duplicates,
                "requests": c.requests,
            }
            return _response(200, json.dumps(stats).encode())
        if path == "/bench/arrivals":
            since = int(query.get("since", ["0"])[0])
            return _response(200, json.dumps(c.arrivals[since:]).encode())
        if path == "/bench/bodies":
            limit = int(query.get("limit", ["1000"])[0])
            return _response(200, json.dumps(c.bodies[:limit]).encode())
        if path == "/bench/reset" and method == "POST":
            c.reset()
            return _response(200, b"{}")
        return _response(404, b"{}", reason="Not Found")


async def serve(port: int, keep_bodies: int) -> None:
    lrs = NullLrs(keep_bodies)
    server = await asyncio.start_server(
        lrs.handle, "127.0.0.1", port, limit=MAX_HEADER_BYTES, backlog=512
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keep-bodies", type=int, default=5000)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.keep_bodies))


if __name__ == "__main__":
    main()
