"""Embeddings routed like chat, over the mock server (real sockets) on ``Client`` and
``AsyncClient`` (asyncio and trio): a deployment that starts failing in the middle of a large
input hands its remaining batches over, fallbacks to another model group, rate limits and
budgets per batch, the call's deadline over all its batches, the ledger and OpenTelemetry
(spans and metrics named for the ``embeddings`` operation)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import multimodel as mm
from multimodel import errors
from multimodel.providers import register_provider
from multimodel.providers.presets import ProviderPreset
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.tracking.telemetry import Telemetry

KEY = "sk-test-embedding-routing-0123456789"
register_provider(  # two inputs a request: a dozen inputs are six batches
    ProviderPreset("test-embed-pairs", "openai", None, ("TEST_EMBED_KEY",),
                   options={"embedding_batch_size": 2})
)  # fmt: skip
TEXTS = [f"text number {i}" for i in range(12)]


def deployment(
    server: MockProviderServer, name: str, model: str = "text-embedding-3-small", **kw: Any
) -> Any:
    kw.setdefault("provider", "test-embed-pairs")
    return mm.Deployment(model=model, api_key=KEY, base_url=server.base_url(name), name=name, **kw)


def expected(server: MockProviderServer, texts: list[str]) -> list[list[float]]:
    """The mock's vectors for ``texts``, asked of the healthy deployment alone."""
    with mm.Client([deployment(server, "ok")]) as c:
        return c.embed(texts).vectors


# -- a deployment that starts failing mid-call -------------------------------------------------

MID_CALL = {
    # answers its first two requests, then every one with a 503
    "flaky": MockDeployment(
        format="openai", behavior=Behavior(script=[200, 200], fail_rate=1.0, fail_status=503)
    ),
    "ok": MockDeployment(format="openai"),
}


def check_mid_call(r: mm.EmbeddingResponse, server: MockProviderServer) -> None:
    assert r.vectors == expected(server, TEXTS)  # every input's own vector, in input order
    assert r.batches == len(r.deployments) == 6
    # the two batches it answered are its; every later one was handed to the other deployment
    assert r.deployments.count("flaky") == 2 and r.deployments.count("ok") == 4
    assert len(server.requests("flaky")) >= 3
    assert r.usage.input_tokens > 0  # the batches that were answered, priced from the catalog
    assert r.cost == Decimal("0.02") * r.usage.input_tokens / 1_000_000


def test_a_deployment_failing_mid_call_hands_its_batches_over() -> None:
    with MockProviderServer(MID_CALL) as server:
        fleet = [deployment(server, "flaky"), deployment(server, "ok")]
        with mm.Client(fleet, strategy="round_robin") as c:
            r = c.embed(TEXTS)
        check_mid_call(r, server)


@pytest.mark.anyio
async def test_async_a_deployment_failing_mid_call_hands_its_batches_over() -> None:
    with MockProviderServer(MID_CALL) as server:
        fleet = [deployment(server, "flaky"), deployment(server, "ok")]
        async with mm.AsyncClient(fleet, strategy="round_robin") as c:
            r = await c.embed(TEXTS)
        check_mid_call(r, server)


# -- fallbacks, rate limits, budgets ----------------------------------------------------------

FLEET = {
    "down": MockDeployment(format="openai", behavior=Behavior(fail_rate=1.0, fail_status=500)),
    "gemini": MockDeployment(format="gemini"),
    "ok": MockDeployment(format="openai"),
}


def test_a_group_that_fails_falls_back_to_another_model() -> None:
    with MockProviderServer(FLEET) as server:
        fleet = [
            deployment(server, "down", model="text-embedding-3-small", provider="openai"),
            mm.Deployment(
                model="gemini-embedding-001", provider="gemini", api_key="AIza-test-0123456789",
                base_url=server.base_url("gemini"), name="gemini",
            ),
        ]  # fmt: skip
        fallbacks = {"text-embedding-3-small": ["gemini-embedding-001"]}
        with mm.Client(fleet, fallbacks=fallbacks, max_retries=1) as c:
            r = c.embed(TEXTS[:3], model="text-embedding-3-small")
    assert r.deployments == ["gemini"] and r.model == "gemini-embedding-001"
    assert len(r.vectors) == 3 and r.usage.estimated  # Gemini sends no counts
    assert r.cost == Decimal("0.15") * r.usage.input_tokens / 1_000_000


def test_a_rate_limited_deployment_takes_no_more_than_its_limit() -> None:
    with MockProviderServer(FLEET) as server:
        unlimited = mm.Deployment(
            model="text-embedding-3-small", provider="test-embed-pairs", api_key=KEY,
            base_url=server.base_url("ok"), name="unlimited",
        )  # fmt: skip
        fleet = [deployment(server, "ok", rpm=1), unlimited]
        with mm.Client(fleet, strategy="round_robin") as c:
            r = c.embed(TEXTS)
    # one request a minute on the limited deployment: the other five batches went elsewhere
    assert r.deployments.count("ok") == 1 and r.deployments.count("unlimited") == 5


def test_a_budget_refuses_batches_before_they_are_sent() -> None:
    budget = mm.Budget(
        name="tiny", limit=Decimal("0.000000001"), scope="model", key="text-embedding-3-small"
    )
    with MockProviderServer(FLEET) as server:
        fleet = [deployment(server, "ok", provider="openai")]
        with mm.Client(fleet, budgets=[budget]) as c:
            with pytest.raises(errors.BudgetExceeded):
                c.embed(TEXTS)
        assert server.requests("ok") == []


# -- the call's deadline covers every batch ---------------------------------------------------

SLOW = {"slow": MockDeployment(format="openai", behavior=Behavior(latency=0.3))}


def check_deadline(info: pytest.ExceptionInfo[Any], elapsed: float, server: Any) -> None:
    # Six batches, four at a time, 0.3 s each: the last two start 0.3 s in, with 0.2 s of the
    # deadline left. A fresh deadline per batch let the call run 0.6 s, and succeed.
    assert elapsed < 0.5 + 0.25
    assert isinstance(info.value, (errors.AllAttemptsFailed, errors.ProviderTimeout))
    assert len(server.requests("slow")) == 6


def test_the_deadline_bounds_the_whole_call() -> None:
    with MockProviderServer(SLOW) as server:
        with mm.Client([deployment(server, "slow")], deadline=0.5, max_retries=0) as c:
            started = time.monotonic()
            with pytest.raises(errors.MultimodelError) as info:
                c.embed(TEXTS)
            check_deadline(info, time.monotonic() - started, server)


@pytest.mark.anyio
async def test_async_the_deadline_bounds_the_whole_call() -> None:
    with MockProviderServer(SLOW) as server:
        async with mm.AsyncClient([deployment(server, "slow")], deadline=0.5, max_retries=0) as c:
            started = time.monotonic()
            with pytest.raises(errors.MultimodelError) as info:
                await c.embed(TEXTS)
            check_deadline(info, time.monotonic() - started, server)


DOWN = {"down": MockDeployment(format="openai", behavior=Behavior(fail_rate=1.0, fail_status=400))}


def test_a_failed_call_sends_no_more_batches() -> None:
    """Six batches, at most four at a time, every one refused: those not yet sent when the
    first failed are never sent (they would be billed for nothing)."""
    with MockProviderServer(DOWN) as server, mm.Client([deployment(server, "down")]) as c:
        with pytest.raises(errors.BadRequestError):
            c.embed(TEXTS)
        assert 1 <= len(server.requests("down")) <= 4


@pytest.mark.anyio
async def test_async_a_failed_call_sends_no_more_batches() -> None:
    with MockProviderServer(DOWN) as server:
        async with mm.AsyncClient([deployment(server, "down")]) as c:
            with pytest.raises(errors.BadRequestError):
                await c.embed(TEXTS)
        assert 1 <= len(server.requests("down")) <= 4


# -- the ledger and OpenTelemetry -------------------------------------------------------------


@pytest.fixture
def otel() -> Iterator[tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield (
        Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider),
        exporter,
        reader,
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()


def operations(reader: InMemoryMetricReader) -> set[str]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        str((point.attributes or {}).get("gen_ai.operation.name"))
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "gen_ai.client.token.usage"
        for point in metric.data.data_points
    }


def check_recorded(
    otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader], ledger: Path
) -> None:
    _, exporter, reader = otel
    spans = exporter.get_finished_spans()
    (call,) = [s for s in spans if s.parent is None]
    (attempt,) = [s for s in spans if s.parent is not None]
    assert call.name == attempt.name == "embeddings text-embedding-3-small"
    attrs = dict(call.attributes or {})
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert "gen_ai.request.max_tokens" not in attrs  # not the caller's: an embedding has none
    tokens = attrs["gen_ai.usage.input_tokens"]
    assert isinstance(tokens, int) and tokens > 0
    assert dict(attempt.attributes or {})["gen_ai.operation.name"] == "embeddings"
    assert operations(reader) == {"embeddings"}
    with sqlite3.connect(ledger) as db:
        rows = db.execute(
            "SELECT model, ok, input_tokens, output_tokens, cost FROM usage"
        ).fetchall()
    assert len(rows) == 1
    model, ok, input_tokens, output_tokens, cost = rows[0]
    assert (model, ok, output_tokens) == ("text-embedding-3-small", 1, 0) and input_tokens > 0
    assert Decimal(cost) == Decimal("0.02") * input_tokens / 1_000_000


def test_embeddings_reach_the_ledger_and_telemetry(
    otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader], tmp_path: Path
) -> None:
    with MockProviderServer(FLEET) as server:
        fleet = [deployment(server, "ok", model="text-embedding-3-small", provider="openai")]
        ledger = tmp_path / "usage.sqlite3"
        with mm.Client(fleet, telemetry=otel[0], ledger=str(ledger)) as c:
            c.embed(TEXTS[:3])
    check_recorded(otel, ledger)


@pytest.mark.anyio
async def test_async_embeddings_reach_the_ledger_and_telemetry(
    otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader], tmp_path: Path
) -> None:
    with MockProviderServer(FLEET) as server:
        fleet = [deployment(server, "ok", model="text-embedding-3-small", provider="openai")]
        ledger = tmp_path / "usage.sqlite3"
        async with mm.AsyncClient(fleet, telemetry=otel[0], ledger=str(ledger)) as c:
            await c.embed(TEXTS[:3])
    check_recorded(otel, ledger)
