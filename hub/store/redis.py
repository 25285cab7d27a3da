"""`Store` on Redis: the production backend, shared by every worker and the webhook receiver.

Layout (key names come from `hub.store.keys` only; see `OutboxKeys` for the outbox):

* an outbox is a ZSET of statement ids scored by due time (µs), a ZSET of leased ids scored by
  lease expiry, a HASH id -> lease id, and HASHes with the bodies (raw bytes) and the rest of each
  `OutboxItem` (JSON). Append, lease, ack and release are Lua scripts, so each is atomic and costs
  one round trip per batch whatever its size.
* dead letters are a HASH of JSON by id plus a ZSET by `last_at` for newest-first listing.
* locks are ``SET NX PX`` with an owner token, refreshed and released by compare-and-act Lua.
* TTLs (locks, seen keys, kv) run on Redis's clock; outbox times come from the caller's `now`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import uuid4

import orjson
import redis
from redis.exceptions import RedisError, WatchError

from hub.store.base import DeadLetter, DeadLetterFilter, Lease, OutboxItem, OutboxStats
from hub.store.keys import RedisKeys

__all__ = ["RedisStore"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
# Redis commands inside a Lua script get their arguments through `unpack`, which is limited by the
# Lua C stack (LUAI_MAXCSTACK, 8000): every variadic call is split in chunks of this many values.
# Must stay even, because ZADD/HSET chunks are (score, member) / (field, value) pairs.
_LUA_CHUNK: Final = 1000
# Client-side batch size for MGET/HMGET over unbounded lists (kv_items, dlq_list).
_READ_BATCH: Final = 500

# A shared prelude: call `cmd key v1 v2 ...` in chunks, concatenating any array replies.
_LUA_CHUNKED = """
local function chunked(cmd, key, list)
  local out = {}
  for i = 1, #list, @CHUNK@ do
    local reply = redis.call(cmd, key, unpack(list, i, math.min(i + @CHUNK@ - 1, #list)))
    if type(reply) == 'table' then
      for _, v in ipairs(reply) do out[#out + 1] = v end
    end
  end
  return out
end
""".replace("@CHUNK@", str(_LUA_CHUNK))

# An item's weight (hub.store.base.item_weight): k for an id "#k#...", else 1.
_LUA_WEIGHT = """
local function weight(id)
  if string.byte(id, 1) ~= 35 then return 1 end
  return tonumber(string.match(id, '^#([1-9]%d?%d?%d?%d?%d?)#')) or 1
end
"""

# KEYS: ready, meta, bodies, enqueued, extra.  ARGV: now_us, then (id, meta_json, body,
# enqueued_us)*. The existence test is HSETNX on `meta`, not ZADD NX on `ready`: an id that is
# currently leased is absent from `ready`, and re-adding it there would deliver it twice.
_APPEND = (
    _LUA_WEIGHT
    + """
local now = ARGV[1]
local added, extra = 0, 0
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[2], id, ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[3], id, ARGV[i + 2])
    redis.call('ZADD', KEYS[1], now, id)
    redis.call('ZADD', KEYS[4], ARGV[i + 3], id)
    added = added + 1
    extra = extra + weight(id) - 1
  end
end
if extra > 0 then redis.call('INCRBY', KEYS[5], extra) end
return added
"""
)

# KEYS: ready, leased, lease_of, bodies, meta.  ARGV: now_us, max_items, expires_us, lease_id.
# Returns {ids, bodies, metas} (empty table when nothing is due).
_LEASE = (
    _LUA_CHUNKED
    + _LUA_WEIGHT
    + """
-- `now` stays the string it came as: scores round-trip exactly, with no Lua number formatting.
local now = ARGV[1]
-- 1. An expired lease belongs to a worker that died or stalled: its items are due again now.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #expired > 0 then
  local scored = {}
  for j, id in ipairs(expired) do scored[2 * j - 1] = now; scored[2 * j] = id end
  chunked('ZADD', KEYS[1], scored)
  chunked('ZREM', KEYS[2], expired)
  chunked('HDEL', KEYS[3], expired)
end
-- 2. Take due ids, earliest due first, up to N units of weight (the first one always).
local most = tonumber(ARGV[2])
local found = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, most)
if #found == 0 then return {} end
local ids, units = {}, 0
for _, id in ipairs(found) do
  local w = weight(id)
  if #ids > 0 and units + w > most then break end
  ids[#ids + 1] = id
  units = units + w
end
local scored, owned = {}, {}
for j, id in ipairs(ids) do
  scored[2 * j - 1] = ARGV[3]; scored[2 * j] = id
  owned[2 * j - 1] = id; owned[2 * j] = ARGV[4]
end
chunked('ZREM', KEYS[1], ids)
chunked('ZADD', KEYS[2], scored)
chunked('HSET', KEYS[3], owned)
return {ids, chunked('HMGET', KEYS[4], ids), chunked('HMGET', KEYS[5], ids)}
"""
)

# KEYS: ready, leased, lease_of, bodies, meta, enqueued, extra.  ARGV: ids.  Returns how many
# existed. Unconditional on purpose: the LRS has confirmed these statements, so even if the lease
# expired (and the ids went back to ready, or to another worker) there is nothing left to deliver.
# Only a weighted id that still existed takes its extra weight off the counter.
_ACK = (
    _LUA_WEIGHT
    + """
local removed, extra = 0, 0
for i = 1, #ARGV, @CHUNK@ do
  local last = math.min(i + @CHUNK@ - 1, #ARGV)
  for j = i, last do
    local id = ARGV[j]
    if string.byte(id, 1) == 35 and redis.call('HEXISTS', KEYS[5], id) == 1 then
      extra = extra + weight(id) - 1
    end
  end
  removed = removed + redis.call('HDEL', KEYS[5], unpack(ARGV, i, last))
  redis.call('ZREM', KEYS[1], unpack(ARGV, i, last))
  redis.call('ZREM', KEYS[2], unpack(ARGV, i, last))
  redis.call('HDEL', KEYS[3], unpack(ARGV, i, last))
  redis.call('HDEL', KEYS[4], unpack(ARGV, i, last))
  redis.call('ZREM', KEYS[6], unpack(ARGV, i, last))
end
if extra > 0 then redis.call('DECRBY', KEYS[7], extra) end
return removed
""".replace("@CHUNK@", str(_LUA_CHUNK))
)

# KEYS: ready, leased, lease_of, meta.
# ARGV: lease_id, not_before_us, count_attempt (1/0), has_error (1/0), error, now_iso, ids...
# Only ids still held by this lease move: after an expiry another worker may hold them, and
# putting them back to ready would hand them out twice.
_RELEASE = """
local lease_id = ARGV[1]
local count_attempt = ARGV[3] == '1'
local has_error = ARGV[4] == '1'
for i = 7, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[3], id) == lease_id then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    if count_attempt or has_error then
      local raw = redis.call('HGET', KEYS[4], id)
      if raw then
        local m = cjson.decode(raw)
        if count_attempt then m['attempts'] = (tonumber(m['attempts']) or 0) + 1 end
        if m['first_failure_at'] == nil or m['first_failure_at'] == cjson.null then
          m['first_failure_at'] = ARGV[6]
        end
        if has_error then m['last_error'] = ARGV[5] end
        redis.call('HSET', KEYS[4], id, cjson.encode(m))
      end
    end
  end
end
return 0
"""

# KEYS: kv key.  ARGV: has_expected (1/0), expected, value, ttl_ms (0: none).
_KV_CAS = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
"""

# KEYS: the seen keys.  ARGV: ttl_ms.  Returns 1 (first time) or 0 (seen before) per key.
# One script instead of a MULTI of N SETs: atomic the same way, and the client packs one command
# and parses one reply instead of N (it was a third of the receiver's CPU on 50-event requests).
_MARK_SEEN_MANY = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('SET', key, '1', 'NX', 'PX', ARGV[1]) and 1 or 0
end
return out
"""

# KEYS: lock.  ARGV: owner, ttl_ms.
_REFRESH_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock.  ARGV: owner.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _aware(dt: datetime, name: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {dt!r}")
    return dt


def _us(dt: datetime) -> int:
    # Every ZSET score is µs since the epoch: below 2**53 until the year 2255, so a double holds
    # it exactly and a time goes in and comes out unchanged. Integer arithmetic on timedeltas,
    # because a float timestamp * 1e6 can land a hair below the exact value.
    return (_aware(dt, "time") - _EPOCH) // _US


def _from_us(us: float) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def _ttl_us(ttl_seconds: float) -> int:
    if not ttl_seconds > 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
    return max(1, math.ceil(ttl_seconds * 1000))


def _text(raw: object) -> str:
    if isinstance(raw, bytes):
        return raw.decode()
    return str(raw)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else _aware(dt, "time").astimezone(UTC).isoformat()


def _parse_iso(text: str | None) -> datetime | None:
    # fromisoformat + astimezone gives `datetime.UTC` as tzinfo; pydantic's own parsing would give
    # its `TzInfo(0)`, equal in value but not the UTC object the rest of the hub compares against.
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def _encode_meta(item: OutboxItem) -> bytes:
    """An `OutboxItem` without its body and id (those are the hash field and the bodies hash)."""
    # orjson: one of these is written and read for every statement and every raw event.
    return orjson.dumps(
        {
            "instance_id": item.instance_id,
            "verb": item.verb,
            "enqueued_at": _iso(item.enqueued_at),
            "received_at": _iso(item.received_at),
            # The release script edits these three with cjson; keep them plain JSON scalars.
            "attempts": item.attempts,
            "first_failure_at": _iso(item.first_failure_at),
            "last_error": item.last_error,
        }
    )


def _decode_item(statement_id: bytes, body: bytes, meta: bytes) -> OutboxItem:
    m: dict[str, Any] = orjson.loads(meta)
    # model_construct: these fields were validated when the item was appended and written by
    # _encode_meta; validating them again for every leased statement was a measured cost.
    return OutboxItem.model_construct(
        statement_id=statement_id.decode(),
        body=body,
        instance_id=m["instance_id"],
        verb=m["verb"],
        enqueued_at=datetime.fromisoformat(m["enqueued_at"]).astimezone(UTC),
        received_at=_parse_iso(m.get("received_at")),
        attempts=int(m.get("attempts") or 0),
        first_failure_at=_parse_iso(m.get("first_failure_at")),
        last_error=m.get("last_error"),
    )


def _encode_letter(letter: DeadLetter) -> str:
    data: dict[str, Any] = letter.model_dump(mode="json", exclude={"body", "stored_version"})
    # Bytes go as base64: pydantic's JSON would emit them as UTF-8 and fail on binary content.
    for field in ("body", "stored_version"):
        value: bytes | None = getattr(letter, field)
        data[field] = None if value is None else base64.b64encode(value).decode("ascii")
    return json.dumps(data, separators=(",", ":"))


def _decode_letter(raw: bytes | str) -> DeadLetter:
    data: dict[str, Any] = json.loads(raw)
    for field in ("body", "stored_version"):
        if data.get(field) is not None:
            data[field] = base64.b64decode(data[field])
    for field in ("first_at", "last_at"):
        data[field] = _parse_iso(data[field])
    return DeadLetter.model_validate(data)


def merge_letters(old: DeadLetter, new: DeadLetter) -> DeadLetter:
    """What `dlq_add` stores when `new.id` already exists (the SQLite store does the same in SQL).

    Attempts add up, `first_at` is the earliest, `last_at` the latest; the cause (stage, reason,
    detail) is the newest; payload fields keep their old value when the new letter has none.
    """
    return new.model_copy(
        update={
            "attempts": old.attempts + new.attempts,
            "first_at": min(old.first_at, new.first_at),
            "last_at": max(old.last_at, new.last_at),
            "lrs": new.lrs if new.lrs is not None else old.lrs,
            "instance_id": new.instance_id if new.instance_id is not None else old.instance_id,
            "statement_id": new.statement_id if new.statement_id is not None else old.statement_id,
            "body": new.body if new.body is not None else old.body,
            "envelope": new.envelope if new.envelope is not None else old.envelope,
            "stored_version": (
                new.stored_version if new.stored_version is not None else old.stored_version
            ),
        }
    )


def letter_matches(letter: DeadLetter, flt: DeadLetterFilter) -> bool:
    """The non-time part of a `DeadLetterFilter` (time bounds are applied on the index)."""
    return (
        (flt.stage is None or letter.stage == flt.stage)
        and (flt.lrs is None or letter.lrs == flt.lrs)
        and (flt.instance_id is None or letter.instance_id == flt.instance_id)
        and (flt.reason is None or letter.reason == flt.reason)
    )


def _batches(seq: Sequence[bytes], size: int) -> Iterable[Sequence[bytes]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class RedisStore:
    """The hub's state in Redis. Thread-safe and fork-safe as far as redis-py's pool is."""

    def __init__(self, client: redis.Redis, *, prefix: str = "hub") -> None:
        # Bodies are raw bytes; a decoding client would mangle them (or fail on binary content).
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisStore needs a client with decode_responses=False")
        self._r = client
        self.keys = RedisKeys(prefix)
        self._append = client.register_script(_APPEND)
        self._lease = client.register_script(_LEASE)
        self._ack = client.register_script(_ACK)
        self._release = client.register_script(_RELEASE)
        self._refresh_lock = client.register_script(_REFRESH_LOCK)
        self._release_lock = client.register_script(_RELEASE_LOCK)
        self._kv_cas = client.register_script(_KV_CAS)
        self._mark_seen_many = client.register_script(_MARK_SEEN_MANY)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "hub") -> RedisStore:
        """`redis://`, `rediss://` or `unix://` URL, as accepted by `redis.Redis.from_url`."""
        return cls(redis.Redis.from_url(url, decode_responses=False), prefix=prefix)

    # -- health ----------------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return bool(self._r.ping())
        except RedisError:
            return False

    def close(self) -> None:
        self._r.close()

    # -- cursors and locks -----------------------------------------------------------------------
    def get_cursor(self, instance_id: str) -> str | None:
        raw = self._r.get(self.keys.cursor(instance_id))
        return None if raw is None else _text(raw)

    def set_cursor(self, instance_id: str, value: str) -> None:
        self._r.set(self.keys.cursor(instance_id), value)

    def delete_cursor(self, instance_id: str) -> None:
        self._r.delete(self.keys.cursor(instance_id))

    def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool:
        return bool(self._r.set(self.keys.lock(name), owner, nx=True, px=_ttl_us(ttl_seconds)))

    def refresh_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool:
        ttl = _ttl_us(ttl_seconds)
        return bool(self._refresh_lock(keys=[self.keys.lock(name)], args=[owner, ttl]))

    def release_lock(self, name: str, *, owner: str) -> None:
        self._release_lock(keys=[self.keys.lock(name)], args=[owner])

    # -- de-duplication and small state ----------------------------------------------------------
    def mark_seen(self, namespace: str, key: str, *, ttl_seconds: float) -> bool:
        # PX rather than EX: sub-second TTLs are legitimate (and what the tests use).
        seen_key = self.keys.seen(namespace, key)
        return bool(self._r.set(seen_key, b"1", nx=True, px=_ttl_us(ttl_seconds)))

    def mark_seen_many(
        self, namespace: str, keys: Sequence[str], *, ttl_seconds: float
    ) -> list[bool]:
        if not keys:
            return []
        seen = [self.keys.seen(namespace, key) for key in keys]
        reply = self._mark_seen_many(keys=seen, args=[_ttl_us(ttl_seconds)])
        return [first == 1 for first in reply]

    def unmark_seen(self, namespace: str, key: str) -> None:
        self._r.delete(self.keys.seen(namespace, key))

    def kv_get(self, namespace: str, key: str) -> str | None:
        raw = self._r.get(self.keys.kv(namespace, key))
        return None if raw is None else _text(raw)

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None:
        px = None if ttl_seconds is None else _ttl_us(ttl_seconds)
        # A plain SET also clears an earlier TTL, which is what "no TTL" means.
        self._r.set(self.keys.kv(namespace, key), value, px=px)

    def kv_delete(self, namespace: str, key: str) -> None:
        self._r.delete(self.keys.kv(namespace, key))

    def kv_compare_and_set(
        self,
        namespace: str,
        key: str,
        *,
        expected: str | None,
        value: str,
        ttl_seconds: float | None = None,
    ) -> bool:
        px = 0 if ttl_seconds is None else _ttl_us(ttl_seconds)
        args: list[str | int] = [int(expected is not None), expected or "", value, px]
        return bool(self._kv_cas(keys=[self.keys.kv(namespace, key)], args=args))

    def kv_items(self, namespace: str) -> list[tuple[str, str]]:
        start = self.keys.kv_prefix(namespace).encode()
        # SCAN may return a key more than once; a set removes the repeats.
        found = {
            bytes(k) for k in self._r.scan_iter(match=self.keys.kv_pattern(namespace), count=1000)
        }
        names = sorted(found)
        items: list[tuple[str, str]] = []
        for batch in _batches(names, _READ_BATCH):
            values = self._r.mget(batch)
            for name, value in zip(batch, values, strict=True):
                if value is not None:  # expired between SCAN and MGET
                    items.append((name[len(start) :].decode(), _text(value)))
        return items

    def incr(self, namespace: str, key: str, amount: int = 1) -> int:
        return int(self._r.incrby(self.keys.counter(namespace, key), amount))

    # -- outboxes --------------------------------------------------------------------------------
    def outbox_append(self, lrs: str, items: Sequence[OutboxItem], *, now: datetime) -> int:
        if not items:
            return 0
        k = self.keys.outbox(lrs)
        args: list[str | bytes | int] = [_us(now)]
        for item in items:
            args += [item.statement_id, _encode_meta(item), item.body, _us(item.enqueued_at)]
        return int(
            self._append(keys=[k.ready, k.meta, k.bodies, k.enqueued, k.extra], args=args)
        )

    def outbox_lease(
        self, lrs: str, *, max_items: int, lease_seconds: float, now: datetime
    ) -> Lease | None:
        if max_items <= 0:
            raise ValueError(f"max_items must be positive, got {max_items!r}")
        k = self.keys.outbox(lrs)
        lease_id = uuid4().hex
        expires_at = _aware(now, "now").astimezone(UTC) + timedelta(seconds=lease_seconds)
        reply = self._lease(
            keys=[k.ready, k.leased, k.lease_of, k.bodies, k.meta],
            args=[_us(now), max_items, _us(expires_at), lease_id],
        )
        if not reply:
            return None
        ids, bodies, metas = reply
        items = [
            _decode_item(sid, body, meta)
            for sid, body, meta in zip(ids, bodies, metas, strict=True)
            # A missing record can only come from a manual edit; skip it rather than fail all.
            if body is not None and meta is not None
        ]
        return Lease(lease_id=lease_id, lrs=lrs, items=items, expires_at=expires_at)

    def outbox_ack(self, lrs: str, lease_id: str, statement_ids: Sequence[str]) -> None:
        if not statement_ids:
            return
        k = self.keys.outbox(lrs)
        self._ack(keys=list(k), args=list(statement_ids))

    def outbox_release(
        self,
        lrs: str,
        lease_id: str,
        statement_ids: Sequence[str],
        *,
        not_before: datetime,
        error: str | None = None,
        count_attempt: bool = True,
        now: datetime,
    ) -> None:
        if not statement_ids:
            return
        k = self.keys.outbox(lrs)
        first_failure = _aware(now, "now").astimezone(UTC).isoformat()
        args: list[str | int] = [
            lease_id,
            _us(not_before),
            int(count_attempt),
            int(error is not None),
            error or "",
            first_failure,
            *statement_ids,
        ]
        self._release(keys=[k.ready, k.leased, k.lease_of, k.meta], args=args)

    def outbox_stats(self, lrs: str, *, now: datetime) -> OutboxStats:
        k = self.keys.outbox(lrs)
        now_us = _us(now)
        pipe = self._r.pipeline(transaction=True)  # MULTI: one consistent snapshot
        pipe.zcard(k.ready)
        pipe.zcount(k.leased, "-inf", now_us)  # expired leases: waiting again in substance
        pipe.zcount(k.leased, f"({now_us}", "+inf")
        pipe.zrange(k.enqueued, 0, 0, withscores=True)
        pipe.get(k.extra)
        ready, expired, leased, oldest, extra = pipe.execute()
        held = int(ready) + int(expired) + int(leased)
        return OutboxStats(
            ready=int(ready) + int(expired),
            leased=int(leased),
            oldest_enqueued_at=_from_us(oldest[0][1]) if oldest else None,
            weight=held + int(extra or 0),
        )

    def outbox_next_due(self, lrs: str) -> datetime | None:
        k = self.keys.outbox(lrs)
        pipe = self._r.pipeline(transaction=True)
        pipe.zrange(k.ready, 0, 0, withscores=True)
        # A leased item is due again when its lease expires (if its worker died before acking).
        pipe.zrange(k.leased, 0, 0, withscores=True)
        ready, leased = pipe.execute()
        scores = [float(entries[0][1]) for entries in (ready, leased) if entries]
        return _from_us(min(scores)) if scores else None

    # -- dead letters ----------------------------------------------------------------------------
    def dlq_add(self, letter: DeadLetter) -> None:
        k = self.keys.dlq()
        # Read-merge-write under WATCH: a concurrent add of the same id retries instead of losing
        # its attempts. Dead letters are rare, so contention on the one hash is not a concern.
        with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(k.letters)  # type: ignore[no-untyped-call]  # untyped in redis-py
                    raw = pipe.hget(k.letters, letter.id)
                    merged = letter if raw is None else merge_letters(_decode_letter(raw), letter)
                    pipe.multi()
                    pipe.hset(k.letters, letter.id, _encode_letter(merged))
                    pipe.zadd(k.by_last, {letter.id: _us(merged.last_at)})
                    pipe.execute()
                    return
                except WatchError:
                    continue

    def dlq_list(self, flt: DeadLetterFilter) -> list[DeadLetter]:
        if flt.limit is not None and flt.limit < 0:
            raise ValueError(f"limit must not be negative, got {flt.limit!r}")
        k = self.keys.dlq()
        # `since` is inclusive and `until` exclusive, on last_at.
        hi = "+inf" if flt.until is None else f"({_us(flt.until)}"
        lo = "-inf" if flt.since is None else str(_us(flt.since))
        out: list[DeadLetter] = []
        offset = 0
        while flt.limit is None or len(out) < flt.limit:
            ids: list[bytes] = self._r.zrevrangebyscore(  # type: ignore[assignment]
                k.by_last, hi, lo, start=offset, num=_READ_BATCH
            )
            if not ids:
                break
            offset += len(ids)
            for raw in self._r.hmget(k.letters, ids):
                if raw is None:
                    continue
                letter = _decode_letter(raw)
                if letter_matches(letter, flt):
                    out.append(letter)
        return out if flt.limit is None else out[: flt.limit]

    def dlq_get(self, letter_id: str) -> DeadLetter | None:
        raw = self._r.hget(self.keys.dlq().letters, letter_id)
        return None if raw is None else _decode_letter(raw)

    def dlq_delete(self, letter_ids: Sequence[str]) -> int:
        if not letter_ids:
            return 0
        k = self.keys.dlq()
        pipe = self._r.pipeline(transaction=True)
        pipe.hdel(k.letters, *letter_ids)
        pipe.zrem(k.by_last, *letter_ids)
        removed, _ = pipe.execute()
        return int(removed)

    def dlq_count(self, *, lrs: str | None = None, stage: str | None = None) -> int:
        k = self.keys.dlq()
        if lrs is None and stage is None:
            return int(self._r.hlen(k.letters))
        flt = DeadLetterFilter(lrs=lrs, stage=stage)
        return sum(
            1
            for _, raw in self._r.hscan_iter(k.letters, count=_READ_BATCH)
            if letter_matches(_decode_letter(raw), flt)
        )
