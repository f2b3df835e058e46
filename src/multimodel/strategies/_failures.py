"""What a deployment's failures add to ``adaptive``'s cost of sending it a request.

Each failed attempt a success takes there on average (the odds of failure) adds the time a
failure takes there, at least :data:`FAILURE_FLOOR` of the cost; beyond odds of 1 the cost is
multiplied by :data:`BROKEN_PENALTY` per unit of odds; the error rate weighed is the steady one
while the recent one is within its noise (:data:`STEADY_Z`). See
:mod:`multimodel.strategies.adaptive` for the whole score.
"""

from __future__ import annotations

from ..tracking.stats import STEADY_ALPHA, DeploymentStats

__all__ = ["BROKEN_PENALTY", "FAILURE_FLOOR", "STEADY_Z", "failure_cost"]

BROKEN_PENALTY = 30.0
"""Beyond odds of failure of 1 (more failed attempts than answers), each further unit of odds
multiplies the cost by this much more: such a deployment is failing rather than flaky, its
retries outnumber its answers (each spends a retry of the call and of the retry budget, and
adds load to a provider in trouble), so it is avoided however fast its failures are, as by the
former rule (the same 30, from the odds of failure up). Below it a failure costs its time."""
FAILURE_FLOOR = 0.1
"""A failed attempt costs at least this fraction of the deployment's cost (its latency at the
load now): the width of the tie band (:data:`SCAN_TIE`). One that fails in 2 ms would otherwise
cost almost nothing per failure, and once its odds of failure were forgiven down a little it
would tie with a healthy deployment and win the tie with nothing in flight (ten failures in a
row were retried within seconds); with the floor, odds of failure above 1 alone take it out of
the band. No simulated scenario moves with it (its failures take 30 % of an answer's time)."""
STEADY_Z = 3.0
"""The error rate a failure costs is the deployment's steady one (~20 attempts, see
:attr:`~multimodel.tracking.view.DeploymentStats.steady_error_rate`) while the recent one
(weight 0.3) is within this many of its standard deviations of it: the recent rate of a
deployment failing 30 % of the time swings by ±0.19 (``sqrt(0.3 / 1.7 × 0.3 × 0.7)``), past odds
of 1 after two failures in a row, and each swing took it out of the comparison (× the
:data:`BROKEN_PENALTY`) however cheap its failures were. A recent rate beyond the band is a
change (a deployment that starts or stops failing) and is used as it is. The band is taken at
the steady rate *before* the last attempt when that attempt failed: the first failures of a
deployment that had been healthy are a change, not noise around a rate they made (that test
with the steady rate after them: ``brownout`` p95 +0.25 ± 0.08 %, seeds 200-399, 5x slower
answers kept being sent to it for a second). Measured, paired against the recent rate alone:
``failing_30`` p95 -0.13 ± 0.14 % (seeds 0-39), -0.25 ± 0.15 % (40-79), -0.47 ± 0.06 %
(80-279); ``brownout`` +0.03 ± 0.03 % / -0.05 ± 0.03 %, the other scenarios and ``bursty_90``'s
success unchanged. Only after 20 attempts (before that the steady rate is still near its
start)."""
_STEADY_MIN = round(1.0 / STEADY_ALPHA)  # attempts before the steady error rate is used
_RECENT_NOISE = 0.3 / 1.7  # a / (2 - a): variance of the recent error EWMA (a = 0.3) over p(1-p)


def _steady_error_rate(err: float, cell: DeploymentStats) -> float:
    """The error rate a failure at ``cell`` costs, ``err`` its recent rate forgiven (see
    :data:`STEADY_Z`): its steady rate, forgiven alike, unless the recent one departs from it by
    more than its noise."""
    forgiven = err / cell.ewma_error_rate
    steady = cell.steady_error_rate
    # The steady rate before the last attempt, when it failed: the band is the noise around
    # the rate the deployment had, not one the failure under test already raised.
    before = (steady - STEADY_ALPHA if cell.consecutive_failures else steady) / (1.0 - STEADY_ALPHA)
    before = before * forgiven if before > 0.0 else 0.0
    steady *= forgiven
    gap = err - steady
    if gap * gap <= STEADY_Z * STEADY_Z * _RECENT_NOISE * before * (1.0 - before):
        return steady
    return err


def failure_cost(cell: DeploymentStats, err: float, cost: float, penalty: float | None) -> float:
    """``cost`` (the deployment's expected latency now) with its failures added, ``err`` its
    recent error rate forgiven over time; ``penalty``: the former rule's fixed factor
    (``error_penalty``), ``None`` for the expected-time rule."""
    if err and cell.steady_error_rate and cell.requests >= _STEADY_MIN:
        err = _steady_error_rate(err, cell)
    if not err:
        return cost
    odds = err / max(1.0 - err, 1e-3)
    if penalty is not None:
        return cost * (1.0 + penalty * odds)
    # The expected time to an answer here: odds failed attempts per success, each as long as
    # a failure takes. Its time measured, not a fixed factor of the latency: a deployment that
    # fails fast is worth using while its speed makes up for the retries.
    lost = cell.ewma_failure_latency
    if lost is None or lost < cost * FAILURE_FLOOR:
        lost = cost * FAILURE_FLOOR
    failing = odds - 1.0
    cost += odds * lost
    if failing > 0.0:
        cost *= 1.0 + BROKEN_PENALTY * failing
    return cost
