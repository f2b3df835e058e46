"""Usage reports: what the ledger says about a period, and what to do about it.

:func:`build_report` reads a :class:`~multimodel.tracking.ledger.UsageLedger` file and returns a
:class:`Report` (frozen pydantic models, so ``report.model_dump_json()`` is the JSON form):
totals, top models, cost by model and provider, latency percentiles and error rate per
deployment, time series for charts, and a short list of :class:`Recommendation`.

Every row of the ledger is one *attempt* (a retried call writes several rows), so ``requests``
here counts attempts, as the ledger's own queries do. Percentiles are nearest-rank (the value at
rank ``ceil(q * n)`` in ascending order), the ledger's definition, over every attempt's latency.
``cost_per_success`` divides the exact cost by the successful attempts: failed attempts are
usually unpriced, so dividing by all attempts would flatter an unreliable model.

The report reads the file itself, through one read-only SQLite connection inside one
transaction, so every figure comes from the same snapshot of the file and the window is bounded
on both sides (``since <= ts < now``); the ledger's query helpers are unbounded above and each
opens its own connection. Nothing is written to the file, and no schema is created.

Recommendation rules (each subject needs at least :data:`MIN_REQUESTS` attempts in the period):

* ``cheaper_model`` — model B's cost per successful request is at least 40 % below model A's,
  B's p95 latency is at most 20 % above A's, B's error rate at most 2 points above A's, and the
  two saw the same kind of traffic: average input tokens per attempt within a factor of 1.5 (the
  prompt is the caller's, so similar prompt sizes are the provider-agnostic proxy for "the same
  requests"). One recommendation per model A, naming the cheapest such B.
* ``high_error_rate`` — a deployment whose error rate is above 5 %.
* ``slow_model`` — a model whose p95 latency is more than twice the median p95 of the other
  models (at least one other model must qualify).
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .tracking.ledger import SCHEMA_VERSION, LedgerError, Since, UsageLedger, parse_since

__all__ = [
    "MIN_REQUESTS",
    "DeploymentStats",
    "ModelStats",
    "Period",
    "ProviderStats",
    "Recommendation",
    "Report",
    "Series",
    "TopModels",
    "Totals",
    "build_report",
    "percentile",
    "recommend",
]

MIN_REQUESTS = 20
"""No recommendation is made about a model or deployment with fewer attempts in the period."""
CHEAPER_BY = 0.40  # B's cost per success must be at least this fraction below A's
P95_TOLERANCE = 0.20  # ...with a p95 latency at most this fraction above A's
ERROR_TOLERANCE = 0.02  # ...and an error rate at most this many points (as a fraction) above
INPUT_RATIO = 1.5  # ...on traffic whose average input tokens differ by at most this factor
MAX_ERROR_RATE = 0.05  # a deployment above this error rate is flagged
SLOW_FACTOR = 2.0  # a model whose p95 exceeds this multiple of the others' median is flagged
TOP_N = 5
_HOUR = 3600
_DAY = 86400
_MAX_BUCKETS = 400  # longer series start at the first bucket holding data


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Frozen):
    """The window reported on, ``start <= ts < end``, and the time-series bucket size."""

    start: datetime
    end: datetime
    granularity: Literal["hour", "day"]
    bucket_seconds: int


class Totals(_Frozen):
    """Everything in the period. Latencies are seconds, ``None`` when there were no attempts.

    ``cache_hit_rate`` is the share of attempts answered from the response cache;
    ``prompt_cache_rate`` the share of input tokens read from a provider's prompt cache.
    """

    requests: int
    successes: int
    errors: int
    error_rate: float
    cost: Decimal
    input_tokens: int
    output_tokens: int
    avg_latency: float | None
    p95_latency: float | None
    cache_hit_rate: float
    prompt_cache_rate: float
    users: int


class ModelStats(_Frozen):
    """One model over the period. ``cost_share`` is its part of the period's cost (0..1)."""

    model: str
    providers: list[str]
    requests: int
    successes: int
    errors: int
    error_rate: float
    cost: Decimal
    cost_share: float
    cost_per_success: Decimal | None
    input_tokens: int
    output_tokens: int
    avg_input_tokens: float
    p50_latency: float
    p95_latency: float
    request_share: float


class ProviderStats(_Frozen):
    """One provider over the period."""

    provider: str
    requests: int
    errors: int
    cost: Decimal
    cost_share: float


class DeploymentStats(_Frozen):
    """One deployment (with the model and provider it served) over the period."""

    deployment: str
    model: str
    provider: str
    requests: int
    errors: int
    error_rate: float
    cost: Decimal
    p50_latency: float
    p95_latency: float
    p99_latency: float


class TopModels(_Frozen):
    """Model names, busiest (``by_requests``) and most expensive (``by_cost``) first."""

    by_requests: list[str]
    by_cost: list[str]


class Series(_Frozen):
    """Chart data, one value per bucket of ``starts`` (UTC bucket starts, oldest first).

    ``error_rate`` is ``None`` for a bucket without attempts; ``model_share`` is each model's
    share of the period's attempts.
    """

    starts: list[datetime]
    cost_by_model: dict[str, list[Decimal]]
    requests_by_model: dict[str, list[int]]
    error_rate: list[float | None]
    model_share: dict[str, float]


class Recommendation(_Frozen):
    """One suggestion: what kind, about what, why (``evidence`` holds the compared figures)."""

    kind: Literal["cheaper_model", "high_error_rate", "slow_model"]
    severity: Literal["info", "warning"]
    subject: str
    alternative: str | None = None
    message: str
    evidence: dict[str, float]


class Report(_Frozen):
    """A usage report: see :func:`build_report`."""

    generated_at: datetime
    ledger: str
    period: Period
    totals: Totals
    top_models: TopModels
    models: list[ModelStats]
    providers: list[ProviderStats]
    deployments: list[DeploymentStats]
    series: Series
    recommendations: list[Recommendation]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ascending ``sorted_values`` (``0.0`` when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


@dataclass
class _Acc:
    """Running sums for one group of rows."""

    requests: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    latencies: list[float] = field(default_factory=list)
    providers: set[str] = field(default_factory=set)

    def add(self, ok: int, cost: Decimal | None, tin: int, tout: int, latency: float) -> None:
        self.requests += 1
        self.errors += 1 - ok
        if cost is not None:
            self.cost += cost
        self.input_tokens += tin
        self.output_tokens += tout
        self.latencies.append(latency)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _rate(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _rows(path: str, start: float, end: float) -> tuple[list[Any], int]:
    """The period's rows and distinct users, read in one read-only transaction."""
    if not Path(path).is_file():
        raise LedgerError(f"no usage ledger at {path}")
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as conn:
            conn.execute("BEGIN")
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is not None and int(version[0]) > SCHEMA_VERSION:
                raise LedgerError(
                    f"{path} has ledger schema {version[0]}, newer than this library's "
                    f"{SCHEMA_VERSION}; upgrade multimodel to read it"
                )
            where = "FROM usage WHERE ts >= ? AND ts < ?"
            rows = conn.execute(
                "SELECT ts, deployment, model, provider, ok, cost, latency, cached, input_tokens,"
                f" output_tokens, cache_read_tokens {where} ORDER BY ts",  # noqa: S608 - fixed
                (start, end),
            ).fetchall()
            (users,) = conn.execute(f"SELECT COUNT(DISTINCT user) {where}", (start, end)).fetchone()  # noqa: S608
            conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot read {path} as a usage ledger: {exc}") from exc
    return rows, int(users)


def build_report(ledger: UsageLedger, *, since: Since = "24h", now: float | None = None) -> Report:
    """Report on the ledger's attempts with ``since <= ts < now``.

    Args:
        ledger: the ledger whose file is read (read-only; call ``ledger.flush()`` first to
            include your own latest records).
        since: the window start, anything :func:`~multimodel.tracking.ledger.parse_since`
            reads: ``"24h"``, ``"7d"``, a timedelta, a datetime, epoch seconds.
        now: the window end and reference for relative ``since`` (epoch seconds; default now).

    Time series use hourly buckets for windows up to 2 days and daily buckets beyond, aligned
    to UTC hours/days.

    Raises:
        LedgerError: the file is missing, is not a usage ledger, or has a newer schema.
        ValueError, TypeError: an unreadable ``since``.
    """
    end = time.time() if now is None else float(now)
    start = min(parse_since(since, now=end), end)
    size = _HOUR if end - start <= 2 * _DAY else _DAY
    rows, users = _rows(ledger.path, start, end)

    total = _Acc()
    cached = cache_read = 0
    by_model: dict[str, _Acc] = defaultdict(_Acc)
    by_provider: dict[str, _Acc] = defaultdict(_Acc)
    by_deployment: dict[tuple[str, str, str], _Acc] = defaultdict(_Acc)
    bucket_cost: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    bucket_requests: dict[tuple[int, str], int] = defaultdict(int)
    bucket_totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # [attempts, errors]
    for ts, dep, model, provider, ok, cost_text, lat, hit, tin, tout, read in rows:
        cost = Decimal(cost_text) if cost_text is not None else None
        args = (ok, cost, tin, tout, lat)
        for acc in (total, by_model[model], by_provider[provider]):
            acc.add(*args)
        by_deployment[(dep, model, provider)].add(*args)
        by_model[model].providers.add(provider)
        cached += hit
        cache_read += read
        bucket = int(ts // size)
        bucket_requests[(bucket, model)] += 1
        bucket_totals[bucket][0] += 1
        bucket_totals[bucket][1] += 1 - ok
        if cost is not None:
            bucket_cost[(bucket, model)] += cost

    latencies = sorted(total.latencies)
    totals = Totals(
        requests=total.requests,
        successes=total.requests - total.errors,
        errors=total.errors,
        error_rate=_rate(total.errors, total.requests),
        cost=total.cost,
        input_tokens=total.input_tokens,
        output_tokens=total.output_tokens,
        avg_latency=statistics.fmean(latencies) if latencies else None,
        p95_latency=percentile(latencies, 0.95) if latencies else None,
        cache_hit_rate=_rate(cached, total.requests),
        prompt_cache_rate=_rate(cache_read, total.input_tokens),
        users=users,
    )
    models = sorted(
        (_model_stats(name, acc, total) for name, acc in by_model.items()),
        key=lambda m: (-m.cost, -m.requests, m.model),
    )
    providers = [
        ProviderStats(
            provider=name,
            requests=acc.requests,
            errors=acc.errors,
            cost=acc.cost,
            cost_share=_rate(float(acc.cost), float(total.cost)),
        )
        for name, acc in sorted(by_provider.items(), key=lambda kv: (-kv[1].cost, kv[0]))
    ]
    deployments = [
        _deployment_stats(key, acc)
        for key, acc in sorted(by_deployment.items(), key=lambda kv: (-kv[1].requests, kv[0]))
    ]
    by_requests = sorted(models, key=lambda m: (-m.requests, m.model))
    top = TopModels(
        by_requests=[m.model for m in by_requests[:TOP_N]],
        by_cost=[m.model for m in models[:TOP_N] if m.cost > 0],
    )
    first = int(start // size)
    last = int(max(start, end - 1e-9) // size)
    if last - first >= _MAX_BUCKETS and rows:
        first = max(first, int(rows[0][0] // size))
    buckets = range(first, last + 1)
    names = [m.model for m in by_requests]
    series = Series(
        starts=[_utc(b * size) for b in buckets],
        cost_by_model={n: [bucket_cost.get((b, n), Decimal(0)) for b in buckets] for n in names},
        requests_by_model={n: [bucket_requests.get((b, n), 0) for b in buckets] for n in names},
        error_rate=[
            _rate(bucket_totals[b][1], bucket_totals[b][0]) if b in bucket_totals else None
            for b in buckets
        ],
        model_share={m.model: m.request_share for m in by_requests},
    )
    return Report(
        generated_at=_utc(time.time()),
        ledger=ledger.path,
        period=Period(
            start=_utc(start),
            end=_utc(end),
            granularity="hour" if size == _HOUR else "day",
            bucket_seconds=size,
        ),
        totals=totals,
        top_models=top,
        models=models,
        providers=providers,
        deployments=deployments,
        series=series,
        recommendations=recommend(models, deployments),
    )


def _model_stats(name: str, acc: _Acc, total: _Acc) -> ModelStats:
    latencies = sorted(acc.latencies)
    successes = acc.requests - acc.errors
    return ModelStats(
        model=name,
        providers=sorted(acc.providers),
        requests=acc.requests,
        successes=successes,
        errors=acc.errors,
        error_rate=_rate(acc.errors, acc.requests),
        cost=acc.cost,
        cost_share=_rate(float(acc.cost), float(total.cost)),
        cost_per_success=acc.cost / successes if successes else None,
        input_tokens=acc.input_tokens,
        output_tokens=acc.output_tokens,
        avg_input_tokens=_rate(acc.input_tokens, acc.requests),
        p50_latency=percentile(latencies, 0.50),
        p95_latency=percentile(latencies, 0.95),
        request_share=_rate(acc.requests, total.requests),
    )


def _deployment_stats(key: tuple[str, str, str], acc: _Acc) -> DeploymentStats:
    latencies = sorted(acc.latencies)
    return DeploymentStats(
        deployment=key[0],
        model=key[1],
        provider=key[2],
        requests=acc.requests,
        errors=acc.errors,
        error_rate=_rate(acc.errors, acc.requests),
        cost=acc.cost,
        p50_latency=percentile(latencies, 0.50),
        p95_latency=percentile(latencies, 0.95),
        p99_latency=percentile(latencies, 0.99),
    )


def _same_traffic(a: ModelStats, b: ModelStats) -> bool:
    low, high = sorted((a.avg_input_tokens, b.avg_input_tokens))
    return high <= low * INPUT_RATIO if low > 0 else high == low


def _cheaper(a: ModelStats, b: ModelStats) -> bool:
    """Whether ``b`` does ``a``'s job at least :data:`CHEAPER_BY` cheaper, about as well."""
    if a.cost_per_success is None or b.cost_per_success is None or a.cost_per_success <= 0:
        return False
    return (
        float(b.cost_per_success) <= (1 - CHEAPER_BY) * float(a.cost_per_success)
        and b.p95_latency <= (1 + P95_TOLERANCE) * a.p95_latency
        and b.error_rate <= a.error_rate + ERROR_TOLERANCE
        and _same_traffic(a, b)
    )


def recommend(
    models: Sequence[ModelStats], deployments: Sequence[DeploymentStats]
) -> list[Recommendation]:
    """Apply the module's recommendation rules; subjects under :data:`MIN_REQUESTS` are skipped."""
    out: list[Recommendation] = []
    eligible = [m for m in models if m.requests >= MIN_REQUESTS]
    for a in eligible:
        options = [b for b in eligible if b is not a and _cheaper(a, b)]
        if not options:
            continue
        b = min(options, key=lambda m: (m.cost_per_success or Decimal(0), m.model))
        assert a.cost_per_success is not None and b.cost_per_success is not None
        saving = 1 - float(b.cost_per_success / a.cost_per_success)
        out.append(
            Recommendation(
                kind="cheaper_model",
                severity="info",
                subject=a.model,
                alternative=b.model,
                message=(
                    f"{b.model} served similar requests at {saving:.0%} lower cost per "
                    f"successful request than {a.model} (${b.cost_per_success:.6f} vs "
                    f"${a.cost_per_success:.6f}) with p95 latency {b.p95_latency:.2f}s vs "
                    f"{a.p95_latency:.2f}s and error rate {b.error_rate:.1%} vs "
                    f"{a.error_rate:.1%}: consider routing more traffic to {b.model}"
                ),
                evidence={
                    "saving": saving,
                    "cost_per_success": float(a.cost_per_success),
                    "alternative_cost_per_success": float(b.cost_per_success),
                    "p95_latency": a.p95_latency,
                    "alternative_p95_latency": b.p95_latency,
                    "error_rate": a.error_rate,
                    "alternative_error_rate": b.error_rate,
                },
            )
        )
    for d in deployments:
        if d.requests >= MIN_REQUESTS and d.error_rate > MAX_ERROR_RATE:
            out.append(
                Recommendation(
                    kind="high_error_rate",
                    severity="warning",
                    subject=d.deployment,
                    message=(
                        f"deployment {d.deployment} ({d.model}) failed {d.error_rate:.1%} of "
                        f"{d.requests} attempts (threshold {MAX_ERROR_RATE:.0%}): check its "
                        "provider status, quota and credentials, or lower its weight"
                    ),
                    evidence={"error_rate": d.error_rate, "requests": float(d.requests)},
                )
            )
    for m in eligible:
        others = [o.p95_latency for o in eligible if o is not m]
        if not others:
            continue
        median = statistics.median(others)
        if median > 0 and m.p95_latency > SLOW_FACTOR * median:
            out.append(
                Recommendation(
                    kind="slow_model",
                    severity="warning",
                    subject=m.model,
                    message=(
                        f"{m.model} has p95 latency {m.p95_latency:.2f}s, "
                        f"{m.p95_latency / median:.1f}x the median of the other models "
                        f"({median:.2f}s): route latency-sensitive traffic elsewhere"
                    ),
                    evidence={"p95_latency": m.p95_latency, "others_median_p95": median},
                )
            )
    return out
