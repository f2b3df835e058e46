"""A per-deployment model of latency against load: ``latency ≈ idle × (1 + congestion × n)``,
``n`` the requests already in flight on the deployment when the request was sent.

LLM APIs serve many requests at once and slow down with load, each by its own amount. A
router that scores a deployment by its measured latency times a constant load factor counts
the load twice (the measurement already carries the load it was taken at) and stops short of
what a fast deployment can serve (simulator, ``large_fleet``: ~12 in flight on the fastest
where the oracle runs ~20, p95 1.2x the oracle's). This model gives the latency a request sent
now should expect: the measured estimate taken back to idle with the load it was measured at,
then forward to the load now (:attr:`CongestionFit.scale` and :attr:`CongestionFit.congestion`).

The same answers give the deployment's idle latency *level* and its standard error
(:attr:`CongestionFit.level`, :attr:`CongestionFit.level_error`): an average over up to ~250
answers (restarted when the latency changes), far less noisy than the recent estimate routing
reacts to, so a strategy can tell deployments that only look different (noise) from ones that
are (see ``adaptive``'s ties).

The fit is an exponentially weighted least-squares line through ``(n, latency)`` samples, O(1)
per sample, with a ridge prior pulling the slope toward :data:`PRIOR` (a deployment always
measured at the same load has no slope to learn).
"""

from __future__ import annotations

import math

__all__ = [
    "BATCH",
    "DECAY",
    "LEVEL_MIN",
    "LEVEL_RESET_Z",
    "PRIOR",
    "PRIOR_WEIGHT",
    "CongestionFit",
]

PRIOR = 0.03
"""The congestion assumed before the data says otherwise: each request in flight adds 3 % of
the idle latency (the former constant load factor)."""
PRIOR_WEIGHT = 4.0
"""The prior's weight, in units of the load's variance: with loads spread by ±2 requests the
data and the prior count alike."""
DECAY = 1.0 / 128
"""Weight lost by older samples at each new one (~128 samples remembered: the slope of a
σ = 0.3 lognormal latency needs a hundred or so to be told from noise)."""
BATCH = 8
"""Answers summed before the line is solved again."""
_KEEP = (1.0 - DECAY) ** BATCH
LOAD_ALPHA = 0.3
"""EWMA weight of the newest sample in :attr:`CongestionFit.load` (the load the latency
estimate carries; the same weight as the tracker's latency EWMA)."""
LEVEL_MIN = 32.0
"""Effective answers (since the level last restarted) below which :attr:`CongestionFit.level`
is unknown (its error ``inf``): a latency level is claimed only on enough evidence."""
LEVEL_RESET_Z = 3.0
"""A batch whose mean idle latency is more than this many of its standard errors from the
level restarts the level from that batch: the deployment changed (``drift``: a level that
still averaged the last minute's faster answers tied a deployment 1.3x slower with the
fastest; p95 / oracle +0.5 % without the restart, +0.0 % with it, 40 seeds)."""
_MAX = 1.0  # a congestion above 100 % per request is noise (or a queue: capped)


class CongestionFit:
    """The running fit for one deployment (written under the tracker's lock).

    Samples are summed in batches of :data:`BATCH` and the line is solved once per batch: the
    tracker pays a few additions per answer (the solve every answer cost ~1 µs, more than the
    rest of the bookkeeping of a choice). The smoothed load and :attr:`scale` follow every
    answer.

    Attributes:
        congestion: the fraction of the idle latency each request in flight adds.
        load: the smoothed load (requests in flight at send) of the recent samples.
        scale: ``1 / (1 + congestion × load)``: a latency measured at :attr:`load` times this
            is the idle latency.
        level: the mean idle latency of the answers remembered since the latency last changed
            (:data:`LEVEL_RESET_Z`; their mean latency taken back to idle at their mean load;
            0.0 before the first :data:`BATCH` answers).
        level_error: the standard error of :attr:`level` (the answers' spread over the square
            root of their effective number); ``inf`` while fewer than :data:`LEVEL_MIN`
            effective answers are behind it: no level is claimed yet.
    """

    __slots__ = (
        "_batch",
        "_bn",
        "_bnn",
        "_bny",
        "_by",
        "_byy",
        "_ln",
        "_lw",
        "_lw2",
        "_ly",
        "_lyy",
        "_n",
        "_nn",
        "_ny",
        "_w",
        "_y",
        "congestion",
        "level",
        "level_error",
        "load",
        "scale",
    )

    def __init__(self) -> None:
        self._batch = 0
        self._bn = self._bnn = self._by = self._bny = self._byy = 0.0  # the batch being summed
        self._w = self._n = self._nn = self._y = self._ny = 0.0  # the decayed sums before it
        self._lw = self._lw2 = self._ln = self._ly = self._lyy = 0.0
        self.congestion = PRIOR
        self.level = 0.0
        self.level_error = math.inf
        self.load = -1.0  # none yet
        self.scale = 1.0

    def add(self, load: int, latency: float) -> bool:
        """One successful answer that took ``latency`` seconds, sent with ``load`` others in
        flight on the deployment. True when it completed a batch: :attr:`congestion`,
        :attr:`level` and :attr:`level_error` changed (only :attr:`scale` otherwise)."""
        self._bn += load
        self._bnn += load * load
        self._by += latency
        self._bny += load * latency
        self._byy += latency * latency
        self._batch = batch = self._batch + 1
        solved = batch >= BATCH
        if solved:
            self._solve()
        m = self.load
        self.load = m = load if m < 0.0 else m + LOAD_ALPHA * (load - m)
        self.scale = 1.0 / (1.0 + self.congestion * m)
        return solved

    def _solve(self) -> None:
        """Fold the batch into the decayed sums and fit the line again."""
        keep = _KEEP
        self._w = w = self._w * keep + self._batch
        self._n = sn = self._n * keep + self._bn
        self._nn = snn = self._nn * keep + self._bnn
        self._y = sy = self._y * keep + self._by
        self._ny = sny = self._ny * keep + self._bny
        by, byy, bn, batch = self._by, self._byy, self._bn, self._batch
        self._batch = 0
        self._bn = self._bnn = self._by = self._bny = self._byy = 0.0
        mean_n, mean_y = sn / w, sy / w
        var = snn / w - mean_n * mean_n
        cov = sny / w - mean_n * mean_y
        # Ridge toward the prior slope (PRIOR x the idle latency the prior implies).
        prior_slope = PRIOR * mean_y / (1.0 + PRIOR * mean_n)
        slope = (cov + PRIOR_WEIGHT * prior_slope) / (max(var, 0.0) + PRIOR_WEIGHT)
        idle = mean_y - slope * mean_n
        c = slope / idle if idle > 0.0 else _MAX
        self.congestion = min(max(c, 0.0), _MAX)
        self._fold_level(by, byy, bn, batch, keep)

    def _fold_level(self, by: float, byy: float, bn: float, batch: int, keep: float) -> None:
        """Fold a batch (its latencies' sum ``by`` and sum of squares ``byy``, its loads'
        sum ``bn``) into the level's own decayed sums, restarting them first if the batch
        disagrees with the level (:data:`LEVEL_RESET_Z`), and set :attr:`level` and
        :attr:`level_error`."""
        to_idle = 1.0 / (1.0 + self.congestion * bn / batch)
        error = self.level_error
        if error < math.inf:
            # The batch's mean against the level, in the batch's standard errors (the
            # answers' spread is the level's error times the square root of its count).
            spread = error * math.sqrt(self._lw * self._lw / self._lw2)
            if abs(by / batch * to_idle - self.level) * math.sqrt(batch) > LEVEL_RESET_Z * spread:
                self._lw = self._lw2 = self._ln = self._ly = self._lyy = 0.0
        self._lw = w = self._lw * keep + batch
        # Every answer of a batch has weight 1 when folded, so its square is 1 too.
        self._lw2 = w2 = self._lw2 * keep * keep + batch
        self._ln = sn = self._ln * keep + bn
        self._ly = sy = self._ly * keep + by
        self._lyy = syy = self._lyy * keep + byy
        # The mean and its standard error (the latencies' spread, unbiased for the weights'
        # effective number, over its square root), taken back to idle at the mean load.
        n_eff = w * w / w2
        mean_y = sy / w
        to_idle = 1.0 / (1.0 + self.congestion * sn / w)
        self.level = mean_y * to_idle
        if n_eff >= LEVEL_MIN:
            spread = max(syy / w - mean_y * mean_y, 0.0) * n_eff / (n_eff - 1.0)
            self.level_error = math.sqrt(spread / n_eff) * to_idle
        else:
            self.level_error = math.inf
