"""``intelligent``'s ``max_p95``: deployments measured too slow are excluded, but not forever.

A deployment is excluded while **both** hold:

* the lower confidence bound of its measured p95 latency exceeds ``max_p95`` (the tracker's
  sketch of every successful answer, read at ``0.95 - z * sqrt(0.95 * 0.05 / n)`` for ``n``
  answers: one slow answer out of three is not yet a slow p95);
* its current latency estimate (the peak-EWMA the scores use) exceeds ``max_p95`` too.

The second condition is what lets an excluded deployment back in: without traffic its estimate
decays towards zero, so after a while it qualifies again and is tried; if it is still slow, the
estimate jumps back (a peak counts at once) and it is excluded again after one answer. Only
answers that completed are measured (failures and timeouts are the availability factor's).
Nothing here does I/O; time comes from ``stats.now()``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..providers.base import Endpoint
from ..tracking.stats import StatsView

__all__ = ["P95_Z", "slow_deployments"]

P95_Z = 1.64
"""The ``z`` of the p95's lower bound (about a one-sided 95 % bound, as ``FeedbackPolicy.z``)."""


def slow_deployments(
    candidates: Sequence[Endpoint], stats: StatsView, max_p95: float, z: float = P95_Z
) -> dict[str, str]:
    """``{deployment: reason}`` for the candidates too slow for ``max_p95`` seconds (see the
    module docstring). A statistics view without latency quantiles excludes nothing."""
    bound = getattr(stats, "latency_quantile_lower", None)
    if bound is None:
        return {}
    now = stats.now()
    get = stats.get
    out: dict[str, str] = {}
    for c in candidates:
        name = c.name
        # The estimate first: it is cheaper, and below the cap for every healthy deployment.
        estimate = get(name).latency_estimate(now)
        if estimate is None or estimate <= max_p95:
            continue
        p95 = bound(name, 0.95, z)
        if p95 is not None and p95 > max_p95:
            out[name] = f"p95 latency >= {p95:.3g} s (lower bound) > max_p95 {max_p95:g} s"
    return out
