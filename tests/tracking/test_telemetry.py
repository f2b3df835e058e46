"""Telemetry: spans and metrics through the real OpenTelemetry SDK, and the no-op paths."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanContext, SpanKind, StatusCode
from pydantic import SecretStr

from multimodel.providers.base import Endpoint
from multimodel.tracking.outcome import Outcome
from multimodel.tracking.telemetry import Telemetry
from multimodel.types import Usage

SECRET = "sk-SECRET-0123456789abcdef"


def endpoint(**kw: Any) -> Endpoint:
    base: dict[str, Any] = {
        "name": "openai-east",
        "model": "smart",
        "wire_model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key": SecretStr(SECRET),
        "headers": (("x-extra-auth", SECRET),),
    }
    base.update(kw)
    return Endpoint(**base)


def outcome(**kw: Any) -> Outcome:
    base: dict[str, Any] = {
        "deployment": "openai-east",
        "model": "smart",
        "provider": "openai",
        "ok": True,
        "latency": 0.25,
        "started_at": 1_700_000_000.0,
        "status": 200,
        "usage": Usage(input_tokens=120, output_tokens=30),
        "cost": Decimal("0.0015"),
        "response_model": "gpt-4o-2024-08-06",
        "finish_reason": "stop",
        "request_id": "req_abc123",
    }
    base.update(kw)
    return Outcome(**base)


def failure(**kw: Any) -> Outcome:
    base: dict[str, Any] = {
        "ok": False,
        "error": "RateLimited",
        "status": 429,
        "usage": None,
        "cost": None,
        "response_model": None,
        "finish_reason": None,
        "request_id": None,
        "latency": 0.5,
    }
    base.update(kw)
    return outcome(**base)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield provider
    provider.shutdown()


@pytest.fixture
def telemetry(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Telemetry:
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


def collect(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    if data is None:
        return {}
    return {
        m.name: m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        if sm.scope.name == "multimodel"
        for m in sm.metrics
    }


def points(metric: Metric) -> list[Any]:
    return list(metric.data.data_points)


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


# -- spans ------------------------------------------------------------------------------------


def test_call_and_attempt_spans(telemetry: Telemetry, exporter: InMemorySpanExporter) -> None:
    call = telemetry.start_call(
        model="smart",
        stream=True,
        request_params={"max_tokens": 256, "temperature": 0.3, "top_p": 0.9, "stream": True},
    )
    attempt = telemetry.start_attempt(call, endpoint(), 1)
    result = outcome()
    telemetry.end_attempt(attempt, result)
    telemetry.end_call(call, outcome=result, error=None)

    spans = by_name(exporter)
    assert set(spans) == {"chat smart", "chat gpt-4o-2024-08-06"}
    call_span, attempt_span = spans["chat smart"], spans["chat gpt-4o-2024-08-06"]
    assert call_span.kind is SpanKind.CLIENT and attempt_span.kind is SpanKind.CLIENT
    assert call_span.parent is None
    assert attempt_span.parent is not None
    assert attempt_span.parent.span_id == call_span.context.span_id
    assert attempt_span.context.trace_id == call_span.context.trace_id

    assert dict(call_span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "smart",
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.9,
        "multimodel.stream": True,
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "req_abc123",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "http.response.status_code": 200,
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "multimodel.deployment": "openai-east",
        "multimodel.attempts": 1,
    }
    assert dict(attempt_span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-2024-08-06",
        "server.address": "api.openai.com",
        "server.port": 443,
        "multimodel.deployment": "openai-east",
        "multimodel.attempt": 1,
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "req_abc123",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "http.response.status_code": 200,
    }
    assert call_span.status.status_code is StatusCode.UNSET
    assert attempt_span.status.status_code is StatusCode.UNSET


def test_failed_attempt_then_fallback(telemetry: Telemetry, exporter: InMemorySpanExporter) -> None:
    call = telemetry.start_call(model="smart", operation="chat", stream=False, request_params={})
    first = telemetry.start_attempt(call, endpoint(), 1)
    telemetry.end_attempt(first, failure())
    backup = endpoint(
        name="claude", provider="anthropic", wire_model="claude-x", base_url="http://gw:8080/a"
    )
    second = telemetry.start_attempt(call, backup, 2)
    telemetry.end_attempt(second, outcome(deployment="claude", provider="anthropic", attempt=2))
    telemetry.end_call(call, outcome=outcome(deployment="claude", attempt=2), error=None)

    spans = by_name(exporter)
    failed, ok = spans["chat gpt-4o-2024-08-06"], spans["chat claude-x"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["error.type"] == "RateLimited"
    assert failed.attributes["http.response.status_code"] == 429
    assert "gen_ai.usage.input_tokens" not in failed.attributes
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes is not None and "error.type" not in ok.attributes
    assert ok.attributes["server.address"] == "gw"
    assert ok.attributes["server.port"] == 8080
    assert ok.attributes["multimodel.attempt"] == 2
    assert ok.attributes["gen_ai.provider.name"] == "anthropic"
    call_span = spans["chat smart"]
    assert failed.parent is not None and ok.parent is not None
    assert failed.parent.span_id == ok.parent.span_id == call_span.context.span_id
    assert call_span.status.status_code is StatusCode.UNSET
    assert call_span.attributes is not None and call_span.attributes["multimodel.attempts"] == 2
    assert "gen_ai.request.max_tokens" not in call_span.attributes


def test_call_error_records_type_only(telemetry: Telemetry, exporter: InMemorySpanExporter) -> None:
    class AllAttemptsFailed(Exception):
        pass

    call = telemetry.start_call(model="smart", stream=False, request_params={})
    attempt = telemetry.start_attempt(call, endpoint(), 1)
    telemetry.end_attempt(attempt, failure(error=None))
    telemetry.end_call(
        call, outcome=None, error=AllAttemptsFailed(f"quoted provider body mentioning {SECRET}")
    )
    spans = by_name(exporter)
    call_span = spans["chat smart"]
    assert call_span.status.status_code is StatusCode.ERROR
    assert call_span.attributes is not None
    assert call_span.attributes["error.type"] == "AllAttemptsFailed"
    assert call_span.events == ()  # no exception event: its message could quote anything
    assert SECRET not in (call_span.status.description or "")
    attempt_span = spans["chat gpt-4o-2024-08-06"]
    assert attempt_span.attributes is not None
    assert attempt_span.attributes["error.type"] == "_OTHER"


def test_call_ends_in_error_from_failed_outcome(
    telemetry: Telemetry, exporter: InMemorySpanExporter
) -> None:
    call = telemetry.start_call(
        model="m",
        operation="text_completion",
        stream=False,
        request_params={"temperature": "hot", "max_tokens": True},
    )
    telemetry.end_call(call, outcome=failure(), error=None)
    (span,) = exporter.get_finished_spans()
    assert span.name == "text_completion m"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "RateLimited"
    assert "gen_ai.request.temperature" not in span.attributes
    assert "gen_ai.request.max_tokens" not in span.attributes


def test_call_span_is_child_of_current_span(
    telemetry: Telemetry, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with tracer_provider.get_tracer("app").start_as_current_span("handler") as parent:
        call = telemetry.start_call(model="smart", stream=False, request_params={})
    telemetry.end_call(call, outcome=None, error=None)
    span = by_name(exporter)["chat smart"]
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id


def test_no_secret_or_content_in_spans(
    telemetry: Telemetry, exporter: InMemorySpanExporter
) -> None:
    leaky = endpoint(base_url=f"https://user:{SECRET}@proxy.example.com:8443/v1?key={SECRET}")
    call = telemetry.start_call(
        model="smart",
        stream=False,
        request_params={"messages": [{"role": "user", "content": "my PROMPT"}], "api_key": SECRET},
    )
    attempt = telemetry.start_attempt(call, leaky, 1)
    telemetry.end_attempt(attempt, outcome())
    telemetry.end_call(call, outcome=outcome(), error=None)
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        text = repr(dict(span.attributes or {})) + span.name + repr(span.events)
        assert "SECRET" not in text
        assert "PROMPT" not in text
    attempt_attrs = by_name(exporter)["chat gpt-4o-2024-08-06"].attributes
    assert attempt_attrs is not None
    assert attempt_attrs["server.address"] == "proxy.example.com"
    assert attempt_attrs["server.port"] == 8443


def test_provider_names_follow_semantic_conventions(
    telemetry: Telemetry, exporter: InMemorySpanExporter
) -> None:
    call = telemetry.start_call(model="smart", stream=False, request_params={})
    for i, provider in enumerate(["gemini", "azure", "groq"], start=1):
        telemetry.end_attempt(
            telemetry.start_attempt(call, endpoint(provider=provider, wire_model=provider), i),
            outcome(),
        )
    telemetry.end_call(call, outcome=None, error=None)
    spans = by_name(exporter)
    names = {
        n: (s.attributes or {})["gen_ai.provider.name"]
        for n, s in spans.items()
        if n != "chat smart"
    }
    assert names == {
        "chat gemini": "gcp.gemini",
        "chat azure": "azure.ai.openai",
        "chat groq": "groq",
    }


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_from_outcomes(telemetry: Telemetry, reader: InMemoryMetricReader) -> None:
    telemetry.record(outcome())
    telemetry.record(
        outcome(
            usage=Usage(input_tokens=80, output_tokens=20), cost=Decimal("0.0005"), latency=0.75
        )
    )
    telemetry.record(failure())
    found = collect(reader)
    assert {name: m.unit for name, m in found.items()} == {
        "gen_ai.client.token.usage": "{token}",
        "gen_ai.client.operation.duration": "s",
        "ai.multimodel.requests": "{request}",
        "ai.multimodel.request.duration": "s",
        "ai.multimodel.errors": "{error}",
        "ai.multimodel.cost_usd": "{USD}",
    }
    own_ok = {"model": "smart", "provider": "openai", "deployment": "openai-east", "status": "ok"}
    own_err = {**own_ok, "status": "error"}

    requests = {
        frozenset(p.attributes.items()): p.value for p in points(found["ai.multimodel.requests"])
    }
    assert requests == {frozenset(own_ok.items()): 2, frozenset(own_err.items()): 1}

    errors = points(found["ai.multimodel.errors"])
    assert [(dict(p.attributes), p.value) for p in errors] == [
        ({**own_err, "error_type": "RateLimited"}, 1)
    ]

    (cost,) = points(found["ai.multimodel.cost_usd"])
    assert dict(cost.attributes) == own_ok
    assert cost.value == pytest.approx(0.002)

    durations = {p.attributes["status"]: p for p in points(found["ai.multimodel.request.duration"])}
    assert durations["ok"].count == 2 and durations["ok"].sum == pytest.approx(1.0)
    assert durations["error"].count == 1 and durations["error"].sum == pytest.approx(0.5)
    assert 0.32 in durations["ok"].explicit_bounds  # the GenAI advisory buckets

    gen = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "smart",
    }
    tokens = {
        p.attributes["gen_ai.token.type"]: p for p in points(found["gen_ai.client.token.usage"])
    }
    assert dict(tokens["input"].attributes) == {
        **gen,
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.token.type": "input",
    }
    assert (tokens["input"].sum, tokens["input"].count) == (200, 2)
    assert (tokens["output"].sum, tokens["output"].count) == (50, 2)

    op = {
        frozenset(p.attributes.items()): p
        for p in points(found["gen_ai.client.operation.duration"])
    }
    ok_key = frozenset({**gen, "gen_ai.response.model": "gpt-4o-2024-08-06"}.items())
    err_key = frozenset({**gen, "error.type": "RateLimited"}.items())
    assert set(op) == {ok_key, err_key}
    assert op[ok_key].count == 2 and op[err_key].count == 1


def test_availability_gauge(
    telemetry: Telemetry, reader: InMemoryMetricReader, caplog: pytest.LogCaptureFixture
) -> None:
    values: dict[str, Any] = {"a": 0.75, "b": 1.5, "c": -1, "d": math.nan, "e": "x"}
    telemetry.set_availability_source(lambda: values)
    (metric,) = collect(reader).values()  # the gauge exists before any record()
    assert metric.name == "ai.multimodel.model.availability"
    assert metric.unit == ""
    got = {p.attributes["deployment"]: p.value for p in points(metric)}
    assert got == {"a": 0.75, "b": 1.0, "c": 0.0}

    values = {"a": 0.5}
    assert {p.attributes["deployment"]: p.value for p in points(collect(reader)[metric.name])} == {
        "a": 0.5
    }

    def broken() -> dict[str, float]:
        raise RuntimeError("boom")

    telemetry.set_availability_source(broken)
    with caplog.at_level(logging.WARNING, logger="multimodel.tracking.telemetry"):
        found = collect(reader)
    assert "ai.multimodel.model.availability" not in found or not points(
        found["ai.multimodel.model.availability"]
    )
    assert "availability source raised" in caplog.text


def test_no_secret_in_metric_attributes(telemetry: Telemetry, reader: InMemoryMetricReader) -> None:
    telemetry.record(outcome())
    telemetry.record(failure())
    for metric in collect(reader).values():
        for point in points(metric):
            assert "SECRET" not in repr(dict(point.attributes))


def test_instruments_are_lazy(meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    telemetry = Telemetry(meter_provider=meter_provider)
    assert collect(reader) == {}
    telemetry.record(outcome(cost=None, usage=None))
    found = collect(reader)
    assert "ai.multimodel.cost_usd" not in found or not points(found["ai.multimodel.cost_usd"])
    assert "gen_ai.client.token.usage" not in found or not points(
        found["gen_ai.client.token.usage"]
    )


# -- no-op paths ------------------------------------------------------------------------------


def test_api_noop_providers_work_without_sdk() -> None:
    telemetry = Telemetry(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    for _ in range(2):
        call = telemetry.start_call(model="smart", stream=False, request_params={"max_tokens": 5})
        attempt = telemetry.start_attempt(call, endpoint(), 1)
        assert call.span is INVALID_SPAN and attempt.span is INVALID_SPAN
        telemetry.record(outcome())
        telemetry.record(failure())
        telemetry.end_attempt(attempt, failure())
        telemetry.end_call(call, outcome=None, error=RuntimeError("x"))
    telemetry.set_availability_source(lambda: {"a": 1.0})


def test_noop_spans_keep_the_incoming_trace_context() -> None:
    # Like the API's NoOpTracer: without an SDK, an incoming (remote) span context stays current.
    telemetry = Telemetry(tracer_provider=trace.NoOpTracerProvider())
    remote = NonRecordingSpan(SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True))
    with trace.use_span(remote):
        call = telemetry.start_call(model="smart", stream=False, request_params={})
    attempt = telemetry.start_attempt(call, endpoint(), 1)
    assert call.span.get_span_context().trace_id == 0xABC
    assert attempt.span.get_span_context().span_id == 0xDEF
    telemetry.end_attempt(attempt, outcome())
    telemetry.end_call(call, outcome=outcome(), error=None)


def test_disabled_does_nothing(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    exporter: InMemorySpanExporter,
    reader: InMemoryMetricReader,
) -> None:
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=meter_provider, enabled=False
    )
    call = telemetry.start_call(model="smart", stream=False, request_params={})
    attempt = telemetry.start_attempt(call, endpoint(), 1)
    telemetry.record(outcome())
    telemetry.set_availability_source(lambda: {"a": 1.0})
    telemetry.end_attempt(attempt, outcome())
    telemetry.end_call(call, outcome=outcome(), error=None)
    assert exporter.get_finished_spans() == ()
    assert collect(reader) == {}


# -- Prometheus names -------------------------------------------------------------------------


def test_prometheus_exposition_names() -> None:
    prometheus = pytest.importorskip("opentelemetry.exporter.prometheus")
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    reader = prometheus.PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        telemetry = Telemetry(meter_provider=provider)
        telemetry.set_availability_source(lambda: {"openai-east": 0.9})
        telemetry.record(outcome())
        telemetry.record(failure())
        text = prometheus_client.generate_latest(registry).decode()
    finally:
        provider.shutdown()
    types = {
        line.split(" ")[2]: line.split(" ")[3]
        for line in text.splitlines()
        if line.startswith("# TYPE ")
    }
    # prometheus_client < 0.17-ish names a counter family without its _total in "# TYPE".
    types.update({name + "_total": t for name, t in types.items() if t == "counter"})
    assert types["ai_multimodel_requests_total"] == "counter"
    assert types["ai_multimodel_request_duration_seconds"] == "histogram"
    assert types["ai_multimodel_errors_total"] == "counter"
    assert types["ai_multimodel_cost_usd_total"] == "counter"
    assert types["ai_multimodel_model_availability"] == "gauge"
    assert types["gen_ai_client_token_usage"] == "histogram"
    assert types["gen_ai_client_operation_duration_seconds"] == "histogram"
    samples = {line.split("{")[0] for line in text.splitlines() if line and line[0] != "#"}
    for expected in (
        "ai_multimodel_requests_total",
        "ai_multimodel_request_duration_seconds_count",
        "ai_multimodel_errors_total",
        "ai_multimodel_cost_usd_total",
        "ai_multimodel_model_availability",
    ):
        assert expected in samples, text
    assert 'error_type="RateLimited"' in text
    assert 'deployment="openai-east"' in text and 'status="ok"' in text


_LATE_SDK = """
import multimodel.tracking.telemetry as tm
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

tm._RECHECK_SECONDS = 0.0
telemetry = tm.Telemetry()
telemetry.end_call(telemetry.start_call(model="a", stream=False, request_params={}),
                   outcome=None, error=None)
exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
telemetry.end_call(telemetry.start_call(model="b", stream=False, request_params={}),
                   outcome=None, error=None)
telemetry.record(tm.Outcome(deployment="d", model="b", provider="p", ok=True, latency=1.0,
                            started_at=0.0))
names = [m.name for rm in reader.get_metrics_data().resource_metrics
         for sm in rm.scope_metrics for m in sm.metrics]
print([s.name for s in exporter.get_finished_spans()], "ai.multimodel.requests" in names)
"""


def test_global_sdk_installed_after_first_use_is_picked_up() -> None:
    # Global providers can be set once per process, so this runs in a child interpreter.
    done = subprocess.run(
        [sys.executable, "-c", _LATE_SDK], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['chat b'] True"
