"""``adaptive``'s ties: which costs are too close to tell apart, and which of them gets the
request (the fewest in flight, then chance). A part of
:class:`~multimodel.strategies.adaptive.Adaptive`, which scores; its large-fleet choice
(:mod:`._large_fleet`) asks the same question without the latency levels.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..tracking.stats import DeploymentStats
from ._util import LockedRandom

__all__ = ["LEVEL_TIE_CAP", "LEVEL_TIE_Z", "SCAN_TIE", "TIE_SECONDS", "Ties"]

_UNKNOWN = float("inf")  # the error of a latency level not yet measured
SCAN_TIE = 1.1  # in a scan, costs within 10 % of the lowest are ties (measurement noise)
TIE_SECONDS = 0.01  # ... and so are costs within 10 ms of it (jitter of very fast answers)
LEVEL_TIE_Z = 3.0
"""In a scan, a cost up to :data:`LEVEL_TIE_CAP` times the lowest is a tie too when the two
deployments' idle latency levels (averages over up to ~250 answers, see
:attr:`~multimodel.tracking.view.DeploymentStats.latency_level`) differ by at most this many
standard errors of their difference: the deployments are not told apart, only their noisy
recent estimates are. A level not yet known (fewer than ~32 answers since the deployment's
latency last changed) ties nothing."""
LEVEL_TIE_CAP = 1.3
"""The highest cost, as a multiple of the lowest, that equal levels make a tie: a level lags
a change by a few batches of answers, and a wider cap let that lag tie a deployment that had
just got slower (20 seeds, p95 / oracle against the fixed band alone: ``drift`` +0.0 % at
1.3, +0.5 % at 1.5, +0.7 % at 2; ``brownout`` +0.2 %, +0.6 %, +0.7 %; ``homogeneous`` -1.0
%, -1.1 %, -1.2 %)."""


class Ties:
    """The tie-breaking of :class:`~multimodel.strategies.adaptive.Adaptive` (its settings and
    state are Adaptive's)."""

    tie: float
    level_z: float
    _ceilings: dict[str, tuple[float, int]]
    _rng: LockedRandom

    def _pick(self, costs: list[float], cells: list[DeploymentStats], levels: bool = True) -> int:
        """The index of the lowest cost, ties to the fewest in flight, then at random. Ties:
        costs within ``tie`` or :data:`TIE_SECONDS` of the lowest and, with ``levels``, those
        within :data:`LEVEL_TIE_CAP` of it whose deployment's latency level is within
        ``level_z`` standard errors of the lowest's.

        Ties, so that equal deployments share the traffic instead of the one measured a little
        faster (noise, a cold connection) taking all of it; 1.1 and not 1.2: a 20 % band gave
        a deployment 1.5x slower than the best 15 % of the traffic (brownout, simulator). Costs
        within TIE_SECONDS of the lowest are ties too: on loopback (2 ms answers) a millisecond
        of jitter is 50 %, and the band alone let a deployment that failed once fall to 5 % of
        sequential traffic (the test over real sockets). Among ties, the fewest in flight: the
        band hides a load difference of a few requests, and at 90 % of capacity that sent a
        third of the 429s to a full deployment while another had free slots.

        The levels: a recent estimate (an EWMA of ~6 answers, with a peak) of a σ = 0.3
        lognormal latency is noisy by ~13 %, so two equal deployments' costs are more than 10 %
        apart most of the time, and the one that looked faster took the next requests whatever
        its load: the loads drifted apart, and each request in flight adds to the latency
        (simulator, 20 seeds, p95 against the best reference: ``homogeneous`` +1.2 %,
        ``failing_30`` +2.0 %, ``sequential_failure`` +2.4 %). A wider fixed band is no answer
        (1.2: ``brownout`` 1.07 -> 1.10x the oracle's p95, ``mixed_models`` 1.03 -> 1.06x): it
        cannot tell noise from a real 20 % difference. The levels can (a standard error of ~2
        % each once ~250 answers are in), so the wider band applies only where they do not
        differ: ``homogeneous`` -1.0 % p95, ``failing_30`` -0.8 %, ``sequential_failure`` -0.3
        %, ``one_slow`` -0.5 %, the others within noise (20 seeds, paired). Not in a large
        fleet (``levels`` False: its elite is already the lowest, and level ties among them
        cost ``large_fleet`` 4 % of p95), nor while a rate limit's ceiling is known (the
        ceilings steer the load there; ``bursty_90``, 60 seeds: success -0.04 ± 0.04 points
        with level ties, against a margin of +0.07 over least outstanding)."""
        # sorted() and not min(): its float comparisons are specialized (a third of min's
        # cost on a few floats), and the order tells one winner or all tied at once.
        ranked = sorted(costs)
        best = ranked[0]  # the first lowest: sorted() is stable
        floor = best * self.tie
        wide = best + TIE_SECONDS
        if wide > floor:  # noqa: PLR1730  # max(best * tie, wide) without the builtin's call
            floor = wide
        n = len(costs)
        if n == 1:
            return 0
        # The cap past the band that equal levels reach (none in a large fleet, or while a
        # learned rate-limit ceiling steers the load; see above).
        cap = best * LEVEL_TIE_CAP if levels and self.level_z and not self._ceilings else floor
        if ranked[1] > floor and ranked[1] > cap:  # one clear winner: the lowest
            return costs.index(best)
        if ranked[-1] <= floor:  # every one ties (an idle fleet of equal deployments)
            loads = [cell.in_flight for cell in cells]
            if loads.count(loads[0]) == n:  # all as busy: at random
                return int(self._rng.draw() * n)  # LockedRandom.index, inlined
            low = min(loads)
            count = loads.count(low)
            if count == 1:
                return loads.index(low)
            ties: Sequence[int] = range(n)
        else:
            if cap > floor:
                ties = self._level_ties(costs, cells, best, floor, cap)
                if len(ties) == 1:
                    return ties[0]
            else:
                ties = [i for i, v in enumerate(costs) if v <= floor]
            loads = [cells[i].in_flight for i in ties]
            low = min(loads)
            count = loads.count(low)
            if count == 1:
                return ties[loads.index(low)]
        if count < len(ties):
            ties = [i for i, x in zip(ties, loads, strict=True) if x == low]
        return ties[int(self._rng.draw() * count)]  # LockedRandom.index, inlined

    def _level_ties(
        self,
        costs: list[float],
        cells: list[DeploymentStats],
        best: float,
        floor: float,
        cap: float,
    ) -> list[int]:
        """The candidates that tie with the lowest cost ``best``: within ``floor``, or within
        ``cap`` with a latency level within ``level_z`` standard errors of the lowest's. A
        level not yet known (error ``inf``, fewer than a few answers) ties with nothing: the
        band is for deployments measured alike, not a way to send a slower one requests on
        the strength of one answer."""
        first = cells[costs.index(best)]
        level, error = first.latency_level, first.latency_level_error
        if error == _UNKNOWN:
            return [i for i, v in enumerate(costs) if v <= floor]
        z2 = self.level_z * self.level_z
        ties = []
        for i, v in enumerate(costs):
            if v <= floor:
                ties.append(i)
            elif v <= cap:
                cell = cells[i]
                other = cell.latency_level_error
                gap = cell.latency_level - level
                # |gap| <= z x the difference's standard error, without a square root.
                if other != _UNKNOWN and gap * gap <= z2 * (other * other + error * error):
                    ties.append(i)
        return ties
