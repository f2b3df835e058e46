"""A full scenario with failures, streams, cache, ledger, telemetry and events: scan every byte
the library produced for the API keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment
from multimodel.testing.fixtures import MockServerFactory
from multimodel.tracking import Telemetry, UsageLedger

KEYS = {
    "openai": "sk-proj-LEAKCHECK-openai-0123456789",
    "anthropic": "sk-ant-LEAKCHECK-anthropic-0123456789",
    "gemini": "AIzaLEAKCHECK-gemini-0123456789abcd",
}


def test_no_key_in_any_output(
    mock_server_factory: MockServerFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = mock_server_factory(
        {
            "o": MockDeployment(format="openai", behavior=Behavior(script=[401, 500, 200])),
            "a": MockDeployment(
                format="anthropic", behavior=Behavior(script=[529, 200], retry_after=0.01)
            ),
            "g": MockDeployment(
                format="gemini", behavior=Behavior(script=[429, 200], retry_after=0.01)
            ),
        }
    )
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = UsageLedger(ledger_path, store_content=False)
    events: list[object] = []
    client = mm.Client(
        deployments=[
            mm.Deployment(
                model=f"m-{name}",
                provider=provider,
                name=name,
                api_key=KEYS[provider],
                base_url=server.base_url(name),
            )
            for name, provider in (("o", "openai"), ("a", "anthropic"), ("g", "gemini"))
        ],
        telemetry=telemetry,
        ledger=ledger,
        cache=True,
        retry=mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.01),
        circuit=mm.CircuitPolicy(failure_threshold=1, cooldown=0.01),
        max_retries=4,
    )
    client.on("model_status_change", events.append)
    client.on("outcome", events.append)
    captured: list[str] = [repr(client), repr(client.deployments), str(client.stats())]
    for name in ("o", "a", "g"):
        for attempt in range(2):
            try:
                r = client.query("hello", model=f"m-{name}", temperature=0)
                captured += [repr(r), r.model_dump_json(), repr(r.trace), str(r.raw_body())]
            except mm.MultimodelError as exc:
                captured += [str(exc), repr(exc), repr(exc.trace), repr(vars(exc))]
            try:
                with client.stream("stream please", model=f"m-{name}") as s:
                    captured += [repr(c) for c in s]
                captured.append(repr(s.response))
            except mm.MultimodelError as exc:  # "o" is in cooldown after its 401
                captured += [str(exc), repr(exc), repr(exc.trace)]
            del attempt
    assert client.cache is not None
    captured += [client.cache.key_for(client._build_request("hello", "m-o", {}))]
    client.close()
    ledger.close()
    captured += [repr(e) for e in events]
    captured += [r.getMessage() for r in caplog.records]
    captured += [str(span.to_json()) for span in spans.get_finished_spans()]
    metrics = reader.get_metrics_data()
    assert metrics is not None
    captured.append(str(metrics.to_json()))
    blob = "\n".join(captured).encode()
    blob += ledger_path.read_bytes()
    for suffix in ("-wal", "-shm"):
        extra = Path(str(ledger_path) + suffix)
        if extra.exists():
            blob += extra.read_bytes()
    assert spans.get_finished_spans()  # telemetry really ran
    for key in KEYS.values():
        assert key.encode() not in blob
        assert b"LEAKCHECK" not in blob
    # ... while the keys did reach the mock providers, in the right headers only.
    assert server.requests("o")[0].headers["authorization"] == f"Bearer {KEYS['openai']}"
    assert server.requests("a")[0].headers["x-api-key"] == KEYS["anthropic"]
    assert server.requests("g")[0].headers["x-goog-api-key"] == KEYS["gemini"]
