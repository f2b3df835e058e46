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

__all__ = ["FOLDED", "Admission", "Call", "Refusal"]

# Bookkeeping that travels inside the next round trip's batch script call (see _BATCH), by
# the record letter the script knows it by.
_FOLDED = {"touch": "T", "reconcile": "R"}
FOLDED = frozenset(_FOLDED)


class Call(NamedTuple):
    """One attempt's admission as the batch script takes it."""

    deployment: str
    rpm: int
    tpm: int
    tokens: int
    member: str
    cells: tuple[tuple[str, int, int, int], ...]  # budget key, limit (-1: none), estimate, ttl


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

    def _admit_call(self, send: Send) -> Call:
        ep = send.endpoint
        reservation = send.reservation
        tokens = getattr(reservation, "tokens", 0) or 0
        member = f"{self._owner}:{next(self._ids)}"
        if reservation is not None:
            reservation.shared = member
        hold = send.hold
        cells: tuple[tuple[str, int, int, int], ...] = ()
        if hold is not None and hold.cells:
            estimate = nano(hold.estimate)
            cells = tuple(
                (
                    self._budget_key(budget.name, key, cell.period),
                    -1 if budget.limit is None else nano(budget.limit),
                    estimate,
                    TTL[budget.window],
                )
                for index, key, cell in hold.cells
                for budget in (hold.budgets[index],)
            )
        return Call(ep.name, ep.rpm or 0, ep.tpm or 0, tokens, member, cells)

    def _batch_op(self, folded: list[Op], calls: list[Call]) -> Op:
        """The one script call of a round trip: the queued rate-limit bookkeeping (``folded``:
        answers' times and real token counts), then every admission of the trip. Each
        deployment's keys are numbered once per trip, the budget cells' after them."""
        groups: dict[str, int] = {}
        for op in folded:
            groups.setdefault(op.args[0], len(groups))
        for call in calls:
            groups.setdefault(call.deployment, len(groups))
        keys = [k for deployment in groups for k in self._group(deployment)]
        budget_keys: dict[str, int] = {}
        records = [
            f"{_FOLDED[op.script]} {groups[op.args[0]]} {op.args[1]} {op.args[2]}" for op in folded
        ]
        for call in calls:
            record = (
                f"A {groups[call.deployment]} {call.rpm} {call.tpm} {call.tokens} {call.member} "
                f"{len(call.cells)}"
            )
            for key, limit, estimate, ttl in call.cells:
                index = budget_keys.get(key)
                if index is None:
                    keys.append(key)
                    index = budget_keys[key] = len(keys)  # Lua counts from 1
                record += f" {index} {limit} {estimate} {ttl}"
            records.append(record)
        return Op("batch", tuple(keys), tuple(records))

    def _verdict(self, result: list[str], send: Send, sent: float) -> Refusal | None:
        """``result``: the script's verdict, split into its fields; ``sent``: the local
        monotonic time the admission left (before Redis's ``now``)."""
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
        kind = result[2]
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
            self._queue(Op("touch", (), (deployment, reservation.shared, answered)))
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
        self._queue(Op("reconcile", (), (deployment, member, int(actual))))
