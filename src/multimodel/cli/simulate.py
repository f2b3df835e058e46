"""``multimodel simulate``: compare the balancing strategies on a simulated fleet of yours.

Examples::

    multimodel simulate examples/scenarios/fleet.json
    multimodel simulate fleet.toml --strategy adaptive --strategy round_robin --json
    multimodel simulate fleet.json --requests 500 --seed 3
    multimodel simulate --list                     # the named scenarios
    multimodel simulate brownout --strategy oracle --strategy adaptive
    multimodel simulate --feedback [--drift] [FILE]   # learned quality vs an oracle

SCENARIO is a file, or the name of one of the built-in scenarios the strategies are measured on
(``--list``; :data:`multimodel.simulation.SCENARIOS`, 3000 requests unless ``--requests``).
The strategy ``oracle`` routes with the true state of the fleet; when it runs, the tables also
show each strategy's p95 as a multiple of the oracle's.

Runs :mod:`multimodel.simulation`: a discrete-event simulation on a virtual clock (no sockets,
no sleeping; thousands of requests take well under a second) in which the *real* strategy
objects route every request. Every strategy faces the same traffic (same seed). Per strategy it
prints the success rate, end-to-end latency percentiles (p50/p95/p99, retries included), the
cost in USD, the attempts, and each deployment's share of the attempts.

Scenario file format (JSON, or TOML on Python 3.11+; ``.toml`` files are read as TOML, anything
else as JSON). Every key except ``deployments[].name`` is optional::

    {
      "seed": 7,                        # same seed, same result
      "max_attempts": 2,                # a failed attempt is retried on another deployment
      "strategies": ["adaptive",        # default: every built-in strategy; --strategy wins
                     {"name": "intelligent", "factors": {"cost": 0.6, "performance": 0.4}}],
      "load": {
        "requests": 2000,               # requests sent
        "rate": 8.0,                    # Poisson arrivals per second ...
        "burst_every": 60.0,            # ... times burst_multiplier during the first
        "burst_duration": 10.0,         #     burst_duration s of every burst_every s
        "burst_multiplier": 4.0,        #     (burst_every 0: no bursts)
        "input_tokens": 500,            # tokens per request, for cost
        "output_tokens": 200
      },
      "deployments": [
        {
          "name": "openai-4o-mini",     # unique
          "latency": {"median": 0.6,    # seconds, lognormal: median * exp(sigma * N(0, 1))
                      "sigma": 0.3,
                      "congestion": 0.02},  # +2 % per request already in flight
          "failure": {"rate": 0.05,     # share of attempts that fail ...
                      "status": 500,    # ... with this HTTP status
                      "latency_factor": 0.3},  # ... after 0.3 x a latency sample
          "rate_limit": {"max_concurrency": 8,  # above this many in flight: 429 ...
                         "retry_after": 1.0,    # ... with Retry-After (s) ...
                         "latency": 0.02},      # ... answered this fast
          "price": {"input": 0.15, "output": 0.6},  # USD per 1M tokens
          "weight": 1.0,                # for the weighted strategy
          "quality": 58                 # 0-100, for the intelligent strategy
        }
      ]
    }

(Comments are for this description only: JSON has none. In TOML, write the deployments as
``[[deployments]]`` tables.) Unknown keys are errors. ``examples/scenarios/fleet.json`` is a
complete example. Exit codes: 0 ok, 1 unreadable or invalid scenario, 2 usage error (unknown
strategy, bad option).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._output import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, print_json, rich_available, table

if TYPE_CHECKING:
    from ..simulation import Scenario, SimulationResult

__all__ = ["ScenarioFileError", "add_parser", "load_scenario", "run", "run_simulate"]


class ScenarioFileError(Exception):
    """The scenario file cannot be read or is invalid (one-line message)."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to the ``multimodel`` subparsers."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        help="compare the strategies on a simulated fleet from a scenario file (no network)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "scenario",
        metavar="SCENARIO",
        nargs="?",
        help="a .json or .toml scenario file, or a named scenario (--list)",
    )
    parser.add_argument("--list", action="store_true", help="list the named scenarios")
    parser.add_argument(
        "--feedback",
        action="store_true",
        help="replay a feedback scenario: intelligent learning quality per task vs an oracle "
        "(SCENARIO, optional: a file with its hidden quality matrix)",
    )
    parser.add_argument(
        "--drift",
        action="store_true",
        help="with --feedback: the cheap model's chat quality drops half-way",
    )
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="S",
        help="strategy to run (repeatable; default: the file's `strategies`, else all built-in)",
    )
    parser.add_argument("--requests", type=int, metavar="N", help="override load.requests")
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--plain", action="store_true", help="plain text even if rich is installed")
    parser.set_defaults(run=run, simulate_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``multimodel simulate`` from parsed arguments."""
    if args.list:
        return list_scenarios(as_json=args.json)
    if args.requests is not None and args.requests < 1:
        return error("simulate", "--requests must be at least 1", EXIT_USAGE)
    if args.feedback:
        from ._feedback_sim import run_feedback

        try:
            data = {} if args.scenario is None else _read(Path(args.scenario))
        except ScenarioFileError as exc:
            return error("simulate", str(exc))
        return run_feedback(
            args.scenario,
            data,
            requests=args.requests,
            seed=args.seed,
            drift=args.drift,
            as_json=args.json,
            plain=args.plain,
        )
    if args.scenario is None:
        args.simulate_parser.error("a SCENARIO (file or name), --feedback or --list is required")
    return run_simulate(
        args.scenario,
        strategies=args.strategy,
        requests=args.requests,
        seed=args.seed,
        as_json=args.json,
        plain=args.plain,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioFileError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if path.suffix.lower() == ".toml":
        try:
            import tomllib  # type: ignore[import-not-found,unused-ignore]
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10
            raise ScenarioFileError("TOML scenarios need Python 3.11+; use JSON") from None
        try:
            data: Any = tomllib.loads(raw.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ScenarioFileError(f"{str(path)!r} is not valid TOML: {exc}") from None
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ScenarioFileError(f"{str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioFileError(f"{str(path)!r}: the scenario must be an object / table")
    return data


def load_scenario(
    path: str | Path, *, requests: int | None = None, seed: int | None = None
) -> tuple[Scenario, list[Any]]:
    """Read a scenario file: the :class:`~multimodel.simulation.Scenario` and the file's
    ``strategies`` (empty when it has none).

    Raises:
        ScenarioFileError: unreadable file, bad syntax, or an invalid scenario.
    """
    from ..simulation import SCENARIOS, Scenario

    path = Path(path)
    if not path.exists() and str(path) in SCENARIOS:
        return Scenario.named(str(path), seed=seed or 0, requests=requests or 3000), []
    data = _read(path)
    strategies = data.pop("strategies", [])
    if not isinstance(strategies, list) or not all(
        isinstance(s, (str, Mapping)) for s in strategies
    ):
        raise ScenarioFileError(f"{str(path)!r}: `strategies` must be a list of names or tables")
    if requests is not None:
        data["load"] = {**data.get("load", {}), "requests": requests}
    if seed is not None:
        data["seed"] = seed
    try:
        scenario = Scenario.from_dict(data)
    except KeyError as exc:
        raise ScenarioFileError(f"{str(path)!r}: missing key {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ScenarioFileError(f"{str(path)!r}: invalid scenario: {exc}") from None
    return scenario, list(strategies)


def _strategy_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else str(spec.get("name", "?"))


def _ratio(p95: float, oracle: float | None) -> float | None:
    if oracle is None or not oracle or math.isnan(oracle) or math.isnan(p95):
        return None
    return p95 / oracle


def _result_dict(r: SimulationResult, oracle: float | None = None) -> dict[str, Any]:
    return {
        "strategy": r.strategy,
        "requests": r.requests,
        "succeeded": r.succeeded,
        "success_rate": r.success_rate,
        "attempts": r.attempts,
        "p50": r.p50,
        "p95": r.p95,
        "p99": r.p99,
        "cost": r.cost,
        "share": r.share,
        "errors": r.errors,
        "virtual_seconds": r.duration,
        "p95_vs_oracle": _ratio(r.p95, oracle),
    }


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"  # NaN: nothing succeeded


def _print_tables(
    scenario: Scenario,
    results: Sequence[SimulationResult],
    path: str,
    use_rich: bool,
    oracle: float | None = None,
) -> None:
    load = scenario.load
    bursts = f" (bursts x{load.burst_multiplier:g})" if load.burst_every > 0 else ""
    print(
        f"{path}: {len(scenario.deployments)} deployments, {load.requests} requests at "
        f"{load.rate:g}/s{bursts}, seed {scenario.seed}, "
        f"up to {scenario.max_attempts} attempt(s) per request\n"
    )
    head = ["strategy", "ok %", "p50 ms", "p95 ms", "p99 ms", "cost $", "attempts"]
    rows = [
        [
            r.strategy,
            f"{100 * r.success_rate:.1f}",
            _ms(r.p50),
            _ms(r.p95),
            _ms(r.p99),
            f"{r.cost:.4f}",
            str(r.attempts),
        ]
        for r in results
    ]
    if oracle is not None:
        head.append("p95 / oracle")
        for row, r in zip(rows, results, strict=True):
            ratio = _ratio(r.p95, oracle)
            row.append("-" if ratio is None else f"{ratio:.2f}")
    table(
        head,
        rows,
        right=tuple(range(1, len(head))),
        use_rich=use_rich,
        title="results per strategy (latency end to end, retries included)",
    )
    print()
    names = [d.name for d in scenario.deployments]
    table(
        ["deployment", *(r.strategy for r in results)],
        [[name, *(f"{100 * r.share.get(name, 0.0):.1f}" for r in results)] for name in names],
        right=tuple(range(1, len(results) + 1)),
        use_rich=use_rich,
        title="share of attempts per deployment (%)",
    )


def run_simulate(
    scenario_path: str,
    *,
    strategies: list[str] | None = None,
    requests: int | None = None,
    seed: int | None = None,
    as_json: bool = False,
    plain: bool = False,
) -> int:
    """Simulate the scenario with each strategy and print the comparison; returns the exit
    code (1: bad scenario file, 2: unknown strategy)."""
    from ..simulation import ORACLE, STRATEGIES, simulate
    from ..strategies import known_strategies

    try:
        scenario, from_file = load_scenario(scenario_path, requests=requests, seed=seed)
    except ScenarioFileError as exc:
        return error("simulate", str(exc))
    chosen: list[Any] = list(strategies or from_file or STRATEGIES)
    known = [*known_strategies(), ORACLE]
    unknown = [_strategy_name(s) for s in chosen if _strategy_name(s) not in known]
    if unknown:
        code = EXIT_USAGE if strategies else EXIT_FAILURE
        return error(
            "simulate", f"unknown strategy {unknown[0]!r}; known: {', '.join(known)}", code
        )
    try:
        results = [simulate(scenario, s) for s in chosen]
    except (TypeError, ValueError) as exc:  # e.g. bad parameters in a strategy table
        return error("simulate", f"cannot run the scenario: {exc}")
    oracle = next((r.p95 for r in results if r.strategy == ORACLE), None)
    if as_json:
        print_json(
            {
                "scenario": {
                    "path": scenario_path,
                    "seed": scenario.seed,
                    "requests": scenario.load.requests,
                    "max_attempts": scenario.max_attempts,
                    "deployments": [d.name for d in scenario.deployments],
                },
                "results": [_result_dict(r, oracle) for r in results],
            }
        )
        return EXIT_OK
    use_rich = not plain and sys.stdout.isatty() and rich_available()
    _print_tables(scenario, results, scenario_path, use_rich, oracle)
    return EXIT_OK


def list_scenarios(*, as_json: bool = False) -> int:
    """Print the named scenarios (``multimodel simulate --list``)."""
    from ..simulation import SCENARIO_NOTES, SCENARIOS

    if as_json:
        print_json([{"name": n, "description": SCENARIO_NOTES.get(n, "")} for n in SCENARIOS])
        return EXIT_OK
    width = max(map(len, SCENARIOS))
    for name in SCENARIOS:
        print(f"{name:<{width}}  {SCENARIO_NOTES.get(name, '')}")
    return EXIT_OK
