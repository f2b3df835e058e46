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
from typing import Any, Literal

import anyio

from .. import AsyncClient, Deployment, MultimodelError, RetryPolicy
from ..strategies import known_strategies
from ..testing import Behavior, MockDeployment

__all__ = ["StrategyReport", "run_demo"]

MODEL = "demo-chat"


# name: (wire format, provider preset, catalog model, behaviour)
Format = Literal["openai", "anthropic", "gemini"]
FLEET: dict[str, tuple[Format, str, str, dict[str, Any]]] = {
    "openai-fast": ("openai", "openai", "gpt-4o-mini", {"latency": 0.02, "latency_jitter": 0.02}),
    "anthropic-steady": (
        "anthropic",
        "anthropic",
        "claude-3.5-haiku",
        {"latency": 0.08, "latency_jitter": 0.02},
    ),
    "gemini-flaky": (
        "gemini",
        "gemini",
        "gemini-2.0-flash",
        {
            "latency": 0.01,
            "latency_jitter": 0.01,
            "fail_rate": 0.25,
            "fail_status": 503,
            "retry_after": 0.05,
        },
    ),
    "deepseek-limited": (
        "openai",
        "deepseek",
        "deepseek-chat",
        {
            "latency": 0.03,
            "latency_jitter": 0.01,
            "fail_rate": 0.3,
            "fail_status": 429,
            "retry_after": 0.2,
        },
    ),
}


def fleet(seed: int) -> dict[str, MockDeployment]:
    """The mock deployments: fast, slow and steady, flaky (503s), rate-limited (429s)."""
    return {
        name: MockDeployment(format=fmt, behavior=Behavior(seed=seed, **behavior))
        for name, (fmt, _, _, behavior) in FLEET.items()
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
    events: list[str] = field(default_factory=list)


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * (len(sorted_values) - 1)))]


async def _run_strategy(
    server: Any, strategy: str, requests: int, concurrency: int
) -> StrategyReport:
    deployments = [
        Deployment(
            model=MODEL,
            provider=provider,
            name=name,
            provider_model=catalog_model,
            base_url=server.base_url(name),
            api_key="demo-key-not-secret",
        )
        for name, (_, provider, catalog_model, _) in FLEET.items()
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
        t_start = time.monotonic()
        events: list[str] = []
        client.on(
            "model_status_change",
            lambda e: events.append(
                f"  +{time.monotonic() - t_start:5.2f}s  {e.deployment:<17} {e.previous} -> "
                f"{e.status} ({e.reason})"
            ),
        )
        progress = _Progress(strategy, requests)

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
                progress.step()

        async with anyio.create_task_group() as group:
            for i in range(requests):
                group.start_soon(one, i)
        progress.done()
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
        events=events,
    )


class _Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.count = 0
        self.tty = sys.stderr.isatty()

    def step(self) -> None:
        self.count += 1
        if self.tty and (self.count % 10 == 0 or self.count == self.total):
            filled = int(30 * self.count / self.total)
            sys.stderr.write(
                f"\r  {self.label:<18} [{'#' * filled}{'.' * (30 - filled)}] "
                f"{self.count}/{self.total}"
            )
            sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()


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


# Requests in flight: enough to show load-aware strategies at work, few enough that the client
# stays well below one core, so that the latency table shows the providers and the strategies
# (at 32 the p50 rises by ~10 ms of client-side queueing on 2 cores).
DEFAULT_CONCURRENCY = 16


def run_demo(
    *,
    requests: int = 500,
    strategies: list[str] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    as_json: bool = False,
    seed: int = 7,
) -> int:
    """Run the demo; returns the exit code."""
    from ..testing.process import MockServerProcess

    names = strategies or known_strategies()
    unknown = [s for s in names if s not in known_strategies()]
    if unknown:
        print(
            f"unknown strategy {unknown[0]!r}; known: {', '.join(known_strategies())}",
            file=sys.stderr,
        )
        return 2
    reports: list[StrategyReport] = []
    with MockServerProcess(fleet(seed)) as server:
        if not as_json:
            print(f"mock providers on {server.url} (no API keys, no network):")
            for name, (fmt, _, model, behavior) in FLEET.items():
                extra = ", ".join(f"{k}={v}" for k, v in behavior.items())
                print(f"  {name:<17} {fmt:<9} priced as {model:<17} {extra}")
            print(f"\n{requests} requests per strategy, {concurrency} in flight\n")
        for name in names:
            report = anyio.run(_run_strategy, server, name, requests, concurrency)
            reports.append(report)
    if as_json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        print(_table(reports))
        print("\nmodel status events (first 8 per strategy):")
        for r in reports:
            print(f" {r.strategy}: {len(r.events)} change(s)")
            for line in r.events[:8]:
                print(line)
    return 0 if all(r.succeeded for r in reports) else 1
