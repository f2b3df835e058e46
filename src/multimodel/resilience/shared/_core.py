"""What every part of :class:`~multimodel.resilience.shared.RedisState` shares: the queue of
bookkeeping waiting for the next round trip, and the outage state (one warning when Redis
becomes unavailable, one when it is back, and what was admitted meanwhile written back).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ...errors import SharedStateUnavailable
from ._scripts import WINDOW_MS, KeyLayout

if TYPE_CHECKING:
    from ._admission import Call

__all__ = ["NANO", "TTL", "Emit", "Op", "SharedCore", "Wall", "nano"]

_log = logging.getLogger("multimodel.shared")

Emit = Callable[[Any], None]  # hands an event (a budget alert) to the client's listeners
Wall = Callable[[], float]  # the wall clock an alert is stamped with


class Op(NamedTuple):
    script: str  # "touch", "reconcile" (folded into "batch"), "extend", "spend", "delete"...
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    then: Callable[[Any], None] | None = None  # called with the result


NANO = Decimal(1_000_000_000)
TTL = {"hour": 2 * 3600_000, "day": 2 * 86400_000, "month": 62 * 86400_000}


def nano(usd: Decimal) -> int:
    return int((usd * NANO).to_integral_value(rounding=ROUND_CEILING))


class SharedCore(KeyLayout):
    """The state the parts of ``RedisState`` share (set by its ``__init__``), the bookkeeping
    queue and the outage state."""

    on_unavailable: Literal["local", "fail"]
    errors: int
    _owner: str
    _lock: threading.Lock
    _pending: deque[Op]
    _offset: float | None
    _missed: deque[tuple[Any, ...]]
    _missed_spend: deque[tuple[Any, ...]]
    _down: bool
    _down_since: float
    _down_failures: int

    if TYPE_CHECKING:  # what the other parts define, called from here or across parts

        def _spend(self, reservation: Any, delta: int, emit: Emit | None, wall: Wall) -> None: ...

        def held(self, deployment: str, seconds: float) -> None: ...

        def opened(self, deployment: str, seconds: float) -> None: ...

        def closed(self, deployment: str) -> None: ...

    @property
    def available(self) -> bool:
        """``False`` from a failed operation until one succeeds again (an outage)."""
        return not self._down

    def _queue(self, op: Op) -> None:
        with self._lock:
            self._pending.append(op)
            while len(self._pending) > 10_000:  # a long outage: keep the newest
                self._pending.popleft()

    @property
    def pending(self) -> bool:
        """Whether bookkeeping waits to be written."""
        return bool(self._pending)

    def _take(self) -> list[Op]:
        with self._lock:
            ops = list(self._pending)
            self._pending.clear()
        return ops

    @staticmethod
    def _results(ops: list[Op], results: list[Any]) -> None:
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

    def _offline(self, call: Call) -> None:
        """Remember a reservation admitted on local state, to write it to Redis on recovery."""
        if self._offset is None or not (call.rpm or call.tpm):
            return
        keys = self._group(call.deployment)[:4]
        with self._lock:
            self._missed.append(
                (keys, call.rpm, call.tpm, call.tokens, call.member, time.monotonic())
            )

    def _resync(self) -> None:
        """After an outage: write the reservations admitted meanwhile that are still in the
        window, at their times on Redis's clock (entries already there are left alone)."""
        with self._lock:
            missed, self._missed = self._missed, deque(maxlen=10_000)
            spends, self._missed_spend = self._missed_spend, deque(maxlen=10_000)
        for reservation, actual, emit, wall in spends:
            self._spend(reservation, nano(actual), emit, wall)
        offset = self._offset
        if offset is None:
            return
        horizon = time.monotonic() - WINDOW_MS / 1000
        for keys, rpm, tpm, tokens, member, at in missed:
            if at > horizon:
                args = (member, round(at * 1000 + offset), rpm, tpm, tokens)
                self._queue(Op("restore", keys, args))

    def _unavailable(self, exc: BaseException) -> None:
        self._failed(exc)
        if self.on_unavailable == "fail":
            raise SharedStateUnavailable(f"shared state unavailable: {type(exc).__name__}") from exc
