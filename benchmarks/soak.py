"""Soak: thousands of async requests against a fleet with ~30 % injected faults.

Usage::

    python benchmarks/soak.py [--requests 10000] [--concurrency 100] [--seconds 600]

A child-process mock server hosts six deployments of one model in the three wire formats;
about 30 % of their answers are faults: HTTP 500 and 429 (with Retry-After), dropped
connections, streams cut after some content, streams that stall, error events. The client
(``AsyncClient``, default strategy, tracking, ledger) sends a mix of queries (70 %) and streams
(30 %). Every call is classified:

* answered: a response (streams: read to the end);
* typed: a ``multimodel.errors`` error;
* untyped: any other exception (a bug);
* hung: still running 5 s past the call's deadline (a bug).

Then three views of what happened must agree: the tracker (``client.stats()``), the SQLite
ledger (every attempt, partial streams included) and the responses the caller got. RSS is
sampled at the start, the middle and the end. Bounded in count (``--requests``) and in time
(``--seconds``): the run stops issuing calls when either is reached.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment
from multimodel.testing.process import MockServerProcess

warnings.simplefilter("ignore")  # stream-abandonment and pricing warnings are not the point

MODEL = "gpt-4o-mini"  # priced in the catalog, so costs are exact
DEADLINE = 8.0
TIMEOUT = 2.0


def fleet() -> dict[str, MockDeployment]:
    text = " ".join(f"token{i}" for i in range(24))
    common: dict[str, Any] = {"text": text, "chunks": 12, "latency": 0.005, "latency_jitter": 0.01}
    return {
        "oa-healthy": MockDeployment(format="openai", behavior=Behavior(**common, seed=1)),
        "oa-500s": MockDeployment(
            format="openai", behavior=Behavior(**common, fail_rate=0.35, fail_status=500, seed=2)
        ),
        "an-429s": MockDeployment(
            format="anthropic",
            behavior=Behavior(**common, fail_rate=0.3, fail_status=429, retry_after=0.05, seed=3),
        ),
        "an-cut": MockDeployment(
            format="anthropic",
            behavior=Behavior(**common, drop_after=5, fail_rate=0.2, fail_status=529, seed=4),
        ),
        "ge-errors": MockDeployment(
            format="gemini",
            behavior=Behavior(
                **common, stream_error_after=4, fail_rate=0.25, fail_status=503, seed=5
            ),
        ),
        "ge-stall": MockDeployment(
            format="gemini",
            behavior=Behavior(
                **common, stall_after=6, stall_timeout=3.0, fail_rate=0.2, fail_status=500, seed=6
            ),
        ),
    }


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Tally:
    def __init__(self) -> None:
        self.answered = self.typed = self.untyped = self.hung = 0
        self.errors: dict[str, int] = {}
        self.untyped_examples: list[str] = []
        self.response_tokens = [0, 0]
        self.response_cost = Decimal(0)
        self.partial_chars = 0

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


async def one(client: mm.AsyncClient, i: int, tally: Tally) -> None:
    stream = i % 10 < 3
    try:
        with anyio.fail_after(DEADLINE + 5.0):
            try:
                if stream:
                    async with client.stream(f"request {i}", model=MODEL) as s:
                        async for chunk in s:
                            tally.partial_chars += len(chunk.text)
                    response = s.response
                else:
                    response = await client.query(f"request {i}", model=MODEL)
            except mm.MultimodelError as exc:
                tally.typed += 1
                tally.error(exc)
                return
            except Exception as exc:  # noqa: BLE001 - a bug, counted and shown
                tally.untyped += 1
                tally.error(exc)
                if len(tally.untyped_examples) < 5:
                    tally.untyped_examples.append(repr(exc))
                return
    except TimeoutError:
        tally.hung += 1
        return
    assert response is not None
    tally.answered += 1
    tally.response_tokens[0] += response.usage.input_tokens
    tally.response_tokens[1] += response.usage.output_tokens
    tally.response_cost += response.cost or Decimal(0)


async def run(args: argparse.Namespace) -> int:
    deployments = fleet()
    ledger_path = Path(tempfile.mkdtemp(prefix="multimodel-soak-")) / "usage.sqlite3"
    rss: dict[str, float] = {"start": rss_mib()}
    tally = Tally()
    started = time.monotonic()
    with MockServerProcess(deployments) as server:
        client = mm.AsyncClient(
            deployments=[
                mm.Deployment(
                    model=MODEL,
                    provider=dep.format,
                    name=name,
                    api_key="sk-soak",
                    base_url=server.base_url(name),
                )
                for name, dep in deployments.items()
            ],
            timeout=TIMEOUT,
            deadline=DEADLINE,
            stream_idle_timeout=1.0,
            ledger=str(ledger_path),
        )
        async with client:
            limiter = anyio.Semaphore(args.concurrency)

            async def guarded(i: int) -> None:
                try:
                    await one(client, i, tally)
                finally:
                    limiter.release()
                if i == args.requests // 2:
                    rss["middle"] = rss_mib()

            async with anyio.create_task_group() as group:
                for i in range(args.requests):
                    await limiter.acquire()
                    if time.monotonic() - started > args.seconds:
                        limiter.release()
                        break
                    group.start_soon(guarded, i)
            elapsed = time.monotonic() - started
            stats = client.stats()
            assert client.ledger is not None
            client.ledger.flush(timeout=30)
        rss["end"] = rss_mib()
    issued = tally.answered + tally.typed + tally.untyped + tally.hung

    with sqlite3.connect(ledger_path) as conn:
        rows, l_in, l_out, l_ok, l_partial = conn.execute(
            "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(ok),"
            " SUM(CASE WHEN ok = 0 AND output_tokens > 0 THEN 1 ELSE 0 END) FROM usage"
        ).fetchone()
        costs = [
            Decimal(c) for (c,) in conn.execute("SELECT cost FROM usage WHERE cost IS NOT NULL")
        ]
    l_cost = sum(costs, Decimal(0))
    d = stats.deployments.values()
    t_requests = sum(s.requests for s in d)
    t_success = sum(s.successes for s in d)
    t_in = sum(s.input_tokens for s in d)
    t_out = sum(s.output_tokens for s in d)
    t_cost = sum((s.cost for s in d), Decimal(0))

    print(
        f"# soak: {issued} calls in {elapsed:.1f} s ({issued / elapsed:.0f}/s), "
        f"concurrency {args.concurrency}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| answered | typed | untyped | hung |\n|---|---|---|---|")
    print(f"| {tally.answered} | {tally.typed} | {tally.untyped} | {tally.hung} |\n")
    print("typed errors:", ", ".join(f"{k} {v}" for k, v in sorted(tally.errors.items())))
    for example in tally.untyped_examples:
        print("untyped:", example)
    print("\n| view | attempts | successes | input tokens | output tokens | cost $ |")
    print("|---|---|---|---|---|---|")
    print(f"| tracker | {t_requests} | {t_success} | {t_in} | {t_out} | {t_cost} |")
    print(f"| ledger | {rows} | {l_ok} | {l_in} | {l_out} | {l_cost} |")
    print(
        f"| responses | {tally.answered} answered | | {tally.response_tokens[0]} | "
        f"{tally.response_tokens[1]} | {tally.response_cost} |"
    )
    print(
        f"\nledger rows of failed or stopped attempts that were billed (partial streams): "
        f"{l_partial}"
    )
    print(
        f"RSS MiB: start {rss['start']:.1f}, middle {rss.get('middle', float('nan')):.1f}, "
        f"end {rss['end']:.1f}"
    )
    checks = {
        "no untyped errors": tally.untyped == 0,
        "no hung calls": tally.hung == 0,
        "tracker and ledger agree on attempts": t_requests == rows,
        "tracker and ledger agree on tokens": (t_in, t_out) == (l_in, l_out),
        "tracker and ledger agree on cost": t_cost == l_cost,
        "one success per answered call": t_success == l_ok == tally.answered,
        "answered responses are within what was billed": (
            tally.response_tokens[1] <= t_out and tally.response_cost <= t_cost
        ),
    }
    print()
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    sys.exit(anyio.run(run, args))


if __name__ == "__main__":
    main()
