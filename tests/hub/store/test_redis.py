"""Redis-only behaviour that needs no server."""

from __future__ import annotations

import pytest
import redis

from hub.store.redis import RedisStore


def test_a_decoding_client_is_refused() -> None:
    # Bodies are raw bytes; a client that decodes replies would corrupt them.
    client = redis.Redis(decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client)
    client.close()


def test_from_url_applies_the_prefix() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", prefix="tenant-a")
    assert store.keys.cursor("i") == "tenant-a:cursor:i"
    assert store.ping() is False  # nothing listens on port 1: ping reports, never raises
    store.close()
