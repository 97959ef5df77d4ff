"""Change logs: per collection, which record changed when, as sequence numbers.

A collection (the combined event index, a news list, ...) is published as its current set
of ``record id -> content hash``. Publishing compares with the stored set: every record
whose hash differs (new or changed) gets the next sequence number, every record missing
from the new set becomes a tombstone with the next sequence number. Republishing the same
content changes nothing, so "what changed" is decided by content, never by poll time.

What a log holds, per collection::

    epoch        random id of this log; a new log (store wiped, memory store restarted)
                 has a new one, so a token of the old log is refused, never misread
    head         the last sequence number given
    floor        tombstones at or below it were forgotten: older tokens must resync
    generation   source id -> snapshot version of the last published set; a process
                 still on older snapshots cannot publish them over newer ones
    live         record id -> (content hash, sequence)
    dead         record id -> (sequence, removal time), the tombstones

Bounds: ``live`` mirrors the collection (itself bounded by its sources' budgets);
tombstones are kept ``retention_s`` and at most ``max_tombstones`` (the oldest leave first
and raise ``floor``). In bytes: about (id + hash + 40) per live record and (id + 50) per
tombstone.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

#: How long a removal is remembered, and how many at most (per collection).
RETENTION_S = 7 * 86400.0
MAX_TOMBSTONES = 50_000


@dataclass(frozen=True)
class LogView:
    """What changed after a sequence number, read atomically.

    ``changed``: (sequence, id, content hash) of live records; ``removed``: (sequence, id)
    of tombstones; both only past the asked sequence.
    """

    epoch: str | None
    head: int
    floor: int
    changed: list[tuple[int, str, str]]
    removed: list[tuple[int, str]]


def newer_or_equal(generation: Mapping[str, int], stored: Mapping[str, int]) -> bool:
    """Whether ``generation`` is at least as new as ``stored`` for every source both know."""
    return all(generation.get(s, v) >= v for s, v in stored.items())


def new_epoch() -> str:
    return secrets.token_hex(8)


@dataclass
class MemoryChangeLog:
    """One collection's log in this process (the memory store keeps one per collection)."""

    epoch: str = field(default_factory=new_epoch)
    head: int = 0
    floor: int = 0
    generation: dict[str, int] = field(default_factory=dict)
    live: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: In sequence order: a revived id is deleted, a new tombstone appended.
    dead: dict[str, tuple[int, float]] = field(default_factory=dict)

    def publish(
        self,
        generation: Mapping[str, int],
        hashes: Mapping[str, str],
        now: float,
        retention_s: float = RETENTION_S,
        max_tombstones: int = MAX_TOMBSTONES,
    ) -> bool:
        if not newer_or_equal(generation, self.generation):
            return False
        for rid in sorted(hashes):
            digest = hashes[rid]
            current = self.live.get(rid)
            if current is None or current[0] != digest:
                self.head += 1
                self.live[rid] = (digest, self.head)
                self.dead.pop(rid, None)
        for rid in sorted(self.live.keys() - hashes.keys()):
            del self.live[rid]
            self.head += 1
            self.dead[rid] = (self.head, now)
        # Tombstones leave oldest first (dict order is sequence order).
        while self.dead:
            rid, (seq, removed_at) = next(iter(self.dead.items()))
            if removed_at >= now - retention_s and len(self.dead) <= max_tombstones:
                break
            del self.dead[rid]
            self.floor = max(self.floor, seq)
        self.generation = dict(generation)
        return True

    def read(self, after: int) -> LogView:
        changed = sorted(
            (seq, rid, digest) for rid, (digest, seq) in self.live.items() if seq > after
        )
        removed = [(seq, rid) for rid, (seq, _) in self.dead.items() if seq > after]
        return LogView(self.epoch, self.head, self.floor, changed, removed)


# -- Redis -------------------------------------------------------------------------------
# Keys (under the store prefix): sync:{c}:meta hash (epoch, head, floor, gen),
# sync:{c}:hash hash id->hash, sync:{c}:seq zset id->seq, sync:{c}:dead zset id->seq,
# sync:{c}:dead_at zset id->removal time. One script each way, so every read sees one
# published state and two processes publishing at once cannot interleave.

REDIS_PUBLISH = """
local meta, hashes, seqs, dead, dead_at = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local gen = cjson.decode(ARGV[1])
local now, retention, max_dead = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local stored = redis.call('HGET', meta, 'gen')
if stored then
  for source, version in pairs(cjson.decode(stored)) do
    if gen[source] ~= nil and gen[source] < version then return 0 end
  end
end
if not redis.call('HGET', meta, 'epoch') then
  redis.call('HSET', meta, 'epoch', ARGV[5], 'head', 0, 'floor', 0)
end
local head = tonumber(redis.call('HGET', meta, 'head'))
local seen = {}
for i = 6, #ARGV, 2 do
  local id, digest = ARGV[i], ARGV[i + 1]
  seen[id] = true
  if redis.call('HGET', hashes, id) ~= digest then
    head = head + 1
    redis.call('HSET', hashes, id, digest)
    redis.call('ZADD', seqs, head, id)
    redis.call('ZREM', dead, id)
    redis.call('ZREM', dead_at, id)
  end
end
local gone = {}
for _, id in ipairs(redis.call('HKEYS', hashes)) do
  if not seen[id] then table.insert(gone, id) end
end
table.sort(gone)
for _, id in ipairs(gone) do
  head = head + 1
  redis.call('HDEL', hashes, id)
  redis.call('ZREM', seqs, id)
  redis.call('ZADD', dead, head, id)
  redis.call('ZADD', dead_at, now, id)
end
local floor = tonumber(redis.call('HGET', meta, 'floor'))
local function forget(id)
  local seq = tonumber(redis.call('ZSCORE', dead, id))
  if seq > floor then floor = seq end
  redis.call('ZREM', dead, id)
  redis.call('ZREM', dead_at, id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', dead_at, '-inf', '(' .. (now - retention))) do
  forget(id)
end
local extra = redis.call('ZCARD', dead) - max_dead
if extra > 0 then
  for _, id in ipairs(redis.call('ZRANGE', dead, 0, extra - 1)) do forget(id) end
end
redis.call('HSET', meta, 'head', head, 'floor', floor, 'gen', ARGV[1])
return 1
"""

REDIS_READ = """
local meta, hashes, seqs, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local m = redis.call('HMGET', meta, 'epoch', 'head', 'floor')
local live = redis.call('ZRANGEBYSCORE', seqs, '(' .. ARGV[1], '+inf', 'WITHSCORES')
local digests = {}
for i = 1, #live, 2 do table.insert(digests, redis.call('HGET', hashes, live[i])) end
local gone = redis.call('ZRANGEBYSCORE', dead, '(' .. ARGV[1], '+inf', 'WITHSCORES')
return {m, live, digests, gone}
"""


def redis_keys(prefix: str, collection: str) -> list[str]:
    base = f"{prefix}sync:{collection}:"
    return [base + part for part in ("meta", "hash", "seq", "dead", "dead_at")]


def view_of_redis(reply: list[object]) -> LogView:
    """The :class:`LogView` of a ``REDIS_READ`` reply."""
    meta, live, digests, gone = reply  # type: ignore[misc]
    epoch, head, floor = meta  # type: ignore[misc]
    changed = [
        (int(float(live[i + 1])), live[i].decode(), digests[i // 2].decode())  # type: ignore[index]
        for i in range(0, len(live), 2)  # type: ignore[arg-type]
    ]
    removed = [
        (int(float(gone[i + 1])), gone[i].decode())  # type: ignore[index]
        for i in range(0, len(gone), 2)  # type: ignore[arg-type]
    ]
    return LogView(
        epoch.decode() if epoch is not None else None,
        int(head or 0),
        int(floor or 0),
        changed,
        removed,
    )
