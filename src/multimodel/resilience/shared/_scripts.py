"""The Lua scripts of the shared state, and the Redis keys they run on.

Each script checks and changes one deployment's (or one budget cell's) keys atomically, on
Redis's own clock (``TIME``). Every key of a prefix carries one hash tag, so on Redis Cluster
they all live on one slot and one script can read a deployment's limits, hold, breaker and the
budgets that cover it together.
"""

from __future__ import annotations

import hashlib

__all__ = ["PROBE_MS", "SCRIPTS", "SHA", "WINDOW_MS", "KeyLayout"]

WINDOW_MS = 60_000
PROBE_MS = 30_000  # the longest a half-open probe slot is held when its owner never reports

# KEYS: requests log, tokens log, token sizes, tokens used, hold, breaker, probe, then the
#   spend of each budget cell covering the attempt (nano-USD, reservations included)
# ARGV: rpm, tpm, tokens, member, number of budget cells, then per cell: limit (-1: none),
#   estimate, time to live (ms)
# Returns {1, probe, now} when admitted (and reserved), {0, wait_ms, kind[, cell, spend]} when
# not.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local member = ARGV[4]
local win = 60000  -- keys live 2 windows: an answer moves its entry up to `timeout` later
local hold = tonumber(redis.call('GET', KEYS[5]) or '0')
if hold > now then return {0, hold - now, 'hold'} end
local open = tonumber(redis.call('GET', KEYS[6]) or '0')
if open > now then return {0, open - now, 'open'} end
local probe = 0
if open > 0 then
  if not redis.call('SET', KEYS[7], member, 'NX', 'PX', 30000) then
    local left = redis.call('PTTL', KEYS[7])
    if left < 1 then left = 100 end
    return {0, math.min(left, 1000), 'probe'}
  end
  probe = 1
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    if probe == 1 then redis.call('DEL', KEYS[7]) end
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + win - now), 'rpm'}
  end
end
if tpm > 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - win)
  if #expired > 0 then
    local freed = 0
    for i = 1, #expired do
      freed = freed + tonumber(redis.call('HGET', KEYS[3], expired[i]) or '0')
      redis.call('HDEL', KEYS[3], expired[i])
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - win)
    redis.call('DECRBY', KEYS[4], freed)
  end
  local used = tonumber(redis.call('GET', KEYS[4]) or '0')
  local amount = math.min(tokens, tpm)
  local excess = used + amount - tpm
  if excess > 0 then
    if probe == 1 then redis.call('DEL', KEYS[7]) end
    local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
    local freed = 0
    for i = 1, #entries, 2 do
      freed = freed + tonumber(redis.call('HGET', KEYS[3], entries[i]) or '0')
      if freed >= excess then
        return {0, math.max(1, tonumber(entries[i + 1]) + win - now), 'tpm'}
      end
    end
    return {0, win, 'tpm'}
  end
end
local cells = tonumber(ARGV[5])
for i = 1, cells do
  local limit = tonumber(ARGV[3 + 3 * i])
  if limit >= 0 then
    local used = tonumber(redis.call('GET', KEYS[7 + i]) or '0')
    if used + tonumber(ARGV[4 + 3 * i]) > limit then
      if probe == 1 then redis.call('DEL', KEYS[7]) end
      return {0, 0, 'budget', i, used}
    end
  end
end
for i = 1, cells do
  redis.call('INCRBY', KEYS[7 + i], ARGV[4 + 3 * i])
  redis.call('PEXPIRE', KEYS[7 + i], ARGV[5 + 3 * i])
end
if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('PEXPIRE', KEYS[1], 2 * win)
end
if tpm > 0 then
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('HSET', KEYS[3], member, tokens)
  redis.call('INCRBY', KEYS[4], tokens)
  redis.call('PEXPIRE', KEYS[2], 2 * win)
  redis.call('PEXPIRE', KEYS[3], 2 * win)
  redis.call('PEXPIRE', KEYS[4], 2 * win)
end
return {1, probe, now}
"""

# KEYS: requests log, tokens log, token sizes, tokens used; ARGV: member, the time the answer came (ms, Redis clock).
# The provider counted the request somewhere between admission and answer: logging it at the
# answer's time never lets the next window start early (admission-to-arrival delays vary).
# KEYS: a budget cell's spend, its alert flag; ARGV: real cost - estimate (nano-USD), the
# alert threshold (-1: none), time to live (ms). Returns the spend when this call crossed the
# threshold first in the fleet (the alert fires once per window), else -1.
_SPEND = """
local spent = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local threshold = tonumber(ARGV[2])
if threshold >= 0 and spent >= threshold then
  if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[3]) then return spent end
end
return -1
"""

_TOUCH = """
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], 120000) end
return 1
"""

# KEYS: tokens log, token sizes, tokens used; ARGV: member, actual tokens
_RECONCILE = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], new)
redis.call('INCRBY', KEYS[3], new - old)
return 1
"""

# KEYS: a time key; ARGV: milliseconds from now, extra milliseconds to keep the key.
# Sets the key to max(current, now + ms) (a hold or an open breaker: never shortened).
_EXTEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= untl then return 0 end
redis.call('SET', KEYS[1], untl, 'PX', tonumber(ARGV[1]) + tonumber(ARGV[2]))
return 1
"""


# KEYS: requests log, tokens log, token sizes, tokens used; ARGV: member, time (ms), rpm, tpm,
# tokens. A reservation admitted on local state during an outage, written back afterwards.
_RESTORE = """
local at = tonumber(ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', KEYS[1], 'NX', at, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 120000)
end
if tonumber(ARGV[4]) > 0 and redis.call('ZADD', KEYS[2], 'NX', at, ARGV[1]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
  redis.call('INCRBY', KEYS[4], ARGV[5])
  for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], 120000) end
end
return 1
"""

SCRIPTS = {
    "admit": _ADMIT,
    "reconcile": _RECONCILE,
    "extend": _EXTEND,
    "touch": _TOUCH,
    "spend": _SPEND,
    "restore": _RESTORE,
}
# Redis names a script by its SHA-1 (EVALSHA): an identifier, not a security measure.
SHA = {
    name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    for name, text in SCRIPTS.items()
}


class KeyLayout:
    """The names of the keys under ``prefix`` (one hash tag: one Cluster slot)."""

    prefix: str

    def _key(self, deployment: str, what: str) -> str:
        # One hash tag: on Redis Cluster every key lives on one slot, so one script can check
        # a deployment's limits, hold, breaker and the budgets that cover it together.
        return f"{{{self.prefix}}}:{deployment}:{what}"

    def _budget_key(self, name: str, key: str, period: str) -> str:
        return f"{{{self.prefix}}}:budget:{name}:{key}:{period}"

    @property
    def _events_key(self) -> str:
        return f"{{{self.prefix}}}:events"
