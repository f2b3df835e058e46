"""Compare the balancing strategies on a simulated fleet (no sockets, virtual clock).

Usage::

    python benchmarks/simulate.py [--seed 0] [--requests 3000] [--scenario file.json] [--json out.json]
    python benchmarks/simulate.py --oracle [--seed 0] [--seeds 1] [--requests 3000] [--only adaptive,...]

``--oracle`` runs every named scenario (:data:`multimodel.simulation.SCENARIOS`) with every
built-in strategy and the reference strategies below (same arrivals for all), and prints each
one's p95 as a ratio to the oracle's, which routes with the true state of the fleet;
``--seeds N`` prints the mean over N seeds (one seed's success rates vary by more than the
strategies' do).

Reference strategies (the simple baselines ``adaptive`` must beat): ``ref_random`` (uniform),
``round_robin`` and ``least_connections`` (the built-ins: round robin, least outstanding), and
``ref_p2c`` (plain power of two choices over peak EWMA x (in flight + 1), no failure handling).
``adaptive_v1`` is ``adaptive`` with its former cost (peak EWMA x (in flight + 1), idle decay
toward zero, x (1 + 30 x odds of failure)) and two random choices at every fleet size (the
no-starvation rule and the ceiling learned from a Retry-After hold included).

The default scenario is :meth:`multimodel.simulation.Scenario.default`: a fast, a slow, a failing
(30 % HTTP 500) and a cheap rate-limited deployment (429 + Retry-After above 4 in flight), under
Poisson arrivals at 8/s with 4x bursts. The engine lives in ``multimodel.simulation``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict

from multimodel.providers.base import Endpoint
from multimodel.simulation import (
    ORACLE,
    SCENARIOS,
    STRATEGIES,
    Scenario,
    SimulationResult,
    compare,
    simulate,
)
from multimodel.strategies import RouteContext
from multimodel.strategies._util import LockedRandom
from multimodel.strategies.response_time import expected_latency
from multimodel.tracking.stats import StatsView


class RefRandom:
    """Uniform random choice."""

    def __init__(self, seed: int) -> None:
        self._rng = LockedRandom(seed)

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        return candidates[self._rng.index(len(candidates))]


class RefP2C:
    """Plain P2C over peak EWMA x (in flight + 1); unmeasured = the other's estimate."""

    def __init__(self, seed: int) -> None:
        self._rng = LockedRandom(seed)

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        if len(candidates) == 1:
            return candidates[0]
        i, j = self._rng.sample2(len(candidates))
        a, b = candidates[i], candidates[j]
        now = stats.now()
        la = expected_latency(a, stats, ctx, now)
        lb = expected_latency(b, stats, ctx, now)
        la = la if la is not None else (lb if lb is not None else 1.0)
        lb = lb if lb is not None else la
        ca = la * (stats.get(a.name).in_flight + 1)
        cb = lb * (stats.get(b.name).in_flight + 1)
        return a if ca <= cb else b


REFERENCES = ("ref_random", "round_robin", "least_connections", "ref_p2c")


def run_named(name: str, strategy: str, seed: int, requests: int) -> SimulationResult:
    """One strategy (built-in, reference or the oracle) on one named scenario."""
    scenario = Scenario.named(name, seed=seed, requests=requests)
    if strategy == "ref_random":
        result = simulate(scenario, RefRandom(seed))
    elif strategy == "ref_p2c":
        result = simulate(scenario, RefP2C(seed))
    elif strategy == "adaptive_v1":  # 0.1's load and failure models, two random choices always
        spec = {
            "name": "adaptive",
            "seed": seed,
            "load_factor": 1.0,
            "scan_max": 0,
            "idle_floor": 0.0,
            "remember": False,
            "peak_weight": 1.0,
            "explore_tau": 0.0,
            "error_penalty": 30.0,  # the cost times 1 + 30 x odds of failure
        }
        result = simulate(scenario, spec)
    else:
        return simulate(scenario, strategy)
    return SimulationResult(**{**_fields(result), "strategy": strategy})


def _fields(r: SimulationResult) -> dict[str, object]:
    return {f: getattr(r, f) for f in SimulationResult.__dataclass_fields__}


def oracle_table(
    seed: int, requests: int, strategies: Sequence[str], seeds: int = 1
) -> tuple[str, dict[str, dict[str, SimulationResult]]]:
    """The Markdown table of p95 / oracle p95 (and success) per scenario and strategy.

    With ``seeds`` > 1, each cell is the mean over seeds ``seed`` .. ``seed + seeds - 1`` of
    the ratio (and of the success rate), the oracle's column the mean of its p95: one seed's
    success rates differ by ~0.5 points from the next's (``bursty_90``), more than strategies
    differ, so a comparison within that noise needs several. ``results`` holds the first seed's
    runs."""
    results: dict[str, dict[str, SimulationResult]] = {}
    ratios: dict[str, dict[str, list[float]]] = {}
    rates: dict[str, dict[str, list[float]]] = {}
    for name in SCENARIOS:
        for k in range(seeds):
            row = {s: run_named(name, s, seed + k, requests) for s in (ORACLE, *strategies)}
            if k == 0:
                results[name] = row
            oracle = row[ORACLE]
            for s, r in row.items():
                ratios.setdefault(name, {}).setdefault(s, []).append(
                    r.p95 if s == ORACLE else r.p95 / oracle.p95
                )
                rates.setdefault(name, {}).setdefault(s, []).append(r.success_rate)
    head = ["scenario", "oracle p95 s", *strategies]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in results:
        cells = [name]
        for s in (ORACLE, *strategies):
            ratio, rate = ratios[name][s], rates[name][s]
            cells.append(f"{sum(ratio) / seeds:.2f} ({sum(rate) / seeds:.1%})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), results


def table(results: list[SimulationResult]) -> str:
    """A Markdown table of the results."""
    names = list(results[0].share)
    head = [
        "strategy",
        "success",
        "p50 s",
        "p95 s",
        "p99 s",
        "attempts",
        "cost $",
        *(f"{n} %" for n in names),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [
            r.strategy,
            f"{r.success_rate:.2%}",
            f"{r.p50:.2f}",
            f"{r.p95:.2f}",
            f"{r.p99:.2f}",
            str(r.attempts),
            f"{r.cost:.2f}",
            *(f"{100 * r.share[n]:.0f}" for n in names),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--scenario", help="a JSON file for Scenario.from_dict")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--oracle", action="store_true", help="every named scenario, p95 as a ratio to the oracle"
    )
    parser.add_argument("--only", help="comma-separated strategies for --oracle")
    parser.add_argument(
        "--seeds", type=int, default=1, help="--oracle: the mean over this many seeds from --seed"
    )
    args = parser.parse_args()
    if args.oracle:
        chosen = args.only.split(",") if args.only else [*STRATEGIES, *REFERENCES[::3]]
        started = time.perf_counter()
        text, results = oracle_table(args.seed, args.requests, chosen, args.seeds)
        elapsed = time.perf_counter() - started
        which = (
            f"seed {args.seed}"
            if args.seeds == 1
            else f"mean of seeds {args.seed}-{args.seed + args.seeds - 1}"
        )
        print(
            f"p95 / oracle p95 (success rate), {args.requests} requests per scenario "
            f"(sequential_failure: 600), {which} ({elapsed:.1f} s)\n"
        )
        print(text)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                out = {n: {s: asdict(r) for s, r in row.items()} for n, row in results.items()}
                json.dump(out, fh, indent=2)
        return
    if args.scenario:
        with open(args.scenario, encoding="utf-8") as fh:
            scenario = Scenario.from_dict(json.load(fh))
    else:
        scenario = Scenario.default(seed=args.seed, requests=args.requests)
    started = time.perf_counter()
    results = compare(scenario, STRATEGIES)
    elapsed = time.perf_counter() - started
    print(
        f"{scenario.load.requests} requests per strategy, seed {scenario.seed}, "
        f"max {scenario.max_attempts} attempts per request ({elapsed:.1f} s)\n"
    )
    print(table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                [{**asdict(r), "success_rate": r.success_rate} for r in results], fh, indent=2
            )


if __name__ == "__main__":
    main()
