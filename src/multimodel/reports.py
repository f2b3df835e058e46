"""Usage reports: what the ledger says about a period, and what to do about it.

:func:`build_report` reads a :class:`~multimodel.tracking.ledger.UsageLedger` file and returns a
:class:`Report` (frozen pydantic models, so ``report.model_dump_json()`` is the JSON form):
totals, top models, cost by model and provider, latency percentiles and error rate per
deployment, time series for charts, and a short list of :class:`Recommendation`.

Each ledger row is one *attempt* (a retried call writes several), so ``requests`` counts
attempts, as the ledger's queries do. Percentiles are nearest-rank (rank ``ceil(q * n)``, the
ledger's definition) over every attempt's latency. ``cost_per_success`` divides the exact cost by
successful attempts: failures are usually unpriced and would flatter an unreliable model.

Unknown prices stay unknown, as in ``client.stats()`` and the ledger's queries: an attempt that
reports tokens (or an abandoned hedge) without a cost was billed at a price nobody knows. Every
row counts those in ``unpriced_requests`` and sums the known costs in ``known_cost``; ``cost``
(the total) and ``cost_per_success`` are ``None`` while anything is unknown. Rankings, shares
and the cost series use the known costs; a model with unpriced attempts is never recommended as
cheaper, nor compared against.

The report reads the file through one read-only connection in one transaction: every figure
comes from the same snapshot, and the window is bounded on both sides (``since <= ts < now``),
which the ledger's helpers (one connection each, unbounded above) cannot promise. It writes
nothing and creates no schema.

Recommendation rules (each subject needs at least :data:`MIN_REQUESTS` attempts in the period):
``cheaper_model``: model B's cost per successful request is at least 40 % below model A's, with
p95 latency at most 20 % above A's, error rate at most 2 points above A's, on the same kind of
traffic — average input tokens per attempt within a factor of 1.5 (prompts are the caller's, so
prompt size is the provider-agnostic proxy for "the same requests"); one per A, naming the
cheapest B. ``high_error_rate``: a deployment failing more than 5 % of attempts. ``slow_model``:
a model whose p95 latency exceeds twice the median p95 of the other qualifying models.
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

from pydantic import BaseModel, ConfigDict, Field

from .tracking.ledger import SCHEMA_VERSION, LedgerError, Since, UsageLedger, parse_since
from .tracking.outcome import ABANDONED

__all__ = [
    "MIN_REQUESTS",
    "DeploymentStats",
    "GroupStats",
    "ModelStats",
    "Period",
    "ProviderStats",
    "QualityRow",
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


class GroupStats(_Frozen):
    """What every breakdown row has: attempts, failures, exact cost, tokens, and latency
    percentiles (seconds, ``0.0`` without attempts). ``cost`` and ``cost_per_success`` are
    ``None`` when ``unpriced_requests`` is not 0; ``known_cost`` sums the known costs, and
    ``cost_share`` is the row's part of the period's known cost (0..1)."""

    requests: int
    successes: int
    errors: int
    error_rate: float
    cost: Decimal | None
    known_cost: Decimal
    unpriced_requests: int
    cost_share: float
    cost_per_success: Decimal | None
    input_tokens: int
    output_tokens: int
    p50_latency: float
    p95_latency: float
    p99_latency: float


class Totals(GroupStats):
    """Everything in the period. ``avg_latency`` is ``None`` when there were no attempts.

    ``cache_hit_rate`` is the share of attempts answered from the response cache;
    ``prompt_cache_rate`` the share of input tokens read from a provider's prompt cache.
    """

    avg_latency: float | None
    cache_hit_rate: float
    prompt_cache_rate: float
    users: int


class ModelStats(GroupStats):
    """One model over the period; ``request_share`` is its part of the period's attempts."""

    model: str
    providers: list[str]
    avg_input_tokens: float
    request_share: float


class ProviderStats(GroupStats):
    """One provider over the period."""

    provider: str


class DeploymentStats(GroupStats):
    """One deployment (with the model and provider it served) over the period."""

    deployment: str
    model: str
    provider: str


class TopModels(_Frozen):
    """Model names, busiest (``by_requests``) and most expensive (``by_cost``, by known cost)
    first."""

    by_requests: list[str]
    by_cost: list[str]


class Series(_Frozen):
    """Chart data, one value per bucket of ``starts`` (UTC bucket starts, oldest first).

    ``cost_by_model`` holds known costs (a bucket's unpriced attempts add nothing);
    ``error_rate`` is ``None`` for a bucket without attempts; ``model_share`` is each model's
    share of the period's attempts.
    """

    starts: list[datetime]
    cost_by_model: dict[str, list[Decimal]]
    requests_by_model: dict[str, list[int]]
    error_rate: list[float | None]
    model_share: dict[str, float]


class Recommendation(_Frozen):
    """One suggestion: what kind, about what, why; ``evidence`` holds the compared figures."""

    kind: Literal["cheaper_model", "high_error_rate", "slow_model"]
    severity: Literal["info", "warning"]
    subject: str
    alternative: str | None = None
    message: str
    evidence: dict[str, float]


class QualityRow(_Frozen):
    """Feedback scores of one (model, task) in the period: how many, and their average
    (``client.feedback``; the router's estimates also weigh the catalog prior and forgetting)."""

    model: str
    task: str
    scores: int
    mean_score: float


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
    quality: list[QualityRow] = Field(default_factory=list)
    """Feedback per (model, task) in the period, most scored first (empty without feedback)."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ascending ``sorted_values`` (``0.0`` when empty)."""
    n = len(sorted_values)
    return float(sorted_values[min(n, max(1, math.ceil(q * n))) - 1]) if n else 0.0


@dataclass
class _Acc:
    """Running sums for one group of rows."""

    requests: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)  # the known costs
    unpriced: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(
        self, ok: int, cost: Decimal | None, tin: int, tout: int, latency: float, unpriced: bool
    ) -> None:
        self.requests += 1
        self.errors += 1 - ok
        if cost is not None:
            self.cost += cost
        self.unpriced += unpriced
        self.input_tokens += tin
        self.output_tokens += tout
        self.latencies.append(latency)

    def stats(self, period_cost: Decimal) -> dict[str, Any]:
        """The :class:`GroupStats` fields."""
        latencies = sorted(self.latencies)
        successes = self.requests - self.errors
        known = not self.unpriced
        return {
            "requests": self.requests,
            "successes": successes,
            "errors": self.errors,
            "error_rate": _rate(self.errors, self.requests),
            "cost": self.cost if known else None,
            "known_cost": self.cost,
            "unpriced_requests": self.unpriced,
            "cost_share": _rate(float(self.cost), float(period_cost)),
            "cost_per_success": self.cost / successes if successes and known else None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "p50_latency": percentile(latencies, 0.50),
            "p95_latency": percentile(latencies, 0.95),
            "p99_latency": percentile(latencies, 0.99),
        }


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _rate(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _rows(path: str, start: float, end: float) -> list[Any]:
    """The period's rows, read in one read-only transaction."""
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
            rows = conn.execute(
                "SELECT ts, deployment, model, provider, ok, cost, latency, cached, input_tokens,"
                " output_tokens, cache_read_tokens, user, error FROM usage"
                " WHERE ts >= ? AND ts < ? ORDER BY ts",
                (start, end),
            ).fetchall()
            conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot read {path} as a usage ledger: {exc}") from exc
    return rows


def _quality_rows(path: str, start: float, end: float) -> list[QualityRow]:
    """Feedback per (model, task) in the period (none for files older than schema 3)."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as conn:
            found = conn.execute(
                "SELECT model, task, COUNT(*), AVG(score) FROM feedback"
                " WHERE ts >= ? AND ts < ? GROUP BY model, task ORDER BY COUNT(*) DESC, model, task",
                (start, end),
            ).fetchall()
    except sqlite3.DatabaseError:  # no feedback table: a file from before schema 3
        return []
    return [QualityRow(model=m, task=t, scores=n, mean_score=float(a)) for m, t, n, a in found]


def build_report(ledger: UsageLedger, *, since: Since = "24h", now: float | None = None) -> Report:
    """Report on the ledger's attempts with ``since <= ts < now``; series buckets are UTC hours
    for windows up to 2 days, UTC days beyond.

    Args:
        ledger: the ledger whose file is read (read-only; call ``ledger.flush()`` first to
            include your own latest records).
        since: the window start, anything :func:`~multimodel.tracking.ledger.parse_since`
            reads: ``"24h"``, ``"7d"``, a timedelta, a datetime, epoch seconds.
        now: the window end and reference for relative ``since`` (epoch seconds; default now).

    Raises:
        LedgerError: the file is missing, is not a usage ledger, or has a newer schema.
        ValueError, TypeError: an unreadable ``since``.
    """
    end = time.time() if now is None else float(now)
    start = min(parse_since(since, now=end), end)
    granularity: Literal["hour", "day"] = "hour" if end - start <= 2 * _DAY else "day"
    size = _HOUR if granularity == "hour" else _DAY
    rows = _rows(ledger.path, start, end)

    total = _Acc()
    cached = cache_read = 0
    by_model: dict[str, _Acc] = defaultdict(_Acc)
    by_provider: dict[str, _Acc] = defaultdict(_Acc)
    by_deployment: dict[tuple[str, str, str], _Acc] = defaultdict(_Acc)
    by_bucket: dict[tuple[int, str], _Acc] = defaultdict(_Acc)  # (bucket number, model)
    users: set[str] = set()
    for ts, dep, model, provider, ok, cost_text, lat, hit, tin, tout, read, user, err in rows:
        cost = Decimal(cost_text) if cost_text is not None else None
        # The ledger's rule (UNPRICED_SQL): tokens, or an abandoned hedge, without a cost.
        unpriced = cost is None and (tin + tout > 0 or err == ABANDONED)
        args = (ok, cost, tin, tout, lat, unpriced)
        bucket = int(ts // size)
        for acc in (total, by_model[model], by_provider[provider], by_bucket[(bucket, model)]):
            acc.add(*args)
        by_deployment[(dep, model, provider)].add(*args)
        cached += hit
        cache_read += read
        if user is not None:
            users.add(user)

    totals = Totals(
        avg_latency=statistics.fmean(total.latencies) if total.latencies else None,
        cache_hit_rate=_rate(cached, total.requests),
        prompt_cache_rate=_rate(cache_read, total.input_tokens),
        users=len(users),
        **total.stats(total.cost),
    )
    models = [
        ModelStats(
            model=name,
            providers=sorted({p for _, m, p in by_deployment if m == name}),
            avg_input_tokens=_rate(acc.input_tokens, acc.requests),
            request_share=_rate(acc.requests, total.requests),
            **acc.stats(total.cost),
        )
        for name, acc in by_model.items()
    ]
    models.sort(key=lambda m: (-m.known_cost, -m.requests, m.model))
    providers = [ProviderStats(provider=n, **a.stats(total.cost)) for n, a in by_provider.items()]
    providers.sort(key=lambda p: (-p.known_cost, -p.requests, p.provider))
    deployments = [
        DeploymentStats(deployment=key[0], model=key[1], provider=key[2], **acc.stats(total.cost))
        for key, acc in sorted(by_deployment.items(), key=lambda kv: (-kv[1].requests, kv[0]))
    ]
    by_requests = sorted(models, key=lambda m: (-m.requests, m.model))
    top = TopModels(
        by_requests=[m.model for m in by_requests[:5]],
        by_cost=[m.model for m in models[:5] if m.known_cost > 0],
    )
    first = int(start // size)
    last = max(first, math.ceil(end / size) - 1)
    if last - first >= _MAX_BUCKETS and rows:
        first = max(first, int(rows[0][0] // size))
    buckets = range(first, last + 1)
    grid = {m.model: [by_bucket[(b, m.model)] for b in buckets] for m in by_requests}
    per_bucket = [(sum(g[i].requests for g in grid.values()), sum(g[i].errors for g in grid.values()))
                  for i in range(len(buckets))]  # fmt: skip
    series = Series(
        starts=[_utc(b * size) for b in buckets],
        cost_by_model={name: [c.cost for c in cells] for name, cells in grid.items()},
        requests_by_model={name: [c.requests for c in cells] for name, cells in grid.items()},
        error_rate=[errs / n if n else None for n, errs in per_bucket],
        model_share={m.model: m.request_share for m in by_requests},
    )
    return Report(
        generated_at=_utc(time.time()),
        ledger=ledger.path,
        period=Period(
            start=_utc(start), end=_utc(end), granularity=granularity, bucket_seconds=size
        ),
        totals=totals,
        top_models=top,
        models=models,
        providers=providers,
        deployments=deployments,
        series=series,
        recommendations=recommend(models, deployments),
        quality=_quality_rows(ledger.path, start, end),
    )


def _cheaper(a: ModelStats, b: ModelStats) -> bool:
    """Whether ``b`` does ``a``'s job at least :data:`CHEAPER_BY` cheaper, about as well."""
    if a.cost_per_success is None or b.cost_per_success is None or a.cost_per_success <= 0:
        return False
    low, high = sorted((a.avg_input_tokens, b.avg_input_tokens))
    return (
        high <= low * INPUT_RATIO
        and b.p95_latency <= (1 + P95_TOLERANCE) * a.p95_latency
        and b.error_rate <= a.error_rate + ERROR_TOLERANCE
        and float(b.cost_per_success) <= (1 - CHEAPER_BY) * float(a.cost_per_success)
    )


def recommend(
    models: Sequence[ModelStats], deployments: Sequence[DeploymentStats]
) -> list[Recommendation]:
    """Apply the module's three rules; subjects under :data:`MIN_REQUESTS` attempts are skipped.

    Cheaper-model suggestions come first, then error-rate warnings, then slow models.
    """
    eligible = [m for m in models if m.requests >= MIN_REQUESTS]
    out = [r for a in eligible if (r := _cheaper_model(a, eligible)) is not None]
    out += [
        Recommendation(
            kind="high_error_rate",
            severity="warning",
            subject=d.deployment,
            message=f"deployment {d.deployment} ({d.model}) failed {d.error_rate:.1%} of "
            f"{d.requests} attempts (threshold {MAX_ERROR_RATE:.0%}): check the provider's "
            "status, quota and credentials, or lower its weight",
            evidence={"error_rate": d.error_rate, "requests": float(d.requests)},
        )
        for d in deployments
        if d.requests >= MIN_REQUESTS and d.error_rate > MAX_ERROR_RATE
    ]
    for m in eligible:
        others = [o.p95_latency for o in eligible if o is not m]
        median = statistics.median(others) if others else 0.0
        if median > 0 and m.p95_latency > SLOW_FACTOR * median:
            out.append(
                Recommendation(
                    kind="slow_model",
                    severity="warning",
                    subject=m.model,
                    message=f"{m.model} has p95 latency {m.p95_latency:.2f}s, "
                    f"{m.p95_latency / median:.1f}x the median of the other models "
                    f"({median:.2f}s): route latency-sensitive traffic elsewhere",
                    evidence={"p95_latency": m.p95_latency, "others_median_p95": median},
                )
            )
    return out


def _cheaper_model(a: ModelStats, eligible: Sequence[ModelStats]) -> Recommendation | None:
    options = [b for b in eligible if b is not a and _cheaper(a, b)]
    if not options or a.cost_per_success is None:
        return None
    b = min(options, key=lambda m: (m.cost_per_success or Decimal(0), m.model))
    cost_a, cost_b = float(a.cost_per_success), float(b.cost_per_success or 0)
    saving = 1 - cost_b / cost_a
    return Recommendation(
        kind="cheaper_model",
        severity="info",
        subject=a.model,
        alternative=b.model,
        message=f"{b.model} served similar requests at {saving:.0%} lower cost per successful "
        f"request than {a.model} (${cost_b:.6f} vs ${cost_a:.6f}), p95 latency "
        f"{b.p95_latency:.2f}s vs {a.p95_latency:.2f}s, error rate {b.error_rate:.1%} vs "
        f"{a.error_rate:.1%}: consider routing more traffic to {b.model}",
        evidence={
            "saving": saving,
            "cost_per_success": cost_a,
            "alternative_cost_per_success": cost_b,
            "p95_latency": a.p95_latency,
            "alternative_p95_latency": b.p95_latency,
            "error_rate": a.error_rate,
            "alternative_error_rate": b.error_rate,
        },
    )
