"""Routing state shared by many processes through Redis (``shared_state=``).

Every process that embeds a client with the same ``shared_state`` (same Redis, same ``prefix``)
sees the same fleet-wide picture of each deployment:

* **rate limits**: ``Deployment(rpm=..., tpm=...)`` hold for the fleet. A Lua script checks
  and reserves each attempt atomically (sliding 60-second logs, the same algorithm as the
  local :class:`~multimodel.resilience.rate_limit.RateLimiter`; the attempts that share a round
  trip are decided one after the other in one script call); estimated tokens are reserved
  before sending and reconciled with the real usage afterwards.
* **Retry-After holds and open breakers**: a hold or an open circuit seen by one process keeps
  the deployment out of rotation in all; after the cooldown only one process probes.
* **status events**: each process's status changes are pushed to the others by a listener
  (a thread of the sync client, a task of the asyncio client's loop), so an idle process's
  ``status()`` and ``on("model_status_change", ...)`` hear an opened breaker within a second.

Time is Redis's own (``TIME`` inside the scripts), so hosts need no synchronized clocks.

The decisions are computed here without I/O (keys, script arguments, verdicts, the outage
state); :class:`RedisState` adds the two thin executors, redis-py for :class:`~multimodel.Client`
and ``redis.asyncio`` for :class:`~multimodel.AsyncClient`. The hot path costs one round trip
per attempt: the admission script, pipelined with whatever bookkeeping earlier attempts left
(reconciliation, holds, breaker changes). What an attempt's end leaves to write goes with the
round trip other tasks' or threads' admissions are about to make, or takes one of its own
before the call returns.

When Redis is slow or down, each operation gives up after ``op_timeout``; with
``on_unavailable="local"`` (the default) the client goes on with its local state (the local
limiter, holds and breakers always run as well), logs one warning when the outage starts and
one when it ends. With ``on_unavailable="fail"`` the attempt fails with
:class:`~multimodel.errors.SharedStateUnavailable` instead.

The package holds one concept per module: ``_scripts`` (the Lua scripts and the key layout),
``_core`` (the bookkeeping queue and the outage state), ``_admission`` (rate-limit admission),
``_budget`` (budget settlement and alerts), ``_events`` (holds, breakers and status events),
``_connection`` (the sync and async Redis round trips) and ``_listener`` (the push of status
events); :class:`RedisState` is made of them.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any, Literal

from ...errors import ConfigError
from ._admission import Refusal
from ._budget import BudgetSettlement
from ._connection import _client_kind, _safe_url
from ._events import FleetStatus
from ._listener import FleetListener

__all__ = ["RedisState", "Refusal"]


class RedisState(FleetListener, BudgetSettlement, FleetStatus):
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
        self._url = None
        self._sync = None
        self._async = None
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
        self._pending = deque()
        self._listeners = []
        self._cursor = None  # the last status event read from the fleet
        self._cursor_lock = threading.Lock()
        # The listener that pushes the fleet's status changes (a thread or an asyncio task).
        self._thread = None
        self._stop = threading.Event()
        self._listener_id = None
        self._task = None
        self._task_stop = threading.Event()
        self._batch = None  # asyncio admissions being collected
        self._batch_lock = threading.Lock()  # threads' admissions: one trip in flight at once
        self._busy = False
        self._leader = None  # the thread running the batch in flight
        self._waiting = []
        # Redis's clock minus the local monotonic one (ms), from the last admission; and the
        # reservations admitted on local state during an outage, written back on recovery.
        self._offset = None
        self._missed = deque(maxlen=10_000)
        self._missed_spend = deque(maxlen=10_000)
        self._probing = set()
        self._groups = {}  # each deployment's keys, built once
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
