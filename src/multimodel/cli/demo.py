"""``multimodel demo``: route a real workload over local mock providers and report.

It starts the bundled mock provider server on 127.0.0.1 with three deployments of one model,
each speaking a different wire format and behaving differently (one fast, one steady and
slower, one fast but failing part of the time and rate-limiting), then sends real HTTP requests
through :class:`~multimodel.AsyncClient` with each strategy and prints what the router did.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio

from .. import AsyncClient, Deployment, MultimodelError, RetryPolicy
from ..strategies import known_strategies
from ..testing import Behavior, MockDeployment

__all__ = ["StrategyReport", "run_demo"]

MODEL = "demo-chat"


def fleet(seed: int) -> dict[str, MockDeployment]:
    """The mock deployments: one fast, one slow and steady, one flaky and rate-limiting."""
    return {
        "openai-fast": MockDeployment(
            format="openai", behavior=Behavior(latency=0.02, latency_jitter=0.02, seed=seed)
        ),
        "anthropic-steady": MockDeployment(
            format="anthropic", behavior=Behavior(latency=0.08, latency_jitter=0.02, seed=seed)
        ),
        "gemini-flaky": MockDeployment(
            format="gemini",
            behavior=Behavior(
                latency=0.01, latency_jitter=0.01, fail_rate=0.25, fail_status=503, seed=seed,
                retry_after=0.05,
            ),
        ),
    }


@dataclass
class StrategyReport:
    """What one strategy did over the workload."""

    strategy: str
    requests: int
    succeeded: int
    p50: float
    p95: float
    p99: float
    cost: float | None
    share: dict[str, float] = field(default_factory=dict)
    retries: int = 0
    fallbacks: int = 0
    seconds: float = 0.0


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * (len(sorted_values) - 1)))]


async def _run_strategy(
    server: Any, strategy: str, requests: int, concurrency: int
) -> StrategyReport:
    deployments = [
        Deployment(model=MODEL, provider="openai", name="openai-fast",
                   base_url=server.base_url("openai-fast"), api_key="sk-demo-not-a-real-key"),
        Deployment(model=MODEL, provider="anthropic", name="anthropic-steady",
                   base_url=server.base_url("anthropic-steady"), api_key="sk-ant-demo-key"),
        Deployment(model=MODEL, provider="gemini", name="gemini-flaky",
                   base_url=server.base_url("gemini-flaky"), api_key="AIza-demo-key-000000"),
    ]
    latencies: list[float] = []
    served: Counter[str] = Counter()
    retries = fallbacks = ok = 0
    cost = 0.0
    cost_known = False
    limiter = anyio.Semaphore(concurrency)
    started = time.perf_counter()
    async with AsyncClient(
        deployments=deployments,
        strategy=strategy,
        retry=RetryPolicy(max_retries=3, backoff_initial=0.01, backoff_max=0.1),
        timeout=5.0,
    ) as client:

        async def one(i: int) -> None:
            nonlocal retries, fallbacks, ok, cost, cost_known
            async with limiter:
                t0 = time.perf_counter()
                try:
                    response = await client.query(
                        f"Request {i}: say hello", model=MODEL, max_tokens=32
                    )
                except MultimodelError as exc:
                    trace = getattr(exc, "trace", None)
                else:
                    ok += 1
                    latencies.append(time.perf_counter() - t0)
                    served[response.deployment] += 1
                    trace = response.trace
                    if response.cost is not None:
                        cost += float(response.cost)
                        cost_known = True
                if trace is not None:
                    attempts = trace.deployments()
                    retries += max(0, len(attempts) - 1)
                    if len(set(attempts)) > 1:
                        fallbacks += 1

        async with anyio.create_task_group() as group:
            for i in range(requests):
                group.start_soon(one, i)
    latencies.sort()
    total = sum(served.values()) or 1
    return StrategyReport(
        strategy=strategy,
        requests=requests,
        succeeded=ok,
        p50=_quantile(latencies, 0.50),
        p95=_quantile(latencies, 0.95),
        p99=_quantile(latencies, 0.99),
        cost=cost if cost_known else None,
        share={name: served[name] / total for name in sorted(served)},
        retries=retries,
        fallbacks=fallbacks,
        seconds=time.perf_counter() - started,
    )


def _table(reports: list[StrategyReport]) -> str:
    head = (
        f"{'strategy':<18} {'ok %':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'cost $':>9} {'retries':>7} {'fallbk':>6}  share per deployment"
    )
    lines = [head, "-" * len(head)]
    for r in reports:
        share = ", ".join(f"{k} {v:.0%}" for k, v in r.share.items())
        cost = f"{r.cost:.5f}" if r.cost is not None else "-"
        lines.append(
            f"{r.strategy:<18} {100 * r.succeeded / r.requests:>6.1f} {r.p50 * 1000:>7.1f} "
            f"{r.p95 * 1000:>7.1f} {r.p99 * 1000:>7.1f} {cost:>9} {r.retries:>7} "
            f"{r.fallbacks:>6}  {share}"
        )
    return "\n".join(lines)


def run_demo(
    *,
    requests: int = 500,
    strategies: list[str] | None = None,
    concurrency: int = 32,
    as_json: bool = False,
    seed: int = 7,
) -> int:
    """Run the demo; returns the exit code."""
    from ..testing.process import MockServerProcess

    names = strategies or known_strategies()
    unknown = [s for s in names if s not in known_strategies()]
    if unknown:
        print(f"unknown strategy {unknown[0]!r}; known: {', '.join(known_strategies())}",
              file=sys.stderr)
        return 2
    reports: list[StrategyReport] = []
    with MockServerProcess(fleet(seed)) as server:
        if not as_json:
            print(f"mock providers on {server.url}: openai-fast, anthropic-steady, gemini-flaky")
            print(f"{requests} requests per strategy, {concurrency} in flight\n")
        for name in names:
            report = anyio.run(_run_strategy, server, name, requests, concurrency)
            reports.append(report)
            if not as_json:
                print(f"  {name}: {report.succeeded}/{report.requests} ok "
                      f"in {report.seconds:.1f}s", file=sys.stderr)
    if as_json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        print()
        print(_table(reports))
    return 0 if all(r.succeeded for r in reports) else 1
