"""Usage reports over a real SQLite ledger: totals, percentiles, breakdowns, series, rules."""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from multimodel.reports import (
    MIN_REQUESTS,
    DeploymentStats,
    ModelStats,
    Report,
    build_report,
    percentile,
    recommend,
)
from multimodel.tracking.ledger import LedgerError, UsageLedger
from multimodel.tracking.outcome import Outcome
from multimodel.types import Usage

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0


def outcome(**kw: Any) -> Outcome:
    fields: dict[str, Any] = {
        "deployment": "oa-big",
        "model": "big",
        "provider": "openai",
        "ok": True,
        "latency": 1.0,
        "started_at": NOW - 60,
        "usage": Usage(input_tokens=1000, output_tokens=100),
        "cost": Decimal("0.010"),
    }
    fields.update(kw)
    if not fields["ok"]:
        fields.setdefault("error", "ServerError")
    return Outcome(**fields)


def seed(path: Path, outcomes: list[Outcome]) -> UsageLedger:
    ledger = UsageLedger(path, flush_interval=0.05)
    for o in outcomes:
        ledger.record(o)
    assert ledger.flush(10)
    ledger.close()
    return ledger


def fleet() -> list[Outcome]:
    """Five hours of traffic (02:00-11:59 UTC on 2024-03-10) over four models.

    * big (openai): oa-big 40 ok + oa-big-2 20 with 2 errors; $0.010 each, latency 0.50-0.99 s.
    * small (anthropic): an-small 40 ok at $0.004 (60 % cheaper), the same latencies and prompts.
    * slow (gemini): gm-slow 30 ok at $0.020, 5 s, bigger prompts (5000 tokens).
    * tiny (openai): 19 ok, nearly free and fast, but below the 20-request floor.
    """
    out = []
    for i in range(40):
        ts = NOW - HOUR * (i % 5) - 60 - i
        lat = 0.5 + i / 80
        out.append(outcome(started_at=ts, latency=lat, user=f"u{i % 3}"))
        out.append(outcome(deployment="an-small", model="small", provider="anthropic",
                           started_at=ts, latency=lat, cost=Decimal("0.004")))  # fmt: skip
    for i in range(20):
        ok = i >= 2
        out.append(outcome(deployment="oa-big-2", started_at=NOW - 2 * HOUR - 30 - i, ok=ok,
                           latency=0.5 + i / 40, cost=Decimal("0.010") if ok else None,
                           usage=Usage(input_tokens=1000, output_tokens=100) if ok else None))  # fmt: skip
    for i in range(30):
        out.append(outcome(deployment="gm-slow", model="slow", provider="gemini", latency=5.0,
                           started_at=NOW - HOUR * (i % 3) - 120, cost=Decimal("0.020"),
                           usage=Usage(input_tokens=5000, output_tokens=100,
                                       cache_read_tokens=1000)))  # fmt: skip
    for i in range(19):
        out.append(outcome(deployment="tiny-1", model="tiny", started_at=NOW - 300 - i,
                           latency=0.1, cost=Decimal("0.0001"), cached=i < 2))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> UsageLedger:
    return seed(tmp_path_factory.mktemp("ledger") / "usage.sqlite3", fleet())


@pytest.fixture(scope="module")
def report(ledger: UsageLedger) -> Report:
    return build_report(ledger, since="24h", now=NOW)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.95) == 0.0
    assert percentile([1.0, 2.0], 0.0) == 1.0


def test_totals(report: Report, ledger: UsageLedger) -> None:
    t = report.totals
    assert t.requests == 40 + 40 + 20 + 30 + 19 == 149
    assert (t.errors, t.successes) == (2, 147)
    assert t.error_rate == pytest.approx(2 / 149)
    assert t.cost == Decimal("0.400") + Decimal("0.160") + Decimal("0.180") + Decimal(
        "0.600"
    ) + Decimal("0.0019")
    assert t.input_tokens == 40_000 + 40_000 + 18_000 + 150_000 + 19_000
    assert t.cache_hit_rate == pytest.approx(2 / 149)
    assert t.prompt_cache_rate == pytest.approx(30_000 / t.input_tokens)
    assert t.users == 3
    latencies = sorted(o.latency for o in fleet())
    assert t.p95_latency == latencies[math.ceil(0.95 * 149) - 1] == 5.0
    assert t.avg_latency == pytest.approx(sum(latencies) / 149)
    # The ledger's own helpers agree (no rows after NOW in this ledger).
    same = ledger.totals("24h", now=NOW)
    assert (same.requests, same.errors, same.cost) == (t.requests, t.errors, t.cost)
    assert (same.input_tokens, same.output_tokens) == (t.input_tokens, t.output_tokens)
    assert same.avg_latency == pytest.approx(t.avg_latency)
    (day,) = ledger.daily_series("24h", now=NOW)
    assert day.p95_latency == t.p95_latency


def test_breakdowns(report: Report, ledger: UsageLedger) -> None:
    models = {m.model: m for m in report.models}
    assert [m.model for m in report.models] == ["slow", "big", "small", "tiny"]  # by cost
    big = models["big"]
    assert (big.requests, big.errors, big.successes) == (60, 2, 58)
    assert big.cost == Decimal("0.580")
    assert big.cost_per_success == Decimal("0.01")
    assert big.providers == ["openai"]
    assert big.avg_input_tokens == pytest.approx(58_000 / 60)
    assert big.request_share == pytest.approx(60 / 149)
    assert sum(m.cost_share for m in report.models) == pytest.approx(1.0)
    for row in ledger.cost_by_model("24h", now=NOW):  # the ledger's helper agrees
        assert (row.requests, row.cost) == (models[row.model].requests, models[row.model].cost)
    assert report.top_models.by_requests == ["big", "small", "slow", "tiny"]
    assert report.top_models.by_cost == ["slow", "big", "small", "tiny"]

    providers = {p.provider: p for p in report.providers}
    assert providers["openai"].requests == 60 + 19
    assert providers["openai"].cost == Decimal("0.5819")
    assert report.totals.cost is not None
    assert providers["gemini"].cost_share == pytest.approx(0.6 / float(report.totals.cost))

    deployments = {d.deployment: d for d in report.deployments}
    flaky = deployments["oa-big-2"]
    assert (flaky.model, flaky.provider, flaky.requests, flaky.errors) == ("big", "openai", 20, 2)
    assert flaky.error_rate == pytest.approx(0.10)
    lat = sorted(0.5 + i / 40 for i in range(20))
    assert flaky.p50_latency == lat[9]
    assert flaky.p95_latency == lat[18]
    assert flaky.p99_latency == lat[19]
    assert deployments["gm-slow"].p99_latency == 5.0


def test_hourly_series(report: Report) -> None:
    s = report.series
    assert report.period.granularity == "hour"
    assert report.period.bucket_seconds == 3600
    assert len(s.starts) == 24
    assert s.starts[0] == datetime(2024, 3, 9, 12, tzinfo=timezone.utc)
    assert s.starts[-1] == datetime(2024, 3, 10, 11, tzinfo=timezone.utc)
    assert set(s.cost_by_model) == {"big", "small", "slow", "tiny"}
    for m in report.models:
        assert sum(s.cost_by_model[m.model], Decimal(0)) == m.cost
        assert sum(s.requests_by_model[m.model]) == m.requests
    # 11:00 holds big/small (8 each), slow (10) and tiny (19); oa-big-2 sits in 09:00.
    assert s.requests_by_model["tiny"][-1] == 19
    assert s.cost_by_model["slow"][-1] == Decimal("0.200")
    assert s.error_rate[0] is None  # no traffic yesterday
    assert s.error_rate[-1] == 0.0
    nine = s.starts.index(datetime(2024, 3, 10, 9, tzinfo=timezone.utc))
    assert s.error_rate[nine] == pytest.approx(2 / (8 + 8 + 20 + 10))
    assert s.model_share == {m.model: m.request_share for m in report.models} | {}
    assert sum(s.model_share.values()) == pytest.approx(1.0)


def test_daily_series_beyond_two_days(ledger: UsageLedger) -> None:
    assert build_report(ledger, since="48h", now=NOW).period.granularity == "hour"
    week = build_report(ledger, since="7d", now=NOW)
    assert (week.period.granularity, week.period.bucket_seconds) == ("day", 86400)
    assert len(week.series.starts) == 8
    assert week.series.starts[-1] == datetime(2024, 3, 10, tzinfo=timezone.utc)
    assert week.series.requests_by_model["big"][-1] == 60
    assert week.totals.requests == 149


def test_window_is_bounded_both_sides(tmp_path: Path) -> None:
    ledger = seed(tmp_path / "u.sqlite3", [
        outcome(started_at=NOW - 25 * HOUR), outcome(started_at=NOW - HOUR),
        outcome(started_at=NOW + 60),
    ])  # fmt: skip
    report = build_report(ledger, since="24h", now=NOW)
    assert report.totals.requests == 1
    assert report.period.start == datetime(2024, 3, 9, 12, tzinfo=timezone.utc)


def test_empty_window(ledger: UsageLedger) -> None:
    report = build_report(ledger, since="1h", now=NOW - 30 * HOUR)
    t = report.totals
    assert (t.requests, t.cost, t.avg_latency, t.error_rate) == (0, Decimal(0), None, 0.0)
    assert report.models == [] and report.deployments == [] and report.recommendations == []
    assert report.series.error_rate == [None]
    assert report.series.cost_by_model == {}


def test_json_round_trip(report: Report) -> None:
    data = json.loads(report.model_dump_json())
    assert data["totals"]["cost"] == str(report.totals.cost)
    assert Report.model_validate_json(report.model_dump_json()) == report


def test_bad_files_raise_ledger_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no usage ledger"):
        build_report(UsageLedger(tmp_path / "missing.sqlite3"))
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database, just text " * 100)
    with pytest.raises(LedgerError, match="cannot read"):
        build_report(UsageLedger(junk))
    other = tmp_path / "other.sqlite3"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(LedgerError, match="cannot read"):
        build_report(UsageLedger(other))
    with pytest.raises(ValueError, match="cannot read"):
        build_report(UsageLedger(other), since="yesterday")


def test_report_does_not_write(ledger: UsageLedger) -> None:
    path = Path(ledger.path)
    before = path.read_bytes()
    build_report(ledger, since="24h", now=NOW)
    assert path.read_bytes() == before


# -- recommendation rules ------------------------------------------------------------------


def test_seeded_fleet_recommendations(report: Report) -> None:
    recs = {(r.kind, r.subject): r for r in report.recommendations}
    assert set(recs) == {
        ("cheaper_model", "big"),
        ("high_error_rate", "oa-big-2"),
        ("slow_model", "slow"),
    }
    cheaper = recs[("cheaper_model", "big")]
    assert cheaper.alternative == "small"  # tiny is cheaper still but has only 19 requests
    assert cheaper.evidence["saving"] == pytest.approx(0.6)
    assert "60% lower cost" in cheaper.message
    assert recs[("slow_model", "slow")].evidence["p95_latency"] == 5.0
    assert [r.kind for r in report.recommendations] == [
        "cheaper_model",
        "high_error_rate",
        "slow_model",
    ]


def model(name: str, **kw: Any) -> ModelStats:
    fields: dict[str, Any] = {
        "model": name, "providers": ["p"], "requests": 100, "successes": 100, "errors": 0,
        "error_rate": 0.0, "cost": Decimal("1.0"), "known_cost": Decimal("1.0"),
        "unpriced_requests": 0, "cost_share": 0.5,
        "cost_per_success": Decimal("0.01"), "input_tokens": 100_000, "output_tokens": 0,
        "avg_input_tokens": 1000.0, "p50_latency": 0.5, "p95_latency": 1.0, "p99_latency": 1.2,
        "request_share": 0.5,
    }  # fmt: skip
    fields.update(kw)
    return ModelStats(**fields)


def deployment(name: str, **kw: Any) -> DeploymentStats:
    fields: dict[str, Any] = {
        "deployment": name, "model": "m", "provider": "p", "requests": 100, "successes": 100,
        "errors": 0, "error_rate": 0.0, "cost": Decimal(0), "known_cost": Decimal(0),
        "unpriced_requests": 0, "cost_share": 0.0,
        "cost_per_success": None, "input_tokens": 0, "output_tokens": 0, "p50_latency": 0.1,
        "p95_latency": 0.2, "p99_latency": 0.3,
    }  # fmt: skip
    fields.update(kw)
    return DeploymentStats(**fields)


def kinds(models: list[ModelStats], deployments: list[DeploymentStats] | None = None) -> set[str]:
    return {f"{r.kind}:{r.subject}" for r in recommend(models, deployments or [])}


@pytest.mark.parametrize(
    ("b", "fires"),
    [
        ({"cost_per_success": Decimal("0.006")}, True),  # exactly 40 % cheaper
        ({"cost_per_success": Decimal("0.0061")}, False),  # 39 % cheaper
        ({"cost_per_success": Decimal("0.005"), "p95_latency": 1.2}, True),  # +20 % p95
        ({"cost_per_success": Decimal("0.005"), "p95_latency": 1.21}, False),
        ({"cost_per_success": Decimal("0.005"), "p95_latency": 0.3}, True),  # faster is fine
        ({"cost_per_success": Decimal("0.005"), "error_rate": 0.02}, True),  # +2 points
        ({"cost_per_success": Decimal("0.005"), "error_rate": 0.021}, False),
        ({"cost_per_success": Decimal("0.005"), "avg_input_tokens": 1500.0}, True),
        ({"cost_per_success": Decimal("0.005"), "avg_input_tokens": 1501.0}, False),  # other work
        ({"cost_per_success": Decimal("0.005"), "avg_input_tokens": 600.0}, False),
        ({"cost_per_success": None}, False),  # no successes
        ({"cost_per_success": Decimal("0.005"), "requests": MIN_REQUESTS}, True),
        ({"cost_per_success": Decimal("0.005"), "requests": MIN_REQUESTS - 1}, False),
    ],
)
def test_cheaper_model_rule(b: dict[str, Any], fires: bool) -> None:
    assert ("cheaper_model:A" in kinds([model("A"), model("B", **b)])) is fires


def test_cheaper_model_guard_applies_to_the_subject_too() -> None:
    few = model("A", requests=MIN_REQUESTS - 1, cost_per_success=Decimal("0.1"))
    assert kinds([few, model("B")]) == set()


def test_cheaper_model_names_the_cheapest_alternative_once() -> None:
    recs = recommend(
        [
            model("A"),
            model("B", cost_per_success=Decimal("0.005")),
            model("C", cost_per_success=Decimal("0.002")),
        ],
        [],
    )
    cheaper = [r for r in recs if r.kind == "cheaper_model"]
    assert [(r.subject, r.alternative) for r in cheaper] == [("A", "C"), ("B", "C")]


@pytest.mark.parametrize(
    ("requests", "errors", "fires"),
    [(100, 5, False), (100, 6, True), (20, 2, True), (19, 10, False), (1000, 0, False)],
)
def test_high_error_rate_rule(requests: int, errors: int, fires: bool) -> None:
    d = deployment("d1", requests=requests, errors=errors, error_rate=errors / requests)
    assert ("high_error_rate:d1" in kinds([], [d])) is fires


@pytest.mark.parametrize(
    ("p95s", "slow"),
    [
        ([1.0, 1.0, 2.01], {"C"}),
        ([1.0, 1.0, 2.0], set()),  # exactly twice the median is not flagged
        ([1.0, 3.0, 2.1], set()),  # others' median for C is 2.0
        ([1.0, 2.5], {"B"}),  # one other model is enough
        ([5.0], set()),  # nothing to compare with
        ([0.0, 0.0, 1.0], set()),  # a zero median compares with nothing
    ],
)
def test_slow_model_rule(p95s: list[float], slow: set[str]) -> None:
    models = [model(name, p95_latency=p) for name, p in zip("ABC", p95s, strict=False)]
    found = {k.split(":")[1] for k in kinds(models) if k.startswith("slow_model")}
    assert found == slow


def test_slow_model_guard() -> None:
    few = model("C", p95_latency=10.0, requests=MIN_REQUESTS - 1)
    assert kinds([model("A"), model("B"), few]) == set()
    # ...and a model below the floor does not count among the "others" either.
    assert kinds([model("A", p95_latency=3.0), model("B", p95_latency=1.0, requests=5)]) == set()


def test_no_recommendations_below_the_floor_end_to_end(tmp_path: Path) -> None:
    """19 attempts per model and deployment: awful numbers, yet nothing is recommended."""
    outcomes = []
    for i in range(MIN_REQUESTS - 1):
        outcomes.append(outcome(started_at=NOW - 100 - i, ok=i % 2 == 0, latency=9.0))
        outcomes.append(outcome(deployment="cheap", model="cheap", started_at=NOW - 100 - i,
                                cost=Decimal("0.0001"), latency=0.1))  # fmt: skip
    report = build_report(seed(tmp_path / "u.sqlite3", outcomes), since="1h", now=NOW)
    assert report.totals.requests == 2 * (MIN_REQUESTS - 1)
    assert report.recommendations == []
