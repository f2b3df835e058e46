"""Compare the balancing strategies on a simulated fleet (no sockets, virtual clock).

Usage::

    python benchmarks/simulate.py [--seed 0] [--requests 3000] [--scenario file.json] [--json out.json]

The default scenario is :meth:`multimodel.simulation.Scenario.default`: a fast, a slow, a failing
(30 % HTTP 500) and a cheap rate-limited deployment (429 + Retry-After above 4 in flight), under
Poisson arrivals at 8/s with 4x bursts. The engine lives in ``multimodel.simulation``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from multimodel.simulation import STRATEGIES, Scenario, SimulationResult, compare


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
    args = parser.parse_args()
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
