"""Simulate the balancing strategies over a virtual fleet: no sockets, no sleeping.

A discrete-event loop (a heap of events on a virtual clock) sends a bursty stream of requests to
simulated deployments, each with a latency distribution (lognormal), a failure rate, an optional
concurrency limit answered with 429 + ``Retry-After``, and a price. Routing is done by the *real*
strategy objects (:func:`multimodel.strategies.make_strategy`) reading a *real*
:class:`~multimodel.tracking.stats.Tracker` that runs on the virtual clock and is fed
:class:`~multimodel.tracking.outcome.Outcome` records, exactly as the client feeds it. Retries are
emulated simply: a failed attempt is retried at once on another deployment, up to
``Scenario.max_attempts`` attempts. Circuit breakers, back-off and client-side rate limits are
not simulated: the comparison isolates the strategies.

Example::

    from multimodel.simulation import Scenario, simulate

    scenario = Scenario.from_dict({
        "seed": 7,
        "deployments": [
            {"name": "fast", "latency": {"median": 0.4}, "price": {"input": 0.5, "output": 1.5}},
            {"name": "flaky", "failure": {"rate": 0.3, "status": 500}},
            {"name": "cheap", "rate_limit": {"max_concurrency": 4, "retry_after": 1.0}},
        ],
        "load": {"requests": 2000, "rate": 8.0},
    })
    result = simulate(scenario, "adaptive")
    print(result.success_rate, result.p95, result.share)

The same seed gives the same result; arrivals are drawn from their own generator, so every
strategy faces the same traffic.

The name ``"oracle"`` routes with the truth instead of a strategy: it knows every deployment's
latency distribution, congestion, concurrency limit, failure rate and phase at every instant,
and sends each request where its expected completion (a failure counted as one more attempt)
is earliest. :data:`SCENARIOS` names the fleets the strategies are measured on against it
(``Scenario.named("brownout")``); ``benchmarks/simulate.py --oracle`` prints the table.

The package holds one concept per module: ``_profiles`` (deployments, load, scenario),
``_scenarios`` (the named scenarios), ``_fleet`` (the simulated fleet and the oracle),
``_engine`` (the event loop) and ``_report`` (the result).
"""

from ._engine import ORACLE, STRATEGIES, compare, simulate
from ._fleet import VirtualClock
from ._profiles import (
    DeploymentProfile,
    FailureProfile,
    LatencyProfile,
    LoadPattern,
    Phase,
    PriceProfile,
    RateLimitProfile,
    Scenario,
)
from ._report import SimulationResult
from ._scenarios import SCENARIO_NOTES, SCENARIOS

__all__ = [
    "ORACLE",
    "SCENARIOS",
    "SCENARIO_NOTES",
    "STRATEGIES",
    "DeploymentProfile",
    "FailureProfile",
    "LatencyProfile",
    "LoadPattern",
    "Phase",
    "PriceProfile",
    "RateLimitProfile",
    "Scenario",
    "SimulationResult",
    "VirtualClock",
    "compare",
    "simulate",
]
