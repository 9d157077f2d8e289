"""SUPPORT_ENV_STORE=redis://host:port/db: episode logs in Redis (or Valkey), shared
by replicas on many machines.

Per episode a hash `support_env:ep:<id>` (reset arguments, generation, length,
done) and a list `support_env:log:<id>` (the actions, as JSON), both
expiring after the idle TTL (renewed on use); a sorted set `support_env:index`
of the episodes by last use enforces the cap. Starting an episode and
appending to one are Lua scripts, so each is atomic: an append lands at the end
of the log and answers with the actions before it that its writer had not seen.
Durability is Redis's own: run it with `--appendonly yes` (deploy/ does). With
`--appendfsync everysec` (deploy/'s) a crash of Redis itself, or of its machine,
may lose the last second or two of acknowledged steps (Redis holds its writes
back while a slow fsync runs); a replica restarting loses nothing. With
`always` Redis writes and fsyncs before it replies and loses nothing it
acknowledged, at ~1.8 ms more per step here (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from server.stores.base import Appended, EpisodeLog, Record, SessionCapacityReached, StoreUnavailable

PREFIX = "support_env:"
SOCKET_TIMEOUT_S = 2.0

# KEYS: index, ep, log. ARGV: id, reset, generation, now, ttl_s, max_sessions, prefix, ttl_ms, evict_running
START = """
local cutoff = tonumber(ARGV[4]) - tonumber(ARGV[5])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)) do
  redis.call('DEL', ARGV[7] .. 'ep:' .. id, ARGV[7] .. 'log:' .. id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[6]) then
  local victim = nil
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if ARGV[9] == '1' or redis.call('HGET', ARGV[7] .. 'ep:' .. id, 'done') == '1' then victim = id break end
  end
  if not victim then return 0 end
  redis.call('DEL', ARGV[7] .. 'ep:' .. victim, ARGV[7] .. 'log:' .. victim)
  redis.call('ZREM', KEYS[1], victim)
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[2], 'reset', ARGV[2], 'gen', ARGV[3], 'steps', 0, 'done', 0)
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
return 1
"""

# KEYS: ep, log, index. ARGV: generation, known, action, now, ttl_ms, id
APPEND = """
local head = redis.call('HMGET', KEYS[1], 'gen', 'steps', 'done')
if not head[1] then return {'gone'} end
local steps, known = tonumber(head[2]), tonumber(ARGV[2])
if head[1] ~= ARGV[1] or known > steps then return {'reset'} end
local before = {}
if steps > known then before = redis.call('LRANGE', KEYS[2], known, steps - 1) end
if head[3] == '1' then return {'done', steps, before} end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'steps', steps + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
return {'ok', steps, before}
"""

# KEYS: ep. ARGV: generation
FINISH = """
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then redis.call('HSET', KEYS[1], 'done', 1) end
return 1
"""

# KEYS: ep, log, index. ARGV: start, touch, now, ttl_ms, id
READ = """
local head = redis.call('HMGET', KEYS[1], 'reset', 'gen', 'steps', 'done')
if not head[1] then return nil end
if ARGV[2] == '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
end
local entries = {}
if tonumber(head[3]) > tonumber(ARGV[1]) then entries = redis.call('LRANGE', KEYS[2], ARGV[1], -1) end
return {head[1], head[2], head[3], head[4], entries}
"""


class RedisLog(EpisodeLog):
    name = "redis"

    def __init__(self, url: str, max_sessions: int, idle_ttl_s: float, namespace: str = "", evict_running: bool = False):
        super().__init__(max_sessions, idle_ttl_s, evict_running)
        self.url = url
        self.prefix = PREFIX + (f"{namespace}:" if namespace else "")
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            decode_responses=True,
            retry=Retry(NoBackoff(), 1),  # once, on a fresh connection (a pooled one may predate a Redis restart); then 503
        )
        self._start = self._redis.register_script(START)
        self._append = self._redis.register_script(APPEND)
        self._finish = self._redis.register_script(FINISH)
        self._read = self._redis.register_script(READ)
        self._ttl_ms = max(1, math.ceil(idle_ttl_s * 1000))

    def _call(self, script, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except RedisError as exc:
            where = self._redis.connection_pool.connection_kwargs
            raise StoreUnavailable(
                f"the episode store (Redis at {where.get('host')}:{where.get('port')}/{where.get('db', 0)}) is unavailable: {exc}"
            ) from exc

    def start(self, episode_id: str, reset: dict[str, Any], generation: str, now: float) -> None:
        started = self._call(
            self._start,
            [self.prefix + "index", self.prefix + "ep:" + episode_id, self.prefix + "log:" + episode_id],
            [episode_id, json.dumps(reset), generation, repr(now), repr(self.idle_ttl_s), self.max_sessions, self.prefix, self._ttl_ms,
             int(self.evict_running)],
        )
        if not started:
            raise SessionCapacityReached(self.capacity_message())

    def append(self, episode_id: str, generation: str, known: int, action: str, now: float) -> Appended:
        reply = self._call(
            self._append,
            [self.prefix + "ep:" + episode_id, self.prefix + "log:" + episode_id, self.prefix + "index"],
            [generation, known, action, repr(now), self._ttl_ms, episode_id],
        )
        return Appended(reply[0], int(reply[1]), list(reply[2])) if len(reply) == 3 else Appended(reply[0])

    def finish(self, episode_id: str, generation: str) -> None:
        self._call(self._finish, [self.prefix + "ep:" + episode_id], [generation])

    def read(self, episode_id: str, start: int, now: float, touch: bool) -> Optional[Record]:
        found = self._call(
            self._read,
            [self.prefix + "ep:" + episode_id, self.prefix + "log:" + episode_id, self.prefix + "index"],
            [start, int(touch), repr(now), self._ttl_ms, episode_id],
        )
        if not found:
            return None
        reset, generation, steps, done, actions = found
        return Record(json.loads(reset), generation, int(steps), done == "1", list(actions))

    def default_id(self) -> Optional[str]:
        try:
            return self._redis.get(self.prefix + "default")
        except RedisError as exc:
            raise StoreUnavailable(f"the episode store (Redis) is unavailable: {exc}") from exc

    def set_default(self, episode_id: str) -> None:
        try:
            self._redis.set(self.prefix + "default", episode_id)
        except RedisError as exc:
            raise StoreUnavailable(f"the episode store (Redis) is unavailable: {exc}") from exc

    def ping(self) -> Optional[str]:
        """Why Redis cannot be used now (None if it answers)."""
        try:
            self._redis.ping()
        except RedisError as exc:
            return str(exc)
        return None

    def close(self) -> None:
        self._redis.close()
