"""Routing state shared by many processes through Redis (``shared_state=``).

Every process that embeds a client with the same ``shared_state`` (same Redis, same ``prefix``)
sees the same fleet-wide picture of each deployment:

* **rate limits**: ``Deployment(rpm=..., tpm=...)`` hold for the fleet. One Lua script per
  attempt checks and reserves atomically (sliding 60-second logs, the same algorithm as the
  local :class:`~multimodel.resilience.rate_limit.RateLimiter`); estimated tokens are reserved
  before sending and reconciled with the real usage afterwards.
* **Retry-After holds and open breakers**: a hold or an open circuit seen by one process keeps
  the deployment out of rotation in all; after the cooldown only one process probes.

Time is Redis's own (``TIME`` inside the scripts), so hosts need no synchronized clocks.

The decisions are computed here without I/O (keys, script arguments, verdicts, the outage
state); :class:`RedisState` adds the two thin executors, redis-py for :class:`~multimodel.Client`
and ``redis.asyncio`` for :class:`~multimodel.AsyncClient`. The hot path costs one round trip
per attempt: the admission script, pipelined with whatever bookkeeping earlier attempts left
(reconciliation, holds, breaker changes). A failure's hold or breaker change is also flushed
right after the failure.

When Redis is slow or down, each operation gives up after ``op_timeout``; with
``on_unavailable="local"`` (the default) the client goes on with its local state (the local
limiter, holds and breakers always run as well), logs one warning when the outage starts and
one when it ends. With ``on_unavailable="fail"`` the attempt fails with
:class:`~multimodel.errors.SharedStateUnavailable` instead.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..errors import ConfigError, SharedStateUnavailable

if TYPE_CHECKING:
    from .._core.trace import Send

__all__ = ["RedisState", "Refusal"]

_log = logging.getLogger("multimodel.shared")

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

_SCRIPTS = {
    "admit": _ADMIT,
    "reconcile": _RECONCILE,
    "extend": _EXTEND,
    "touch": _TOUCH,
    "spend": _SPEND,
    "restore": _RESTORE,
}
# Redis names a script by its SHA-1 (EVALSHA): an identifier, not a security measure.
_SHA = {
    name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    for name, text in _SCRIPTS.items()
}


class _Ticket:
    """One admission (or flush) waiting in an asyncio batch."""

    __slots__ = ("call", "done", "error", "result", "sent")

    def __init__(self, call: tuple[list[str], list[Any]] | None) -> None:
        self.call = call
        self.done: Any = None  # an anyio.Event, for the tasks that join a batch
        self.error: BaseException | None = None
        self.result: Any = None
        self.sent = 0.0


class Refusal(NamedTuple):
    """The fleet said no to one attempt: wait ``wait`` seconds (``kind`` says why)."""

    wait: float
    kind: str  # "rpm", "tpm", "hold", "open", "probe", "budget"
    detail: str | None = None

    @property
    def reason(self) -> str:
        """A line for the routing trace."""
        if self.detail is not None:
            return self.detail
        what = {
            "rpm": "fleet-wide rate limit (requests)",
            "tpm": "fleet-wide rate limit (tokens)",
            "hold": "rate limited in another process (Retry-After)",
            "open": "circuit open in another process",
            "probe": "half-open: another process is probing",
        }.get(self.kind, self.kind)
        return f"{what}, {self.wait:.2f}s to wait"


class _Op(NamedTuple):
    script: str  # "reconcile", "extend", "touch", "spend" or "delete"
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    then: Callable[[Any], None] | None = None  # called with the result


_NANO = Decimal(1_000_000_000)
_TTL = {"hour": 2 * 3600_000, "day": 2 * 86400_000, "month": 62 * 86400_000}


def _nano(usd: Decimal) -> int:
    return int((usd * _NANO).to_integral_value(rounding=ROUND_CEILING))


class RedisState:
    """Routing state shared through Redis by every client that uses it (see the module docs).

    Args:
        url_or_client: a Redis URL (``redis://host:6379/0``, ``rediss://`` for TLS), a
            ``redis.Redis`` (for :class:`~multimodel.Client`) or a ``redis.asyncio.Redis``
            (for :class:`~multimodel.AsyncClient`). Clients built from a URL are closed with
            the multimodel client; clients you pass stay yours to close.
        prefix: the start of every key; clients share state only under the same prefix.
        on_unavailable: ``"local"`` goes on with each process's own state while Redis is
            down or slow; ``"fail"`` fails the attempt with ``SharedStateUnavailable``.
        op_timeout: seconds one Redis operation may take before it counts as unavailable.

    Needs the ``redis`` extra (``pip install 'multimodel[redis]'``). ``redis.asyncio`` runs on
    asyncio only: an ``AsyncClient`` with shared state refuses to run under trio.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        url_or_client: Any,
        *,
        prefix: str = "multimodel",
        on_unavailable: Literal["local", "fail"] = "local",
        op_timeout: float = 0.25,
    ) -> None:
        if on_unavailable not in ("local", "fail"):
            raise ConfigError(
                f"shared_state: on_unavailable must be 'local' or 'fail', not {on_unavailable!r}"
            )
        if isinstance(op_timeout, bool) or not (float(op_timeout) > 0):
            raise ConfigError(f"shared_state: op_timeout must be > 0, not {op_timeout!r}")
        if not prefix:
            raise ConfigError("shared_state: prefix must be a non-empty string")
        self._url: str | None = None
        self._sync: Any = None
        self._async: Any = None
        if isinstance(url_or_client, str):
            if not url_or_client.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigError(
                    "shared_state: expected a redis:// or rediss:// URL, a RedisState or a "
                    f"Redis client, not {_safe_url(url_or_client)!r}"
                )
            self._url = url_or_client
        else:
            kind = _client_kind(url_or_client)
            if kind is None:
                raise ConfigError(
                    "shared_state: expected a redis:// URL, a RedisState or a Redis client, "
                    f"not {type(url_or_client).__name__}"
                )
            if kind == "async":
                self._async = url_or_client
            else:
                self._sync = url_or_client
        self.prefix = prefix
        self.on_unavailable = on_unavailable
        self.op_timeout = float(op_timeout)
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: deque[_Op] = deque()
        self._listeners: list[Callable[[dict[str, str]], None]] = []
        self._cursor: str | None = None  # the last status event read from the fleet
        self._batch: list[_Ticket] | None = None  # asyncio admissions being collected
        # Redis's clock minus the local monotonic one (ms), from the last admission; and the
        # reservations admitted on local state during an outage, written back on recovery.
        self._offset: float | None = None
        self._missed: deque[tuple[Any, ...]] = deque(maxlen=10_000)
        self._missed_spend: deque[tuple[Any, ...]] = deque(maxlen=10_000)
        self._probing: set[str] = set()
        # Outage state (as the response cache): one warning when it starts, one when it ends.
        self._down = False
        self._down_since = 0.0
        self._down_failures = 0
        self.round_trips = 0
        """Redis round trips made so far (for benchmarks and tests)."""
        self.errors = 0
        """Redis operations that failed or timed out so far."""

    def __repr__(self) -> str:
        where = _safe_url(self._url) if self._url else "a caller's client"
        return f"RedisState({where!r}, prefix={self.prefix!r})"

    @property
    def available(self) -> bool:
        """``False`` from a failed operation until one succeeds again (an outage)."""
        return not self._down

    # -- sans-I/O: keys, arguments, verdicts ---------------------------------------------------

    def _key(self, deployment: str, what: str) -> str:
        # One hash tag: on Redis Cluster every key lives on one slot, so one script can check
        # a deployment's limits, hold, breaker and the budgets that cover it together.
        return f"{{{self.prefix}}}:{deployment}:{what}"

    def _admit_call(self, send: Send) -> tuple[list[str], list[Any]]:
        ep = send.endpoint
        name = ep.name
        reservation = send.reservation
        tokens = getattr(reservation, "tokens", 0) or 0
        member = f"{self._owner}:{next(self._ids)}"
        if reservation is not None:
            reservation.shared = member
        keys = [
            self._key(name, w)
            for w in ("req", "tok", "toksize", "tokused", "hold", "open", "probe")
        ]
        args: list[Any] = [ep.rpm or 0, ep.tpm or 0, tokens, member]
        hold = send.hold
        cells = hold.cells if hold is not None else ()
        args.append(len(cells))
        for index, key, cell in cells:
            budget = hold.budgets[index]
            keys.append(self._budget_key(budget.name, key, cell.period))
            limit = budget.limit
            args += [
                -1 if limit is None else _nano(limit),
                _nano(hold.estimate),
                _TTL[budget.window],
            ]
        return keys, args

    def _budget_key(self, name: str, key: str, period: str) -> str:
        return f"{{{self.prefix}}}:budget:{name}:{key}:{period}"

    def spent(
        self,
        reservation: Any,
        actual: Decimal,
        *,
        emit: Callable[[Any], None] | None,
        wall: Callable[[], float],
    ) -> None:
        """Queue the settlement of a budget reservation the fleet holds (real cost in place of
        the estimate); the process whose settlement crosses an alert threshold first fires the
        alert, once per window for the fleet. Spend the fleet did not reserve (admitted on
        local state during an outage) is kept, and written when Redis answers again."""
        if not reservation.shared:
            with self._lock:
                self._missed_spend.append((reservation, actual, emit, wall))
            return
        self._spend(reservation, _nano(actual) - _nano(reservation.estimate), emit, wall)

    def _spend(
        self,
        reservation: Any,
        delta: int,
        emit: Callable[[Any], None] | None,
        wall: Callable[[], float],
    ) -> None:
        for index, key, cell in reservation.cells:
            budget = reservation.budgets[index]
            threshold = budget.threshold
            base = self._budget_key(budget.name, key, cell.period)
            then = None
            if emit is not None and threshold is not None:
                then = _alerter(emit, wall, budget, key, cell.period, threshold)
            args = (delta, -1 if threshold is None else _nano(threshold), _TTL[budget.window])
            self._queue(_Op("spend", (base, base + ":alerted"), args, then))

    def _verdict(self, result: Any, send: Send, sent: float) -> Refusal | None:
        """``sent``: the local monotonic time the admission left (before Redis's ``now``)."""
        deployment = send.endpoint.name
        if int(result[0]) == 1:
            if send.hold is not None and send.hold.cells:
                send.hold.shared = True
            reservation = send.reservation
            if reservation is not None and (send.endpoint.rpm or send.endpoint.tpm):
                # The answer's time is reckoned from `sent`, never later than Redis's `now`:
                # a process slow to resume after admission must not log its answer early.
                reservation.shared_at = (int(result[2]), sent)
            self._offset = int(result[2]) - sent * 1000
            if int(result[1]) == 1:  # this process holds the fleet's half-open probe
                with self._lock:
                    self._probing.add(deployment)
            return None
        kind = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
        if kind == "budget":
            index, key, _ = send.hold.cells[int(result[3]) - 1]
            budget = send.hold.budgets[index]
            who = "" if key == "*" else f" for {budget.scope} {key!r}"
            spent = Decimal(int(result[4])) / _NANO
            return Refusal(
                0.0,
                kind,
                f"budget {budget.name!r}{who}: ${spent:.4f} of ${budget.limit} per "
                f"{budget.window} used by the fleet",
            )
        return Refusal(int(result[1]) / 1000.0, kind)

    def finished(
        self,
        deployment: str,
        reservation: Any,
        *,
        ok: bool,
        hold: float | None,
        cooldown: float,
    ) -> None:
        """An attempt ended: log its rate-limit entries at the answer's time, queue a
        Retry-After ``hold``; a probe's end closes the fleet's breaker (``ok``) or opens it
        again for ``cooldown`` seconds."""
        at = getattr(reservation, "shared_at", None)
        if at is not None:  # set for deployments with rpm or tpm only
            answered = at[0] + round((time.monotonic() - at[1]) * 1000)
            keys = tuple(self._key(deployment, w) for w in ("req", "tok", "toksize", "tokused"))
            self._queue(_Op("touch", keys, (reservation.shared, answered)))
        if hold:
            self.held(deployment, hold)
        if deployment in self._probing:
            with self._lock:
                self._probing.discard(deployment)
            if ok:
                self.closed(deployment)
            else:
                self.opened(deployment, cooldown)

    @property
    def _events_key(self) -> str:
        return f"{{{self.prefix}}}:events"

    def subscribe(self, listener: Callable[[dict[str, str]], None]) -> None:
        """Call ``listener`` with each status change another process announces (read with
        this process's next Redis round trip)."""
        self._listeners.append(listener)

    def announce(self, deployment: str, previous: str, status: str, reason: str, at: float) -> None:
        """Queue a status change of this process for the fleet."""
        fields = {
            "origin": self._owner,
            "deployment": deployment,
            "previous": previous,
            "status": status,
            "reason": reason,
            "at": repr(at),
        }
        self._queue(_Op("announce", (self._events_key,), (fields,)))

    def _deliver(self, entries: Any) -> None:
        first = self._cursor is None
        for entry_id, fields in entries or ():
            ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            if self._cursor is None or _after(ident, self._cursor):
                self._cursor = ident
            if first:
                continue  # where the stream ended: not news
            event = {
                (k.decode() if isinstance(k, bytes) else str(k)): (
                    v.decode() if isinstance(v, bytes) else str(v)
                )
                for k, v in fields.items()
            }
            if event.get("origin") == self._owner:
                continue  # this process's own, announced here already
            for listener in list(self._listeners):
                listener(event)
        if first and self._cursor is None:
            self._cursor = "0-0"  # an empty stream: everything from now on is news

    def reconciled(self, deployment: str, member: str, actual: int) -> None:
        """Queue the replacement of a reservation's estimate by the real token count."""
        keys = tuple(self._key(deployment, w) for w in ("tok", "toksize", "tokused"))
        self._queue(_Op("reconcile", keys, (member, int(actual))))

    def held(self, deployment: str, seconds: float) -> None:
        """Queue a Retry-After hold of ``deployment`` for the fleet."""
        ms = max(1, round(seconds * 1000))
        self._queue(_Op("extend", (self._key(deployment, "hold"),), (ms, 0)))

    def opened(self, deployment: str, seconds: float) -> None:
        """Queue an open breaker for the fleet (kept afterwards to coordinate the probe)."""
        ms = max(1, round(seconds * 1000))
        self._queue(_Op("extend", (self._key(deployment, "open"),), (ms, 600_000)))
        self._queue(_Op("delete", (self._key(deployment, "probe"),), ()))

    def closed(self, deployment: str) -> None:
        """Queue the closing of a breaker (a probe succeeded) for the fleet."""
        self._queue(
            _Op("delete", (self._key(deployment, "open"), self._key(deployment, "probe")), ())
        )

    def _queue(self, op: _Op) -> None:
        with self._lock:
            self._pending.append(op)
            while len(self._pending) > 10_000:  # a long outage: keep the newest
                self._pending.popleft()

    @property
    def pending(self) -> bool:
        """Whether bookkeeping waits to be written."""
        return bool(self._pending)

    def _take(self) -> list[_Op]:
        with self._lock:
            ops = list(self._pending)
            self._pending.clear()
        return ops

    @staticmethod
    def _results(ops: list[_Op], results: list[Any]) -> None:
        for op, result in zip(ops, results, strict=False):
            if op.then is not None:
                op.then(result)  # emits an event: the event bus logs a listener's failure

    # -- outage bookkeeping ---------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            first = not self._down
            if first:
                self._down = True
                self._down_since = time.monotonic()
                self._down_failures = 0
            self._down_failures += 1
        if first:
            _log.warning(
                "shared state unavailable (%s: %s); %s",
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
                "continuing on local state"
                if self.on_unavailable == "local"
                else "failing attempts (on_unavailable='fail')",
            )

    def _succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
            lasted = time.monotonic() - self._down_since
            failures = self._down_failures
        _log.warning(
            "shared state available again after %.1fs (%d operations failed meanwhile)",
            lasted,
            failures,
        )
        self._resync()

    def _offline(self, send: Send, call: tuple[list[str], list[Any]]) -> None:
        """Remember a reservation admitted on local state, to write it to Redis on recovery."""
        ep = send.endpoint
        if self._offset is None or not (ep.rpm or ep.tpm):
            return
        keys, args = call
        with self._lock:
            self._missed.append(
                (tuple(keys[:4]), args[0], args[1], args[2], args[3], time.monotonic())
            )

    def _resync(self) -> None:
        """After an outage: write the reservations admitted meanwhile that are still in the
        window, at their times on Redis's clock (entries already there are left alone)."""
        with self._lock:
            missed, self._missed = self._missed, deque(maxlen=10_000)
            spends, self._missed_spend = self._missed_spend, deque(maxlen=10_000)
        for reservation, actual, emit, wall in spends:
            self._spend(reservation, _nano(actual), emit, wall)
        offset = self._offset
        if offset is None:
            return
        horizon = time.monotonic() - WINDOW_MS / 1000
        for keys, rpm, tpm, tokens, member, at in missed:
            if at > horizon:
                args = (member, round(at * 1000 + offset), rpm, tpm, tokens)
                self._queue(_Op("restore", keys, args))

    def _unavailable(self, exc: BaseException) -> None:
        self._failed(exc)
        if self.on_unavailable == "fail":
            raise SharedStateUnavailable(f"shared state unavailable: {type(exc).__name__}") from exc

    # -- sync executor ---------------------------------------------------------------------------

    def _sync_client(self) -> Any:
        if self._sync is None:
            if self._url is None:
                raise ConfigError(
                    "shared_state: this RedisState wraps a redis.asyncio client; a sync Client "
                    "needs a URL or a redis.Redis"
                )
            redis = _redis("redis")
            self._sync = redis.Redis.from_url(
                self._url,
                socket_timeout=self.op_timeout,
                socket_connect_timeout=self.op_timeout,
            )
        return self._sync

    def _commands(self, ops: list[_Op], call: tuple[list[str], list[Any]] | None) -> list[_Op]:
        commands = list(ops)
        if self._listeners:  # the fleet's status events since the last read, same trip
            commands.insert(0, _Op("read", (self._events_key,), (self._cursor,), self._deliver))
        if call is not None:
            commands.append(_Op("admit", tuple(call[0]), tuple(call[1])))
        return commands

    @staticmethod
    def _queue_on(pipe: Any, command: _Op) -> None:
        if command.script == "delete":
            pipe.delete(*command.keys)
        elif command.script == "read":
            cursor = command.args[0]
            if cursor is None:  # the first read: only where the stream ends now
                pipe.xrevrange(command.keys[0], count=1)
            else:
                pipe.xrange(command.keys[0], min=f"({cursor}", count=500)
        elif command.script == "announce":
            pipe.xadd(command.keys[0], command.args[0], maxlen=1000, approximate=True)
        else:  # EVALSHA: a pipeline of Script objects asks SCRIPT EXISTS first (a round trip)
            pipe.evalsha(_SHA[command.script], len(command.keys), *command.keys, *command.args)

    def _execute(self, commands: list[_Op]) -> list[Any]:
        """Run ``commands`` in one pipeline (one round trip; two after a Redis restart, when
        the scripts are loaded again). Raises on any Redis failure."""
        client = self._sync_client()
        for loaded in (False, True):
            pipe = client.pipeline(transaction=False)
            if loaded:  # the server forgot the scripts (restarted): load them, then run
                for text in _SCRIPTS.values():
                    pipe.script_load(text)
            for command in commands:
                self._queue_on(pipe, command)
            self.round_trips += 1
            try:
                results: list[Any] = pipe.execute()
            except Exception as exc:
                if loaded or not _noscript(exc):
                    raise
                continue
            return results[len(_SCRIPTS) :] if loaded else results
        raise AssertionError("unreachable")  # pragma: no cover

    def admit(self, send: Send) -> Refusal | None:
        """Check and reserve one attempt fleet-wide (``None``: admitted). One round trip."""
        call = self._admit_call(send)
        ops = self._commands(self._take(), call)
        sent = time.monotonic()
        try:
            results = self._execute(ops)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - any Redis failure is an outage
            self._unavailable(exc)
            self._offline(send, call)
            return None
        self._succeeded()
        self._results(ops, results)
        return self._verdict(results[-1], send, sent)

    def flush(self) -> None:
        """Write the queued bookkeeping now (one round trip; nothing when none is queued)."""
        ops = self._take()
        if not ops:
            return
        ops = self._commands(ops, None)
        try:
            results = self._execute(ops)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - the bookkeeping is dropped, not retried
            self._failed(exc)
            return
        self._succeeded()
        self._results(ops, results)

    def close(self) -> None:
        """Flush, then close the sync Redis client built from the URL."""
        self.flush()
        if self._url is not None and self._sync is not None:
            self._sync.close()
            self._sync = None

    # -- async executor (asyncio) -----------------------------------------------------------------

    def _async_client(self) -> Any:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio (or another loop): redis.asyncio needs asyncio's
            raise ConfigError(
                "shared_state runs on asyncio only (redis.asyncio), not on trio; use asyncio, "
                "or a sync Client"
            ) from None
        if self._async is None:
            if self._url is None:
                raise ConfigError(
                    "shared_state: this RedisState wraps a sync redis.Redis; an AsyncClient "
                    "needs a URL or a redis.asyncio.Redis"
                )
            aioredis = _redis("redis.asyncio")
            self._async = aioredis.Redis.from_url(
                self._url,
                socket_timeout=self.op_timeout,
                socket_connect_timeout=self.op_timeout,
            )
        return self._async

    async def _async_execute(self, commands: list[_Op]) -> list[Any]:
        """:meth:`_execute` for the asyncio client."""
        client = self._async_client()
        for loaded in (False, True):
            pipe = client.pipeline(transaction=False)
            if loaded:
                for text in _SCRIPTS.values():
                    pipe.script_load(text)
            for command in commands:
                self._queue_on(pipe, command)
            self.round_trips += 1
            try:
                results: list[Any] = await pipe.execute()
            except Exception as exc:
                if loaded or not _noscript(exc):
                    raise
                continue
            return results[len(_SCRIPTS) :] if loaded else results
        raise AssertionError("unreachable")  # pragma: no cover

    async def async_admit(self, send: Send) -> Refusal | None:
        """:meth:`admit` for the asyncio client. Admissions of tasks that ask at the same
        moment share one pipeline (one round trip for all of them)."""
        call = self._admit_call(send)
        self._async_client()  # refuses trio before anything is taken
        ticket = _Ticket(call)
        await self._async_batch(ticket)
        if ticket.error is not None:
            self._unavailable(ticket.error)
            self._offline(send, call)
            return None
        return self._verdict(ticket.result, send, ticket.sent)

    async def async_flush(self) -> None:
        """:meth:`flush` for the asyncio client."""
        self._async_client()
        if not self._pending:
            return
        ticket = _Ticket(None)
        await self._async_batch(ticket)
        if ticket.error is not None:
            self._failed(ticket.error)

    async def _async_batch(self, ticket: _Ticket) -> None:
        """Run ``ticket`` in the batch now collecting, or open one, let the tasks that are
        ready join it, and run it: queued bookkeeping, then every admission, one pipeline."""
        import anyio
        import anyio.lowlevel

        batch = self._batch
        if batch is not None:
            ticket.done = anyio.Event()
            batch.append(ticket)
            await ticket.done.wait()
            return
        batch = self._batch = [ticket]
        # Shielded: the tasks that joined depend on this one; Redis bounds it (op_timeout).
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()  # the admissions of tasks ready now join
            self._batch = None
            ops = self._take()
            commands = self._commands(ops, None) if ops or self._listeners else []
            calls = [t for t in batch if t.call is not None]
            for t in calls:
                assert t.call is not None
                commands.append(_Op("admit", tuple(t.call[0]), tuple(t.call[1])))
            if commands:
                sent = time.monotonic()
                try:
                    results = await self._async_execute(commands)
                except Exception as exc:  # noqa: BLE001 - each ticket reports the outage
                    for t in batch:
                        t.error = exc
                else:
                    self._succeeded()
                    self._results(commands, results)
                    for t, result in zip(calls, results[len(commands) - len(calls) :], strict=True):
                        t.result, t.sent = result, sent
            for t in batch:
                if t.done is not None:
                    t.done.set()

    async def aclose(self) -> None:
        """Flush, then close the asyncio Redis client built from the URL."""
        if self._async is not None or self._pending:
            try:
                await self.async_flush()
            except ConfigError:
                pass
        if self._url is not None and self._async is not None:
            await self._async.aclose()
            self._async = None


def _alerter(
    emit: Callable[[Any], None],
    wall: Callable[[], float],
    budget: Any,
    key: str,
    period: str,
    threshold: Decimal,
) -> Callable[[Any], None]:
    """What fires a budget alert when a settlement's result says this process crossed first."""
    from .budget import BudgetAlert

    def then(result: Any) -> None:
        if int(result) < 0:
            return
        emit(
            BudgetAlert(
                budget=budget.name,
                scope=budget.scope,
                key=None if key == "*" else key,
                window=budget.window,
                period=period,
                spent=Decimal(int(result)) / _NANO,
                threshold=threshold,
                limit=budget.limit,
                at=wall(),
            )
        )

    return then


def _redis(module: str) -> Any:
    """``redis`` or ``redis.asyncio``; a ``ConfigError`` naming the extra without it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            "shared_state needs the `redis` package: pip install 'multimodel[redis]'"
        ) from None


def _after(a: str, b: str) -> bool:
    """Whether stream id ``a`` comes after ``b``."""
    ams, _, aseq = a.partition("-")
    bms, _, bseq = b.partition("-")
    return (int(ams), int(aseq or 0)) > (int(bms), int(bseq or 0))


def _noscript(exc: BaseException) -> bool:
    """Whether Redis did not know a script (``NOSCRIPT``: a restarted or flushed server)."""
    return type(exc).__name__ == "NoScriptError" or str(exc).startswith("NOSCRIPT")


def _client_kind(value: Any) -> str | None:
    module = type(value).__module__
    if not module.startswith("redis"):
        return None
    return "async" if module.startswith("redis.asyncio") else "sync"


def _safe_url(url: str) -> str:
    """``url`` without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def as_shared_state(value: Any) -> RedisState | None:
    """``shared_state``: a Redis URL, a Redis client or a :class:`RedisState`."""
    if value is None or isinstance(value, RedisState):
        return value
    if isinstance(value, Mapping):  # a table from a configuration file
        options = dict(value)
        url = options.pop("url", None)
        if not isinstance(url, str):
            raise ConfigError("shared_state: a table needs a `url` (redis://host:6379/0)")
        unknown = set(options) - {"prefix", "on_unavailable", "op_timeout"}
        if unknown:
            raise ConfigError(f"shared_state: unknown option(s) {', '.join(sorted(unknown))}")
        return RedisState(url, **options)
    if isinstance(value, str) or _client_kind(value) is not None:
        return RedisState(value)
    raise ConfigError(
        "shared_state: expected a redis:// URL, a RedisState or a Redis client, not "
        f"{type(value).__name__}"
    )
