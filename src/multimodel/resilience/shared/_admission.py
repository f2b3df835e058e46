"""Rate-limit admission: the fleet-wide check and reservation of one attempt (rpm, tpm, holds,
breakers, budgets, in one script), its verdict, and the reservation's life afterwards (the
answer's time, the real token count, the end of a half-open probe).
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from ._core import NANO, TTL, Op, SharedCore, nano

if TYPE_CHECKING:
    from ..._core.trace import Send

__all__ = ["Admission", "Refusal"]


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


class Admission(SharedCore):
    """Admission and the reservations it makes (a part of ``RedisState``)."""

    _ids: itertools.count[int]
    _probing: set[str]

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
                -1 if limit is None else nano(limit),
                nano(hold.estimate),
                TTL[budget.window],
            ]
        return keys, args

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
            spent = Decimal(int(result[4])) / NANO
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
            self._queue(Op("touch", keys, (reservation.shared, answered)))
        if hold:
            self.held(deployment, hold)
        if deployment in self._probing:
            with self._lock:
                self._probing.discard(deployment)
            if ok:
                self.closed(deployment)
            else:
                self.opened(deployment, cooldown)

    def reconciled(self, deployment: str, member: str, actual: int) -> None:
        """Queue the replacement of a reservation's estimate by the real token count."""
        keys = tuple(self._key(deployment, w) for w in ("tok", "toksize", "tokused"))
        self._queue(Op("reconcile", keys, (member, int(actual))))
