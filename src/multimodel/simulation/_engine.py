"""The discrete-event loop: requests arrive on the virtual clock, a real strategy (or the
oracle) routes each attempt over a real tracker, a failed attempt is retried elsewhere, and the
outcome is summed up in a :class:`~multimodel.simulation.SimulationResult`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..strategies.base import RouteContext, Strategy, make_strategy
from ..tracking.outcome import Outcome
from ..tracking.stats import Tracker
from ..types import Usage
from ._fleet import MODEL, Oracle, SimFleet, VirtualClock, endpoint_of
from ._profiles import DeploymentProfile, Scenario
from ._report import SimulationResult, quantile

__all__ = ["ORACLE", "STRATEGIES", "compare", "simulate"]

STRATEGIES: tuple[str, ...] = (
    "round_robin",
    "weighted",
    "least_connections",
    "response_time",
    "intelligent",
    "adaptive",
)
"""The built-in strategies, in the order reports list them."""

ORACLE = "oracle"
"""The strategy name that routes with the true state of the fleet (see :mod:`multimodel.simulation`)."""

_SEEDED = frozenset({"adaptive", "intelligent", "least_connections", "response_time"})
_ARRIVAL, _DONE = 0, 1


@dataclass(slots=True)
class _Call:
    arrived: float
    ctx: RouteContext  # the request's own length (``max_tokens``) is in it
    tried: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Attempt:
    call: _Call
    profile: DeploymentProfile
    started: float
    status: int
    retry_after: float | None
    load: int  # in flight on the deployment when it was sent (Outcome.sent_load)


def _strategy(spec: str | Mapping[str, Any] | Strategy, seed: int) -> tuple[str, Strategy]:
    if isinstance(spec, str):
        params: dict[str, Any] = {"name": spec}
        if spec in _SEEDED:
            params["seed"] = seed
        return spec, make_strategy(params)
    if isinstance(spec, Mapping):
        return str(spec.get("name", "custom")), make_strategy(dict(spec))
    return type(spec).__name__, spec


def simulate(
    scenario: Scenario, strategy: str | Mapping[str, Any] | Strategy = "adaptive"
) -> SimulationResult:
    """Run ``scenario`` routed by ``strategy`` (a registered name, a config dict or an object).

    Deterministic for a given scenario seed (strategies named by string are seeded with it).
    """
    clock = VirtualClock()
    fleet = SimFleet(scenario.deployments, scenario.seed, scenario.load)
    chooser: Strategy
    if strategy == ORACLE:
        name, chooser = ORACLE, Oracle(fleet, clock, scenario.seed)
    else:
        name, chooser = _strategy(strategy, scenario.seed)
    tracker = Tracker(clock.monotonic)
    endpoints = [endpoint_of(p) for p in scenario.deployments]
    for ep in endpoints:
        tracker.register(ep.name, ep.model, ep.provider)
    load = scenario.load
    ctx = RouteContext(
        stream=False, input_tokens=load.input_tokens, output_tokens=load.output_tokens
    )
    exclude = getattr(chooser, "exclude", None)
    if exclude is not None:
        banned = exclude(endpoints, ctx)
        endpoints = [ep for ep in endpoints if ep.name not in banned] or endpoints
    arrivals = random.Random(f"{scenario.seed}:arrivals")
    contexts = {load.output_tokens: ctx}  # one per request length
    usages: dict[int, Usage] = {}

    def usage_of(tokens: int) -> Usage:
        usage = usages.get(tokens)
        if usage is None:
            usage = usages[tokens] = Usage(input_tokens=load.input_tokens, output_tokens=tokens)
        return usage

    def context(tokens: int) -> RouteContext:
        found = contexts.get(tokens)
        if found is None:
            found = contexts[tokens] = RouteContext(
                stream=False, input_tokens=load.input_tokens, output_tokens=tokens
            )
        return found

    def gap(at: float) -> float:
        if not load.poisson:
            return 1.0 / load.rate_at(at)
        return arrivals.expovariate(load.rate_at(at))

    events: list[tuple[float, int, int, Any]] = []
    seq = 0
    sent = 0
    attempts: dict[str, int] = dict.fromkeys(fleet.profiles, 0)
    errors: dict[str, int] = {}
    latencies: list[float] = []
    cost = 0.0

    def push(at: float, kind: int, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, payload))

    def start(call: _Call) -> bool:
        candidates = [ep for ep in endpoints if ep.name not in call.tried]
        if not candidates:
            return False
        ep = chooser.choose(candidates, tracker, call.ctx)
        profile = fleet.profiles[ep.name]
        call.tried.append(ep.name)
        attempts[ep.name] += 1
        load = tracker.started(ep.name)
        status, seconds, retry_after = fleet.attempt(profile, clock.now, call.ctx.output_tokens)
        push(
            clock.now + seconds,
            _DONE,
            _Attempt(call, profile, clock.now, status, retry_after, load),
        )
        return True

    push(gap(0.0), _ARRIVAL, None)
    while events:
        at, _, kind, payload = heapq.heappop(events)
        clock.now = at
        if kind == _ARRIVAL:
            sent += 1
            start(_Call(arrived=at, ctx=context(fleet.request_tokens())))
            if sent < load.requests:
                push(at + gap(at), _ARRIVAL, None)
            continue
        done: _Attempt = payload
        profile = done.profile
        fleet.in_flight[profile.name] -= 1
        ok = done.status < 400
        written = fleet.output(profile, done.call.ctx.output_tokens)
        latency = at - done.started
        error = None if ok else ("RateLimited" if done.status == 429 else "ServerError")
        tracker.record(
            Outcome(
                deployment=profile.name,
                model=MODEL,
                provider="sim",
                ok=ok,
                latency=latency,
                started_at=clock.time() - latency,
                status=done.status,
                error=error,
                usage=usage_of(written) if ok else None,
                retry_after=done.retry_after,
                attempt=len(done.call.tried),
                requested_tokens=done.call.ctx.output_tokens,
                sent_load=done.load,
            )
        )
        if ok:
            latencies.append(at - done.call.arrived)
            cost += profile.cost(load.input_tokens, written)
            continue
        errors[f"{profile.name}:{done.status}"] = errors.get(f"{profile.name}:{done.status}", 0) + 1
        if len(done.call.tried) < scenario.max_attempts:
            start(done.call)

    latencies.sort()
    total = sum(attempts.values()) or 1
    return SimulationResult(
        strategy=name,
        requests=load.requests,
        succeeded=len(latencies),
        attempts=sum(attempts.values()),
        p50=quantile(latencies, 0.50),
        p95=quantile(latencies, 0.95),
        p99=quantile(latencies, 0.99),
        cost=cost,
        share={k: v / total for k, v in attempts.items()},
        errors=errors,
        duration=clock.now,
    )


def compare(
    scenario: Scenario, strategies: Iterable[str | Mapping[str, Any] | Strategy] = STRATEGIES
) -> list[SimulationResult]:
    """:func:`simulate` every strategy on the same scenario (same arrivals, same seed)."""
    return [simulate(scenario, s) for s in strategies]
