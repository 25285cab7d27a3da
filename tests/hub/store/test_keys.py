"""Redis key names: one shape, unambiguous namespaces, literal SCAN patterns."""

from __future__ import annotations

import fnmatch

import pytest

from hub.store.keys import RedisKeys, escape_component, glob_escape


def test_key_shape() -> None:
    k = RedisKeys()
    assert k.cursor("docebo-1") == "hub:cursor:docebo-1"
    assert k.lock("poll:docebo-1") == "hub:lock:poll:docebo-1"
    assert k.seen("slack", "T1:Ev1") == "hub:seen:slack:T1:Ev1"
    assert k.kv("sessions", "a") == "hub:kv:sessions:a"
    assert k.counter("quota", "docebo-1") == "hub:counter:quota:docebo-1"
    assert k.outbox("lrs-main").ready == "hub:outbox:lrs-main:ready"
    assert k.dlq().letters == "hub:dlq:letters"
    assert RedisKeys("test-1").kv("ns", "k") == "test-1:kv:ns:k"


def test_namespaces_with_colons_do_not_overlap() -> None:
    k = RedisKeys()
    # Namespace "a" must not see key "b:c" of namespace "a" confused with namespace "a:b".
    assert k.kv("a:b", "c") != k.kv("a", "b:c")
    assert not k.kv("a:b", "c").startswith(k.kv_prefix("a"))
    assert k.kv("a", "b:c").startswith(k.kv_prefix("a"))


def test_escaping_is_reversible_and_glob_safe() -> None:
    for raw in ["a:b", "a%3Ab", "100%", "plain"]:
        escaped = escape_component(raw)
        assert ":" not in escaped
        assert escaped.replace("%3A", ":").replace("%25", "%") == raw
    # fnmatch has no backslash escapes, so check the pattern shape instead of matching with it.
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert RedisKeys().kv_pattern("se*") == "hub:kv:se\\*:*"
    assert fnmatch.fnmatchcase("hub:kv:sessions:x", RedisKeys().kv_pattern("sessions"))


@pytest.mark.parametrize("prefix", ["", "a:b", "hub*", "x[1]"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid key prefix"):
        RedisKeys(prefix)
