"""A per-deployment model of latency against output length: ``latency ≈ overhead + slope × t``,
``t`` the output tokens of the answer.

A non-streamed answer gives one total latency. A deployment that happened to write long
answers looks slow to a router that averages those latencies, and the time per token learned
as total ÷ tokens carries the fixed overhead (simulator, ``mixed_lengths``: 4.7 ms/token learned
for a deployment at 4 ms + 0.15 s, 3.7 for one at 1.5 ms + 0.6 s, and short requests sent to
the one that is slow for them: p95 2x the oracle's). This line separates the two, so a request
is scored at its own expected length:

``expected(t) = recent latency × (overhead + slope × t) / (overhead + slope × t̄)``

``t̄`` the smoothed length of the answers the recent latency was measured on (the same EWMA
weight, so for a deployment whose latency is linear in tokens the two cancel exactly), and
``t`` the request's expected length: its ``max_tokens`` (or the default estimate) times the
deployment's own ratio of tokens written to tokens asked for (a model that writes 600 tokens
when asked for 200, or 300 when capped at 4,096). A deployment whose lengths do not vary has no
slope to learn (:data:`SPREAD`) and a factor of exactly 1.

The fit is an exponentially weighted least-squares line through ``(t, latency)`` samples, O(1)
per sample and solved once per :data:`BATCH` (the same scheme as
:mod:`multimodel.tracking.congestion`); memory is a dozen floats per deployment.
"""

from __future__ import annotations

__all__ = ["ALPHA", "BATCH", "DECAY", "SPREAD", "LengthFit"]

DECAY = 1.0 / 128
"""Weight lost by older samples at each new one (~128 answers remembered)."""
BATCH = 8
"""Answers summed before the line is solved again."""
_KEEP = (1.0 - DECAY) ** BATCH
SPREAD = 0.1
"""The least spread of lengths (a coefficient of variation) a slope is fitted on: lengths that
vary by less than 10 % of their mean are not told apart from noise (no slope, a factor of 1)."""
ALPHA = 0.3
"""EWMA weight of the newest answer in the smoothed lengths (the tracker's latency EWMA's)."""


class LengthFit:
    """The running fit for one deployment (written under the tracker's lock).

    Attributes:
        overhead: the fitted seconds of an answer of no tokens (``>= 0``).
        slope: the fitted seconds per output token (``>= 0``; 0 until the lengths vary).
        tokens: the smoothed output tokens of recent answers (``t̄``; followed while
            :attr:`slope` is not 0, -1 before).
        requested: the smoothed output tokens those requests were routed with.
        base: :attr:`overhead` ``+`` :attr:`slope` ``× t̄``: the latency the line gives the
            answers the recent latency was measured on.
        share: :attr:`overhead` ÷ :attr:`base` (1 while the slope is 0).
        per_token: :attr:`slope` × (written ÷ requested) ÷ :attr:`base`: with :attr:`share`,
            ``share + per_token × max_tokens`` is the factor from the recent latency to this
            request's (0 while the slope is 0: no factor).
    """

    __slots__ = (
        "_batch",
        "_br",
        "_bt",
        "_btt",
        "_bty",
        "_by",
        "_t",
        "_tt",
        "_ty",
        "_w",
        "_y",
        "base",
        "overhead",
        "per_token",
        "requested",
        "share",
        "slope",
        "tokens",
    )

    def __init__(self) -> None:
        self._batch = 0
        self._bt = self._btt = self._by = self._bty = self._br = 0.0  # the batch being summed
        self._w = self._t = self._tt = self._y = self._ty = 0.0  # the decayed sums before it
        self.overhead = 0.0
        self.slope = 0.0
        self.tokens = -1.0
        self.requested = -1.0
        self.base = 0.0
        self.share = 1.0
        self.per_token = 0.0

    def add(self, tokens: int, latency: float, requested: int | None = None) -> float:
        """One successful answer of ``tokens`` output tokens that took ``latency`` seconds, to
        a request routed with ``requested`` expected output tokens (``None``: unknown, taken
        as ``tokens``). Returns :attr:`slope` (0: no length effect, nothing else to read).

        The tracker pays this on every answer: a few additions while there is no slope (the
        smoothed lengths are followed only while they matter, and start from the batch that
        found the slope); the line is solved once per :data:`BATCH`."""
        asked = requested or tokens
        self._bt += tokens
        self._btt += tokens * tokens
        self._by += latency
        self._bty += tokens * latency
        self._br += asked
        self._batch += 1
        active = self.slope
        if active:
            m = self.tokens
            self.tokens = m + ALPHA * (tokens - m)
            self.requested += ALPHA * (asked - self.requested)
        if self._batch >= BATCH:
            self._solve()
        elif active:
            self._factor()
        return self.slope

    def expected(self, tokens: float) -> float:
        """The line's latency for an answer of ``tokens`` output tokens."""
        return self.overhead + self.slope * tokens

    def normalized(self, tokens: int, latency: float) -> float:
        """``latency`` of an answer of ``tokens`` taken to the recent length ``t̄`` (what the
        peak estimate is fed, so one long answer does not read as a slow deployment)."""
        line = self.overhead + self.slope * tokens
        return latency * self.base / line if self.slope and line > 0.0 else latency

    def _factor(self) -> None:
        self.base = base = self.overhead + self.slope * self.tokens
        if base <= 0.0 or self.requested <= 0.0:
            self.share, self.per_token = 1.0, 0.0
            return
        self.share = self.overhead / base
        self.per_token = self.slope * self.tokens / self.requested / base

    def _solve(self) -> None:
        """Fold the batch into the decayed sums and fit the line again."""
        keep = _KEEP
        self._w = w = self._w * keep + self._batch
        self._t = st = self._t * keep + self._bt
        self._tt = stt = self._tt * keep + self._btt
        self._y = sy = self._y * keep + self._by
        self._ty = sty = self._ty * keep + self._bty
        # The smoothed lengths start from the batch's means when a slope is found (transient:
        # the tracker's latency EWMA has seen the last few answers with their own weights).
        batch_t, batch_r, batch = self._bt, self._br, self._batch
        self._batch = 0
        self._bt = self._btt = self._by = self._bty = self._br = 0.0
        mean_t, mean_y = st / w, sy / w
        var = max(stt / w - mean_t * mean_t, 0.0)
        cov = sty / w - mean_t * mean_y
        slope = cov / var if var > (SPREAD * mean_t) ** 2 else 0.0
        if slope <= 0.0:
            # Lengths that barely vary (or a slope that is noise): no length effect, the
            # deployment is scored on its latency as measured.
            self.overhead, self.slope = mean_y, 0.0
            self.share, self.per_token = 1.0, 0.0
            return
        overhead = mean_y - slope * mean_t
        if overhead < 0.0:  # a line through the origin at the mean: latency proportional
            overhead, slope = 0.0, mean_y / mean_t
        if not self.slope:
            self.tokens, self.requested = batch_t / batch, batch_r / batch
        self.overhead, self.slope = overhead, slope
        self._factor()

    def start(self, recent: float) -> None:
        """Align :attr:`tokens` with ``recent``, the latency EWMA of the same answers (same
        weight), when a slope is first found: linear in the lengths, it is the line at the
        smoothed length, so ``t̄ = (recent - overhead) / slope``."""
        if self.slope and self.tokens > 0.0:
            ratio = self.requested / self.tokens
            self.tokens = max((recent - self.overhead) / self.slope, 0.0)
            self.requested = self.tokens * ratio
            self._factor()
