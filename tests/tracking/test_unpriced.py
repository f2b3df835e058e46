"""Unknown prices stay unknown in every aggregate: stats, the ledger's queries and reports.

A response from a model without a known price has ``cost=None``; the aggregates that include it
report ``cost=None`` too (never a silent ``Decimal('0')``), count it in ``unpriced_requests``
and keep the sum of the known costs in ``known_cost``.
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import multimodel as mm
from multimodel import ManualClock
from multimodel.reports import MIN_REQUESTS, build_report
from multimodel.testing.fake import FakeProvider, FakeReply
from multimodel.tracking import Outcome, Tracker
from multimodel.tracking.ledger import UsageLedger
from multimodel.tracking.outcome import ABANDONED, unpriced
from multimodel.tracking.stats import MAX_GROUPS, OTHER
from multimodel.types import Usage

KEY = "sk-test-unpriced-0123456789"
NOW = 1_710_000_000.0
USAGE = Usage(input_tokens=30, output_tokens=20)


def outcome(*, cost: str | None, usage: Usage | None = USAGE, **kw: Any) -> Outcome:
    fields: dict[str, Any] = {
        "deployment": "d", "model": "m", "provider": "p", "ok": True, "latency": 0.1,
        "started_at": NOW, "usage": usage, "cost": None if cost is None else Decimal(cost),
    }  # fmt: skip
    fields.update(kw)
    return Outcome(**fields)


@pytest.mark.parametrize(
    ("o", "expected"),
    [
        (outcome(cost="0.01"), False),
        (outcome(cost=None), True),  # tokens billed at a price nobody knows
        (outcome(cost=None, usage=None, ok=False, error="ServerError"), False),  # cost nothing
        (outcome(cost=None, usage=Usage(), ok=False, error="ServerError"), False),
        (outcome(cost="0", cached=True), False),  # a cache hit is free
        (outcome(cost=None, usage=None, ok=False, error=ABANDONED), True),  # prompt processed
        (outcome(cost="0.001", usage=None, ok=False, error=ABANDONED), False),
        (outcome(cost=None, ok=False, error="StreamInterrupted"), True),  # partial, billed
    ],
)
def test_what_is_unpriced(o: Outcome, expected: bool) -> None:
    assert unpriced(o) is expected


def test_tracker_keeps_unknown_unknown() -> None:
    tracker = Tracker(ManualClock().monotonic)
    tracker.register("priced", "m", "p")
    tracker.register("free", "m", "p")
    for name, cost in (("priced", "0.01"), ("priced", "0.02"), ("free", None), ("free", None)):
        tracker.started(name)
        tracker.record(outcome(cost=cost, deployment=name, user="u", tags=("t",)))
    tracker.record(outcome(cost=None, usage=None, deployment="priced", ok=False, error="X"))
    snap = tracker.snapshot()
    priced, free = snap.deployments["priced"], snap.deployments["free"]
    assert (priced.cost, priced.known_cost, priced.unpriced_requests) == (
        Decimal("0.03"), Decimal("0.03"), 0,
    )  # fmt: skip
    assert (free.cost, free.known_cost, free.unpriced_requests) == (None, Decimal(0), 2)
    for group in (snap.models["m"], snap.providers["p"], snap.users["u"], snap.tags["t"]):
        assert (group.cost, group.known_cost, group.unpriced_requests) == (None, Decimal("0.03"), 2)


def test_an_unpriced_abandoned_hedge_is_unknown_too() -> None:
    tracker = Tracker(ManualClock().monotonic)
    tracker.started("d")
    tracker.record(outcome(cost=None, usage=None, ok=False, error=ABANDONED))
    d = tracker.snapshot().deployments["d"]
    assert (d.cost, d.unpriced_requests, d.requests) == (None, 1, 0)


def test_folded_groups_keep_their_unpriced_count() -> None:
    tracker = Tracker(ManualClock().monotonic)
    tracker.record(outcome(cost=None, user="first"))
    for i in range(MAX_GROUPS):
        tracker.record(outcome(cost="0.001", user=f"u{i}"))
    other = tracker.snapshot().users[OTHER]
    assert other.unpriced_requests >= 1 and other.cost is None


def deployments() -> list[mm.Deployment]:
    return [
        mm.Deployment(model="gpt-4o-mini", provider="openai", name="priced", api_key=KEY,
                      base_url="https://priced.test/v1"),
        mm.Deployment(model="local-llama", provider="openai", name="local", api_key=KEY,
                      base_url="https://local.test/v1"),
    ]  # fmt: skip


def test_stats_ledger_and_report_agree_with_the_responses(tmp_path: Path) -> None:
    fake = FakeProvider(FakeReply(text="ok", usage=(1000, 200)))
    path = tmp_path / "usage.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.errors.PricingWarning)
        with mm.Client(deployments=deployments(), transport=fake, ledger=str(path)) as client:
            priced = [client.query("hi", model="gpt-4o-mini") for _ in range(MIN_REQUESTS)]
            local = [client.query("hi", model="local-llama") for _ in range(MIN_REQUESTS)]
            snap = client.stats()
            assert client.ledger is not None
            assert client.ledger.flush(timeout=10)
            by_model = {r.model: r for r in client.ledger.cost_by_model(since=0)}
            totals = client.ledger.totals(since=0)
            users = client.ledger.user_engagement(since=0)
            days = client.ledger.daily_series(since=0)
    assert all(r.cost is None for r in local)
    known = sum((r.cost for r in priced if r.cost is not None), Decimal(0))
    assert known > 0 and all(r.cost is not None for r in priced)

    # stats(): the unpriced deployment and every group holding it are unknown, not $0.
    assert snap.deployments["local"].cost is None
    assert snap.deployments["local"].unpriced_requests == MIN_REQUESTS
    assert snap.deployments["local"].input_tokens == 1000 * MIN_REQUESTS  # tokens still count
    assert snap.deployments["priced"].cost == known
    assert snap.models["local-llama"].cost is None
    assert snap.models["gpt-4o-mini"].cost == known
    assert (snap.providers["openai"].cost, snap.providers["openai"].known_cost) == (None, known)

    # The ledger's queries say the same.
    assert (by_model["local-llama"].cost, by_model["local-llama"].unpriced_requests) == (
        None, MIN_REQUESTS,
    )  # fmt: skip
    assert by_model["local-llama"].avg_cost is None
    assert by_model["gpt-4o-mini"].cost == known and by_model["gpt-4o-mini"].unpriced_requests == 0
    assert (totals.cost, totals.known_cost, totals.unpriced_requests) == (None, known, MIN_REQUESTS)
    assert [u.total_cost for u in users] == [None]
    assert sum(d.unpriced_requests for d in days) == MIN_REQUESTS

    # ... and so does the report; the unpriced model is never "cheaper".
    with UsageLedger(path) as ledger:
        report = build_report(ledger, since=0, now=NOW * 2)
    models = {m.model: m for m in report.models}
    assert (report.totals.cost, report.totals.known_cost) == (None, known)
    assert report.totals.unpriced_requests == MIN_REQUESTS
    assert models["local-llama"].cost is None
    assert models["local-llama"].cost_per_success is None
    assert models["gpt-4o-mini"].cost == known
    assert models["gpt-4o-mini"].cost_per_success == known / MIN_REQUESTS
    assert report.top_models.by_cost == ["gpt-4o-mini"]
    assert not [r for r in report.recommendations if r.kind == "cheaper_model"]
