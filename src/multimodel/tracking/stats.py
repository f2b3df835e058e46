"""Live per-deployment statistics and the read-only view strategies route on.

The :class:`Tracker` keeps one small cell per deployment, updated in O(1) under a lock when an
attempt starts and ends. Strategies receive a :class:`StatsView` and read cells without taking
the lock: each field is a single float or int, so a reader sees a value that was true a moment
ago, which is all routing needs, and routing stays lock-free and microsecond-cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from .outcome import Outcome

__all__ = ["DeploymentStats", "StatsView", "Tracker"]

_ALPHA = 0.3  # EWMA weight of the newest sample: reacts within a few requests, smooths jitter


class DeploymentStats(Protocol):
    """What a strategy may read about one deployment (read-only)."""

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet finished."""
        ...

    @property
    def requests(self) -> int:
        """Finished attempts."""
        ...

    @property
    def failures(self) -> int:
        """Finished attempts that failed."""
        ...

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        ...

    @property
    def ewma_latency(self) -> float | None:
        """Smoothed seconds per successful non-streamed answer (``None`` before the first)."""
        ...

    @property
    def ewma_ttft(self) -> float | None:
        """Smoothed seconds to the first streamed chunk."""
        ...

    @property
    def ewma_error_rate(self) -> float:
        """Smoothed share of recent attempts that failed (0..1)."""
        ...

    @property
    def last_failure_at(self) -> float | None:
        """Monotonic time of the last failure."""
        ...


class StatsView(Protocol):
    """Read-only access to live stats, by deployment name."""

    def get(self, deployment: str) -> DeploymentStats:
        """Stats of one deployment (a zeroed record for one never seen)."""
        ...


class _Cell:
    __slots__ = (
        "consecutive_failures",
        "ewma_error_rate",
        "ewma_latency",
        "ewma_ttft",
        "failures",
        "in_flight",
        "input_tokens",
        "last_failure_at",
        "output_tokens",
        "requests",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.ewma_latency: float | None = None
        self.ewma_ttft: float | None = None
        self.ewma_error_rate = 0.0
        self.last_failure_at: float | None = None
        self.input_tokens = 0
        self.output_tokens = 0


class Tracker:
    """Thread-safe live statistics; one per client.

    Args:
        monotonic: the clock used to timestamp failures.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._cells: dict[str, _Cell] = {}
        self._monotonic = monotonic
        self._listeners: list[Callable[[Outcome], None]] = []

    def get(self, deployment: str) -> DeploymentStats:
        """See :meth:`StatsView.get`."""
        cell = self._cells.get(deployment)
        if cell is None:
            with self._lock:
                cell = self._cells.setdefault(deployment, _Cell())
        return cell

    def started(self, deployment: str) -> None:
        """An attempt on ``deployment`` was sent."""
        cell = self._cells.get(deployment) or self._cell(deployment)
        with self._lock:
            cell.in_flight += 1

    def record(self, outcome: Outcome) -> None:
        """An attempt finished (successfully or not); update stats and notify listeners."""
        cell = self._cells.get(outcome.deployment) or self._cell(outcome.deployment)
        with self._lock:
            cell.in_flight = max(0, cell.in_flight - 1)
            cell.requests += 1
            if outcome.ok:
                cell.consecutive_failures = 0
                cell.ewma_error_rate *= 1 - _ALPHA
                if outcome.stream:
                    if outcome.ttft is not None:
                        cell.ewma_ttft = _ewma(cell.ewma_ttft, outcome.ttft)
                else:
                    cell.ewma_latency = _ewma(cell.ewma_latency, outcome.latency)
                if outcome.usage is not None:
                    cell.input_tokens += outcome.usage.input_tokens
                    cell.output_tokens += outcome.usage.output_tokens
            else:
                cell.failures += 1
                cell.consecutive_failures += 1
                cell.ewma_error_rate = cell.ewma_error_rate * (1 - _ALPHA) + _ALPHA
                cell.last_failure_at = self._monotonic()
        for listener in self._listeners:
            listener(outcome)

    def cancelled(self, deployment: str) -> None:
        """An attempt was abandoned by the caller (cancelled); only release its in-flight slot."""
        cell = self._cells.get(deployment) or self._cell(deployment)
        with self._lock:
            cell.in_flight = max(0, cell.in_flight - 1)

    def subscribe(self, listener: Callable[[Outcome], None]) -> None:
        """Call ``listener(outcome)`` after every recorded outcome."""
        self._listeners.append(listener)

    def names(self) -> Iterable[str]:
        """Deployments seen so far."""
        return list(self._cells)

    def _cell(self, deployment: str) -> _Cell:
        with self._lock:
            return self._cells.setdefault(deployment, _Cell())


def _ewma(previous: float | None, sample: float) -> float:
    return sample if previous is None else previous + _ALPHA * (sample - previous)
