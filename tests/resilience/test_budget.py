"""Budgets: hard limits skip deployments / raise before sending; alerts fire once per window."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

import multimodel as mm
from multimodel.catalog import Catalog
from multimodel.providers.base import Endpoint
from multimodel.resilience.budget import Budget, BudgetAlert, BudgetBook
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-budget-0123456789"


def endpoint(name: str, model: str = "m", provider: str = "openai") -> Endpoint:
    return Endpoint(
        name=name, model=model, wire_model=model, provider=provider, base_url="https://x.test/v1"
    )


class Wall:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_reserve_settle_and_hard_limit() -> None:
    wall = Wall()
    book = BudgetBook([Budget(name="b", limit=Decimal("1.00"), window="hour")], wall=wall)
    ep = endpoint("a")
    hold = book.reserve(ep, None, (), Decimal("0.60"))
    assert hold is not None
    assert book.reserve(ep, None, (), Decimal("0.50")) is None  # 0.60 held + 0.50 > 1.00
    assert book.blocked(ep, None, (), Decimal("0.50")) is not None
    book.settle(hold, Decimal("0.30"))  # real cost lower than the estimate frees room
    assert book.spent("b") == Decimal("0.30")
    assert book.reserve(ep, None, (), Decimal("0.50")) is not None
    wall.t += 3600  # a new hour: a new window
    assert book.spent("b") == Decimal(0)


def test_scopes_and_keys() -> None:
    wall = Wall()
    book = BudgetBook(
        [
            Budget(name="per-user", scope="user", limit=Decimal(1)),
            Budget(name="gpt", scope="model", key="gpt", limit=Decimal(1)),
            Budget(name="tagged", scope="tag", key="batch", limit=Decimal(1)),
        ],
        wall=wall,
    )
    a, g = endpoint("a", "m"), endpoint("g", "gpt")
    book.settle(book.reserve(a, "alice", (), Decimal("0.9")), Decimal("0.9"))
    assert book.blocked(a, "alice", (), Decimal("0.2")) is not None
    assert book.blocked(a, "bob", (), Decimal("0.2")) is None  # each user has their own
    book.settle(book.reserve(g, "bob", ("batch",), Decimal("0.95")), Decimal("0.95"))
    assert "gpt" in (book.blocked(g, "carol", (), Decimal("0.1")) or "")
    assert book.blocked(a, "carol", ("batch",), Decimal("0.1")) is not None
    assert book.blocked(a, "carol", ("other",), Decimal("0.1")) is None


def test_alert_fires_once_per_window() -> None:
    wall = Wall()
    alerts: list[BudgetAlert] = []
    book = BudgetBook(
        [Budget(name="hourly", soft_limit=Decimal(100), window="hour", alert_at=None)],
        wall=wall,
        alert=alerts.append,
    )
    ep = endpoint("a")
    for _ in range(5):
        book.settle(book.reserve(ep, None, (), Decimal(0)), Decimal(30))
    assert len(alerts) == 1
    assert alerts[0].budget == "hourly"
    assert alerts[0].spent == Decimal(120)
    wall.t += 3600
    book.settle(book.reserve(ep, None, (), Decimal(0)), Decimal(150))
    assert len(alerts) == 2


def test_bad_budgets() -> None:
    with pytest.raises(mm.ConfigError):
        Budget(name="x", limit=Decimal(-1))
    with pytest.raises(mm.ConfigError):
        Budget(name="x", window="week")  # type: ignore[arg-type]
    with pytest.raises(mm.ConfigError, match="unique"):
        BudgetBook(
            [Budget(name="x", limit=Decimal(1)), Budget(name="x", limit=Decimal(1))], wall=Wall()
        )


def priced_catalog() -> Catalog:
    catalog = Catalog()
    catalog.add(
        {
            "id": "m",
            "provider": "openai",
            "context_window": 100000,
            "max_output_tokens": 4096,
            "pricing": {"input": "1000", "output": "1000"},
        },
        replace=True,
    )
    return catalog


def test_client_raises_budget_exceeded_before_sending_and_alerts() -> None:
    fake = FakeProvider(FakeReply(usage=(100, 100)))  # 200 tokens at $1000/M = $0.20
    alerts: list[BudgetAlert] = []
    client = mm.Client(
        deployments=[mm.Deployment(model="m", provider="openai", api_key=KEY)],
        transport=fake,
        catalog=priced_catalog(),
        budgets=[mm.Budget(name="daily", limit=Decimal("0.50"), alert_at=0.5)],
    )
    client.on("budget_alert", alerts.append)
    sent = 0
    with pytest.raises(mm.BudgetExceeded, match="daily"):
        for _ in range(10):
            client.query("hi", max_tokens=100)  # estimate ~$0.105 (prompt + max_tokens)
            sent += 1
    assert len(fake.requests) == sent  # the refused call sent nothing
    assert sent == 2  # $0.40 spent; $0.40 + a $0.105 estimate > $0.50
    assert len(alerts) == 1 and alerts[0].budget == "daily"


def test_concurrent_calls_cannot_overshoot() -> None:
    fake = FakeProvider(FakeReply(usage=(100, 100)))
    client = mm.Client(
        deployments=[mm.Deployment(model="m", provider="openai", api_key=KEY)],
        transport=fake,
        catalog=priced_catalog(),
        budgets=[mm.Budget(name="daily", limit=Decimal("2.00"))],
    )
    errors: list[Exception] = []

    def worker() -> None:
        for _ in range(5):
            try:
                client.query("hi", max_tokens=100)
            except mm.BudgetExceeded as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = client._router.budgets.spent("daily")  # type: ignore[union-attr]
    assert spent <= Decimal("2.00")
    assert len(fake.requests) == 10  # $0.20 each: exactly ten fit
    assert len(errors) == 16 * 5 - 10
