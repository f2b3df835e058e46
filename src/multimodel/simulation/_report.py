"""What a simulation reports: :class:`SimulationResult`, one strategy's outcome on one scenario
(success rate, latency percentiles, cost, each deployment's share of the attempts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SimulationResult", "quantile"]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What one strategy achieved on one scenario.

    Latency percentiles are end-to-end seconds (retries included) of the requests that
    succeeded; ``share`` is each deployment's fraction of all attempts.
    """

    strategy: str
    requests: int
    succeeded: int
    attempts: int
    p50: float
    p95: float
    p99: float
    cost: float
    share: dict[str, float]
    errors: dict[str, int]
    duration: float

    @property
    def success_rate(self) -> float:
        """Share of requests that got an answer."""
        return self.succeeded / self.requests

    @property
    def error_rate(self) -> float:
        """Share of requests that failed after every attempt."""
        return 1.0 - self.success_rate


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values (``nan`` when empty)."""
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]
