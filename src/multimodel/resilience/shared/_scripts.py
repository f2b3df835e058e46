"""The Lua scripts of the shared state, and the Redis keys they run on.

Each script checks and changes one deployment's (or one budget cell's) keys atomically, on
Redis's own clock (``TIME``). Every key of a prefix carries one hash tag, so on Redis Cluster
they all live on one slot and one script can read a deployment's limits, hold, breaker and the
budgets that cover it together.
"""

from __future__ import annotations

import hashlib

__all__ = ["GROUP", "PROBE_MS", "SCRIPTS", "SHA", "WINDOW_MS", "KeyLayout"]

WINDOW_MS = 60_000
PROBE_MS = 30_000  # the longest a half-open probe slot is held when its owner never reports

# One round trip's admissions and rate-limit bookkeeping, in one script call (one command to
# pack and one reply to parse, however many tasks or threads share the trip).
# KEYS: per deployment of the trip, 7 keys (requests log, tokens log, token sizes, tokens used,
#   hold, breaker, probe: group g starts at KEYS[7g + 1]), then the budget cells' spend keys
#   (nano-USD, reservations included).
# ARGV: one record per operation, space-separated fields, run in order:
#   "T g member at"      the answer came at `at` (ms, Redis clock): its log entries move there
#                        (the provider counted the request somewhere between admission and
#                        answer: logging it at the answer's time never lets the next window
#                        start early; admission-to-arrival delays vary)
#   "R g member tokens"  the real token count replaces the reservation's estimate
#   "A g rpm tpm tokens member cells [key limit estimate ttl]*cells"  check and reserve an
#                        attempt (key: the index in KEYS of a budget cell; limit -1: none)
# Returns one string, an admission's verdict per ';'-separated part, in order:
# "1,probe,now" when admitted (and reserved), "0,wait_ms,kind[,cell,spend]" when not.
_BATCH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = 60000  -- keys live 2 windows: an answer moves its entry up to `timeout` later

local function refuse(wait, kind)
  return string.format('0,%d,%s', wait, kind)
end

local function admit(b, f)
  local rpm = tonumber(f[3])
  local tpm = tonumber(f[4])
  local tokens = tonumber(f[5])
  local member = f[6]
  local hold = tonumber(redis.call('GET', KEYS[b + 5]) or '0')
  if hold > now then return refuse(hold - now, 'hold') end
  local open = tonumber(redis.call('GET', KEYS[b + 6]) or '0')
  if open > now then return refuse(open - now, 'open') end
  local probe = 0
  if open > 0 then
    if not redis.call('SET', KEYS[b + 7], member, 'NX', 'PX', 30000) then
      local left = redis.call('PTTL', KEYS[b + 7])
      if left < 1 then left = 100 end
      return refuse(math.min(left, 1000), 'probe')
    end
    probe = 1
  end
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[b + 1], '-inf', now - win)
    if redis.call('ZCARD', KEYS[b + 1]) >= rpm then
      if probe == 1 then redis.call('DEL', KEYS[b + 7]) end
      local oldest = redis.call('ZRANGE', KEYS[b + 1], 0, 0, 'WITHSCORES')
      return refuse(math.max(1, tonumber(oldest[2]) + win - now), 'rpm')
    end
  end
  if tpm > 0 then
    local expired = redis.call('ZRANGEBYSCORE', KEYS[b + 2], '-inf', now - win)
    if #expired > 0 then
      local freed = 0
      for i = 1, #expired do
        freed = freed + tonumber(redis.call('HGET', KEYS[b + 3], expired[i]) or '0')
        redis.call('HDEL', KEYS[b + 3], expired[i])
      end
      redis.call('ZREMRANGEBYSCORE', KEYS[b + 2], '-inf', now - win)
      redis.call('DECRBY', KEYS[b + 4], freed)
    end
    local used = tonumber(redis.call('GET', KEYS[b + 4]) or '0')
    local amount = math.min(tokens, tpm)
    local excess = used + amount - tpm
    if excess > 0 then
      if probe == 1 then redis.call('DEL', KEYS[b + 7]) end
      local entries = redis.call('ZRANGE', KEYS[b + 2], 0, -1, 'WITHSCORES')
      local freed = 0
      for i = 1, #entries, 2 do
        freed = freed + tonumber(redis.call('HGET', KEYS[b + 3], entries[i]) or '0')
        if freed >= excess then
          return refuse(math.max(1, tonumber(entries[i + 1]) + win - now), 'tpm')
        end
      end
      return refuse(win, 'tpm')
    end
  end
  local cells = tonumber(f[7])
  for i = 1, cells do
    local c = 4 + 4 * i  -- f[c]: the key's index, f[c + 1]: limit, f[c + 2]: estimate
    local limit = tonumber(f[c + 1])
    if limit >= 0 then
      local used = tonumber(redis.call('GET', KEYS[tonumber(f[c])]) or '0')
      if used + tonumber(f[c + 2]) > limit then
        if probe == 1 then redis.call('DEL', KEYS[b + 7]) end
        return string.format('0,0,budget,%d,%d', i, used)
      end
    end
  end
  for i = 1, cells do
    local c = 4 + 4 * i
    redis.call('INCRBY', KEYS[tonumber(f[c])], f[c + 2])
    redis.call('PEXPIRE', KEYS[tonumber(f[c])], f[c + 3])
  end
  if rpm > 0 then
    redis.call('ZADD', KEYS[b + 1], now, member)
    redis.call('PEXPIRE', KEYS[b + 1], 2 * win)
  end
  if tpm > 0 then
    redis.call('ZADD', KEYS[b + 2], now, member)
    redis.call('HSET', KEYS[b + 3], member, tokens)
    redis.call('INCRBY', KEYS[b + 4], tokens)
    redis.call('PEXPIRE', KEYS[b + 2], 2 * win)
    redis.call('PEXPIRE', KEYS[b + 3], 2 * win)
    redis.call('PEXPIRE', KEYS[b + 4], 2 * win)
  end
  return string.format('1,%d,%d', probe, now)
end

local touched = {}
local out = {}
for r = 1, #ARGV do
  local f = {}
  for field in string.gmatch(ARGV[r], '%S+') do f[#f + 1] = field end
  local b = 7 * tonumber(f[2])
  if f[1] == 'A' then
    out[#out + 1] = admit(b, f)
  elseif f[1] == 'T' then
    redis.call('ZADD', KEYS[b + 1], 'XX', f[4], f[3])
    redis.call('ZADD', KEYS[b + 2], 'XX', f[4], f[3])
    touched[b] = true
  elseif redis.call('ZSCORE', KEYS[b + 2], f[3]) then  -- 'R': still in the window
    local old = tonumber(redis.call('HGET', KEYS[b + 3], f[3]) or '0')
    redis.call('HSET', KEYS[b + 3], f[3], f[4])
    redis.call('INCRBY', KEYS[b + 4], tonumber(f[4]) - old)
  end
end
for b in pairs(touched) do  -- an answer moved entries: the logs live 2 windows from now
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[b + i], 2 * win) end
end
return table.concat(out, ';')
"""

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
    "batch": _BATCH,
    "extend": _EXTEND,
    "spend": _SPEND,
    "restore": _RESTORE,
}
# Redis names a script by its SHA-1 (EVALSHA): an identifier, not a security measure.
SHA = {
    name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    for name, text in SCRIPTS.items()
}


# A deployment's keys, in the order the batch script numbers them.
GROUP = ("req", "tok", "toksize", "tokused", "hold", "open", "probe")


class KeyLayout:
    """The names of the keys under ``prefix`` (one hash tag: one Cluster slot)."""

    prefix: str
    _groups: dict[str, tuple[str, ...]]

    def _group(self, deployment: str) -> tuple[str, ...]:
        """The keys of ``deployment`` the batch script reads, in its order (built once)."""
        keys = self._groups.get(deployment)
        if keys is None:
            keys = self._groups[deployment] = tuple(self._key(deployment, w) for w in GROUP)
        return keys

    def _key(self, deployment: str, what: str) -> str:
        # One hash tag: on Redis Cluster every key lives on one slot, so one script can check
        # a deployment's limits, hold, breaker and the budgets that cover it together.
        return f"{{{self.prefix}}}:{deployment}:{what}"

    def _budget_key(self, name: str, key: str, period: str) -> str:
        return f"{{{self.prefix}}}:budget:{name}:{key}:{period}"

    @property
    def _events_key(self) -> str:
        return f"{{{self.prefix}}}:events"
