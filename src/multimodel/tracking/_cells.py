"""The tracker's per-deployment and per-user / per-tag cells (see :mod:`.stats`): plain
slotted records, written under the tracker's lock and read lock-free by strategies."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from .congestion import CongestionFit
from .histogram import FixedSketch
from .lengths import LengthFit
from .sketches import PeakEWMA, QuantileSketch
from .view import RANK_TAU
from .windows import MultiWindow

__all__ = ["PEAK_TAU", "_Cell", "_GroupCell"]

PEAK_TAU = RANK_TAU  # seconds for a latency spike to decay by 1/e once samples are fast again


class _Cell:
    """Per-deployment state; written under the tracker's lock, read lock-free."""

    __slots__ = (
        "_latency_sketch",
        "cache_read_tokens",
        "cached",
        "congestion",
        "congestion_fit",
        "consecutive_failures",
        "cost",
        "errors",
        "ewma_error_rate",
        "ewma_failure_latency",
        "ewma_latency",
        "ewma_tpot",
        "ewma_ttft",
        "failures",
        "headroom",
        "headroom_skip",
        "headroom_until",
        "in_flight",
        "input_tokens",
        "last_failure_at",
        "latency_at",
        "latency_level",
        "latency_level_error",
        "latency_peak",
        "latency_pending",
        "latency_rank",
        "length_fit",
        "length_per_token",
        "length_share",
        "load_scale",
        "output_tokens",
        "peak_latency",
        "peak_ttft",
        "penalty_until",
        "refused_load",
        "requests",
        "sent_loads",
        "steady_error_rate",
        "stream_rank",
        "successes",
        "ttft_sketch",
        "unpriced",
        "win_errors",
        "win_requests",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.cached = 0
        self.errors: dict[str, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cost = Decimal(0)  # the sum of the known costs
        self.unpriced = 0  # attempts billed at an unknown price (see outcome.unpriced)
        self.ewma_latency: float | None = None
        self.ewma_ttft: float | None = None
        self.ewma_tpot: float | None = None
        self.ewma_error_rate = 0.0
        self.steady_error_rate = 0.0  # the same with STEADY_ALPHA (see tracking.stats)
        self.ewma_failure_latency: float | None = None  # seconds a failed attempt took
        self.peak_latency = PeakEWMA(PEAK_TAU)
        self.peak_ttft = PeakEWMA(PEAK_TAU)
        self.latency_rank: float | None = None
        self.latency_peak: float | None = None  # peak_latency's value and stamp, as plain
        self.latency_at = 0.0  # attributes (read per candidate by adaptive)
        self.stream_rank: float | None = None
        self._latency_sketch = QuantileSketch()
        # Successful latencies not yet in the sketch, oldest first: only quantile reads need
        # it, so answers are folded in batches (at most _PENDING, or when it is read).
        self.latency_pending: list[float] = []
        self.ttft_sketch = QuantileSketch()
        self.last_failure_at: float | None = None
        self.penalty_until = 0.0
        # The load the last request refused with a Retry-After was sent at (None: unknown).
        self.refused_load: int | None = None
        self.headroom = 1.0
        self.headroom_until = 0.0
        self.headroom_skip = 0
        self.win_requests = MultiWindow()
        self.win_errors = MultiWindow()
        # The load each request in flight was sent at, oldest first: the one that finishes is
        # taken to be the oldest (answers overtake each other, which only adds noise to the
        # congestion fit; Outcome does not carry it, and the plan would have to thread it).
        self.sent_loads: deque[int] = deque()
        self.congestion_fit = CongestionFit()
        self.congestion = self.congestion_fit.congestion
        self.load_scale = 1.0
        self.latency_level = self.congestion_fit.level
        self.latency_level_error = self.congestion_fit.level_error
        self.length_fit = LengthFit()
        self.length_share = 1.0
        self.length_per_token = 0.0  # 0: the latency does not depend on the length (yet)

    @property
    def latency_sketch(self) -> QuantileSketch:
        """The sketch of the successful latencies, every answer folded in (read under the
        tracker's lock: the fold writes)."""
        sketch = self._latency_sketch
        pending = self.latency_pending
        if pending:
            sketch.add_all(pending)
            pending.clear()
        return sketch

    def latency_estimate(self, now: float) -> float | None:
        return self.peak_latency.value(now)

    def ttft_estimate(self, now: float) -> float | None:
        return self.peak_ttft.value(now)

    def latency_recent(self, stream: bool = False) -> float | None:
        if stream:
            ttft = self.peak_ttft.value()
            if ttft is not None:
                return ttft
        return self.peak_latency.value()


class _GroupCell:
    """Per-user or per-tag totals (no routing state)."""

    __slots__ = (
        "cost",
        "failures",
        "input_tokens",
        "latency",
        "output_tokens",
        "requests",
        "unpriced",
        "window",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = Decimal(0)
        self.unpriced = 0
        # Fixed-size quantiles: there may be 10,000 groups (see tracking.histogram).
        self.latency = FixedSketch()
        self.window = MultiWindow()
