"""The ``multimodel`` command.

Subcommands: ``demo`` (route a real workload over local mock providers; no API keys needed),
``report`` (a usage report from the SQLite usage ledger: tables, JSON or a self-contained HTML
page), ``models`` (the model catalog), ``chat`` (one real call to the providers whose
API keys are set) and ``simulate`` (the strategies on a simulated fleet from a scenario file).
Exit codes: 0 ok, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multimodel", description="One client for many LLM providers."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="route a real workload over local mock providers (no API keys, no network)",
    )
    demo.add_argument("--requests", type=int, default=500, help="requests per strategy")
    demo.add_argument(
        "--strategy", action="append", help="strategy to run (repeatable; default: all)"
    )
    demo.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    demo.add_argument("--json", action="store_true", help="print JSON instead of tables")
    demo.add_argument("--seed", type=int, default=7, help="seed of the mock fleet's failures")
    report = sub.add_parser(
        "report",
        help="summarize the usage ledger: cost, latency, errors, recommendations",
    )
    report.add_argument(
        "--ledger",
        metavar="PATH",
        help="the ledger file (default: $MULTIMODEL_LEDGER, else ./multimodel-usage.sqlite3)",
    )
    report.add_argument(
        "--since", default="24h", help="window to report on: 15m, 24h, 7d, 4w (default 24h)"
    )
    report.add_argument("--html", metavar="OUT", help="also write a self-contained HTML page")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    # models, chat, simulate: each module adds its subparser and sets ``run`` (light imports).
    from . import chat, models, simulate

    for command in (models, chat, simulate):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        if args.requests < 1 or args.concurrency < 1:
            parser.error("--requests and --concurrency must be at least 1")
        return run_demo(
            requests=args.requests,
            strategies=args.strategy,
            concurrency=args.concurrency,
            as_json=args.json,
            seed=args.seed,
        )
    if args.command == "report":
        from .report import run_report

        return run_report(ledger=args.ledger, since=args.since, html=args.html, as_json=args.json)
    if args.command in ("models", "chat", "simulate"):
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
