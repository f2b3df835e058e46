"""OpenTelemetry spans and metrics for calls and attempts, through ``opentelemetry-api`` only.

multimodel depends on the API, never on the SDK. Until the application configures an SDK (or
passes providers here), nothing is recorded and a call with one attempt costs about 2 µs in all.
Nothing is created at import: the tracer and the instruments are made on first use. The API
itself is imported only when a provider could be set: when the application has imported it
(an SDK has to be set through it) or names one in ``OTEL_PYTHON_TRACER_PROVIDER`` /
``OTEL_PYTHON_METER_PROVIDER``; until then the globals are known to be the no-op proxies
without loading the API (~0.5 MiB, ~20 ms).

Spans are sans I/O: the driver starts and ends them explicitly. One *call* span (kind CLIENT,
named ``"{operation} {model}"``) covers a whole routed call; one *attempt* span per deployment
tried is its child (named ``"{operation} {wire_model}"``). Attributes follow the OpenTelemetry
GenAI semantic conventions (``gen_ai.*``, ``server.*``, ``error.type``) plus ``multimodel.*``.
API keys, headers, prompts and answers are never recorded; ``server.address`` is the host name
alone, so credentials or query strings in a ``base_url`` do not leak either. To make HTTP spans
(e.g. from httpx instrumentation) children of an attempt, run the send inside
``opentelemetry.trace.use_span(attempt.span, end_on_exit=False)``.

Metrics (:meth:`Telemetry.record`, once per attempt). The GenAI client metrics are
``gen_ai.client.token.usage`` (histogram, ``{token}``) and ``gen_ai.client.operation.duration``
(histogram, ``s``). The library's own instruments are named for Prometheus. The OpenTelemetry
Prometheus exporter (``opentelemetry-exporter-prometheus`` >= 0.46b0 with ``prometheus_client``)
turns a name into a Prometheus name by replacing every character outside ``[a-zA-Z0-9:]`` with
``_``; it maps the unit (``s`` -> ``seconds``, ``1`` -> nothing, ``{annotation}`` -> nothing,
other units kept verbatim, so ``USD`` would give ``_USD``) and appends ``_<unit>`` unless the name
already ends with it; a monotonic counter gets ``_total``. Hence:

- ``ai.multimodel.requests``, counter, ``{request}`` -> ``ai_multimodel_requests_total``
- ``ai.multimodel.request.duration``, histogram, ``s`` -> ``ai_multimodel_request_duration_seconds``
- ``ai.multimodel.errors``, counter, ``{error}`` -> ``ai_multimodel_errors_total``
- ``ai.multimodel.cost_usd``, counter, ``{USD}`` -> ``ai_multimodel_cost_usd_total``
- ``ai.multimodel.model.availability``, observable gauge, no unit ->
  ``ai_multimodel_model_availability``
- ``gen_ai.client.token.usage``, histogram, ``{token}`` -> ``gen_ai_client_token_usage``
- ``gen_ai.client.operation.duration``, histogram, ``s`` ->
  ``gen_ai_client_operation_duration_seconds``

The availability gauge has no unit on purpose: the Prometheus compatibility spec says a gauge
with unit ``1`` should get ``_ratio``, which the Python exporter may adopt. The own instruments
carry ``model``, ``provider``, ``deployment`` and ``status`` (``ok``/``error``), the errors counter
also ``error_type``; the gauge carries ``deployment`` and reads values from the callable given to
:meth:`Telemetry.set_availability_source` at every collection (clamped to 0..1).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from .outcome import Outcome

if TYPE_CHECKING:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

    from ..providers.base import Endpoint

    _Attrs = dict[str, AttributeValue]

__all__ = ["AttemptSpan", "AvailabilitySource", "CallSpan", "Telemetry"]

_log = logging.getLogger(__name__)

AvailabilitySource = Callable[[], Mapping[str, float]]
"""Returns the current availability (0..1) of each deployment, keyed by deployment name."""

# The GenAI conventions' advisory bucket boundaries: 0.01 s doubling to 81.92 s; 1 to 4**13 tokens.
_DURATION_BUCKETS: Final = tuple(round(0.01 * 2**i, 2) for i in range(14))
_TOKEN_BUCKETS: Final = tuple(float(4**i) for i in range(14))

# multimodel preset name -> the GenAI conventions' well-known ``gen_ai.provider.name``.
_PROVIDER_NAMES: Final = {
    "azure": "azure.ai.openai", "gemini": "gcp.gemini", "mistral": "mistral_ai", "xai": "x_ai",
    "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai",
}  # fmt: skip

# Request parameters copied onto the call span (numbers only: never content).
_REQUEST_PARAMS: Final = tuple(
    (key, f"gen_ai.request.{key}") for key in ("max_tokens", "temperature", "top_p", "seed")
)

_DEFAULT_PORTS: Final = {"https": 443, "http": 80}

_RECHECK_SECONDS: Final = 1.0  # while the globals are no-op proxies, how often to look again

# The API module whose global provider a signal reads, and the variable that can name one.
_TRACES: Final = ("opentelemetry.trace", "OTEL_PYTHON_TRACER_PROVIDER")
_METRICS: Final = ("opentelemetry.metrics", "OTEL_PYTHON_METER_PROVIDER")


def _global_may_be_set(signal: tuple[str, str]) -> bool:
    """Whether the global provider of ``signal`` may be other than the API's no-op proxy.

    A provider is set through the API module (so that module is loaded) or named in the
    environment (the API loads it on first lookup); otherwise the lookup would return the
    proxy, and the API need not be imported to know it.
    """
    module, variable = signal
    return module in sys.modules or bool(os.environ.get(variable))


def _noop_tracer_providers() -> tuple[type, ...]:
    # No-op providers: calling through them costs microseconds, so they are skipped.
    from opentelemetry import trace

    return (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def _noop_meter_providers() -> tuple[type, ...]:
    # The metrics proxy class is private; without it the no-op is merely slower, never wrong.
    from opentelemetry import metrics

    try:
        from opentelemetry.metrics._internal import _ProxyMeterProvider
    except ImportError:  # pragma: no cover - a future API reorganisation
        return (metrics.NoOpMeterProvider,)
    return (metrics.NoOpMeterProvider, _ProxyMeterProvider)


def _recheck_at(explicit: object) -> float:
    """When to look at a no-op provider again: never if it was given, else in a second."""
    return math.inf if explicit is not None else time.monotonic() + _RECHECK_SECONDS


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("multimodel")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return ""


class CallSpan:
    """The span of one routed call, from :meth:`Telemetry.start_call`.

    ``span`` is the OpenTelemetry span (use it with ``trace.use_span`` to parent other spans).
    Without an SDK it is what the API's no-op tracer would return: the current context's
    non-recording span (so trace context still propagates) or ``INVALID_SPAN``.
    """

    __slots__ = ("_noop", "model", "operation", "span")

    def __init__(self, span: Span, operation: str, model: str, noop: bool = False) -> None:
        self.span = span
        self.operation = operation
        self.model = model
        self._noop = noop


class AttemptSpan:
    """The span of one attempt on one deployment, from :meth:`Telemetry.start_attempt`.

    To parent HTTP client spans, send inside ``trace.use_span(attempt.span, end_on_exit=False)``.
    """

    __slots__ = ("_noop", "span")

    def __init__(self, span: Span, noop: bool = False) -> None:
        self.span = span
        self._noop = noop


_disabled: tuple[CallSpan, AttemptSpan] | None = None


def _disabled_spans() -> tuple[CallSpan, AttemptSpan]:
    """The call and attempt of a disabled ``Telemetry`` (made once, with ``INVALID_SPAN``)."""
    global _disabled
    if _disabled is None:
        from opentelemetry.trace import INVALID_SPAN

        _disabled = (CallSpan(INVALID_SPAN, "chat", "", noop=True), AttemptSpan(INVALID_SPAN, True))
    return _disabled


class _Instruments:
    __slots__ = ("cost", "duration", "errors", "op_duration", "requests", "token_usage")

    def __init__(self, meter: Meter) -> None:
        self.token_usage = _histogram(meter, "gen_ai.client.token.usage", "{token}", "Tokens used.")
        self.op_duration = _histogram(
            meter, "gen_ai.client.operation.duration", "s", "GenAI operation duration."
        )
        self.requests: Counter = meter.create_counter(
            "ai.multimodel.requests", "{request}", "Attempts sent to a deployment."
        )
        self.duration = _histogram(
            meter, "ai.multimodel.request.duration", "s", "Seconds from sending to answer or error."
        )
        self.errors: Counter = meter.create_counter(
            "ai.multimodel.errors", "{error}", "Attempts that failed, by error type."
        )
        self.cost: Counter = meter.create_counter(
            "ai.multimodel.cost_usd", "{USD}", "Cost of answered attempts in US dollars."
        )


def _histogram(meter: Meter, name: str, unit: str, description: str) -> Histogram:
    buckets = _DURATION_BUCKETS if unit == "s" else _TOKEN_BUCKETS
    try:
        return meter.create_histogram(
            name, unit, description, explicit_bucket_boundaries_advisory=buckets
        )
    except TypeError:  # opentelemetry-api < 1.23 has no bucket advisory
        return meter.create_histogram(name, unit, description)


def _response_attrs(outcome: Outcome) -> _Attrs:
    """Span attributes describing how an attempt (or call) ended; no content, no secrets."""
    attrs: _Attrs = {}
    if outcome.response_model:
        attrs["gen_ai.response.model"] = outcome.response_model
    if outcome.request_id:
        attrs["gen_ai.response.id"] = outcome.request_id
    if outcome.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = [outcome.finish_reason]
    usage = outcome.usage
    if usage is not None:
        attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
        attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
    if outcome.status is not None:
        attrs["http.response.status_code"] = outcome.status
    return attrs


class Telemetry:
    """Emits OpenTelemetry spans and metrics for multimodel calls and attempts.

    Args:
        tracer_provider: the provider to get the tracer from; default the API's global one.
        meter_provider: the provider to get the meter from; default the API's global one.
        enabled: ``False`` turns every method into an immediate return.

    The global providers are looked up on first use, not here. While they are still the API's
    no-op proxies, the spans and metrics are skipped without calling the API and the globals
    are looked at again at most once a second, so an SDK installed after the first call is
    picked up within a second. Explicit no-op providers are skipped for good.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer: trace.Tracer | None = None
        self._instruments: _Instruments | None = None
        self._trace_recheck = 0.0  # monotonic time to look for a tracer again (inf: never)
        self._metrics_recheck = 0.0
        self._availability_source: AvailabilitySource | None = None
        self._servers: dict[str, tuple[str | None, int | None]] = {}
        self._lock = threading.Lock()

    def start_call(
        self,
        *,
        model: str,
        operation: str = "chat",
        stream: bool,
        request_params: Mapping[str, Any] | object,
    ) -> CallSpan:
        """Start the span of one routed call (a child of the current context's span, if any).

        ``request_params`` is a mapping or an object with those attributes (a ``ChatRequest``):
        only the numeric sampling parameters (``max_tokens``, ``temperature``, ``top_p``,
        ``seed``) are read from it, and only when a tracer records.
        """
        if not self.enabled:
            return _disabled_spans()[0]
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanKind

        tracer = self._tracer or self._get_tracer()
        if tracer is None:  # what the API's NoOpTracer.start_span returns, without its cost
            current = trace.get_current_span()
            if not isinstance(current, NonRecordingSpan):
                current = NonRecordingSpan(current.get_span_context())
            return CallSpan(current, operation, model, True)
        attrs: _Attrs = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
            "multimodel.stream": stream,
        }
        params = request_params
        for key, name in _REQUEST_PARAMS:
            value = params.get(key) if isinstance(params, Mapping) else getattr(params, key, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attrs[name] = value
        span = tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs)
        return CallSpan(span, operation, model)

    def tracing(self) -> bool:
        """Whether spans are recorded now (an SDK tracer provider is set); ``False`` lets the
        caller skip :meth:`start_call` and everything after it."""
        if self._tracer is not None:
            return self.enabled
        # The recheck time compared here: a no-op provider (the common case) costs no call.
        return (
            self.enabled
            and time.monotonic() >= self._trace_recheck
            and self._get_tracer() is not None
        )

    def start_attempt(self, call: CallSpan, endpoint: Endpoint, attempt: int) -> AttemptSpan:
        """Start the span of attempt number ``attempt`` (1-based) of ``call`` on ``endpoint``."""
        from opentelemetry import trace
        from opentelemetry.trace import INVALID_SPAN, SpanKind

        if call._noop:
            span = call.span
            return _disabled_spans()[1] if span is INVALID_SPAN else AttemptSpan(span, True)
        tracer = self._tracer
        if tracer is None:  # pragma: no cover - a real call span implies a tracer
            return AttemptSpan(INVALID_SPAN)
        provider = _PROVIDER_NAMES.get(endpoint.provider, endpoint.provider)
        attrs: _Attrs = {
            "gen_ai.operation.name": call.operation,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": endpoint.wire_model,
            "multimodel.deployment": endpoint.name,
            "multimodel.attempt": attempt,
        }
        host, port = self._server(endpoint.base_url)
        if host is not None:
            attrs["server.address"] = host
            if port is not None:
                attrs["server.port"] = port
        span = tracer.start_span(
            f"{call.operation} {endpoint.wire_model}",
            context=trace.set_span_in_context(call.span),
            kind=SpanKind.CLIENT,
            attributes=attrs,
        )
        return AttemptSpan(span)

    def end_attempt(self, span: AttemptSpan, outcome: Outcome) -> None:
        """End an attempt's span with what ``outcome`` says (status ERROR when it failed)."""
        if span._noop:
            return
        otel_span = span.span
        if otel_span.is_recording():
            from opentelemetry.trace import Status, StatusCode

            otel_span.set_attributes(_response_attrs(outcome))
            if not outcome.ok:
                error = outcome.error or "_OTHER"
                otel_span.set_attribute("error.type", error)
                otel_span.set_status(Status(StatusCode.ERROR, error))
        otel_span.end()

    def end_call(
        self, call: CallSpan, *, outcome: Outcome | None, error: BaseException | None
    ) -> None:
        """End a call's span: ``outcome`` is the last attempt's, ``error`` what the call raised.

        Only the exception's class name is recorded (``error.type``), never its message, which
        may quote provider error bodies.
        """
        if call._noop:
            return
        otel_span = call.span
        if otel_span.is_recording():
            if outcome is not None:
                attrs = _response_attrs(outcome)
                provider = _PROVIDER_NAMES.get(outcome.provider, outcome.provider)
                attrs["gen_ai.provider.name"] = provider
                attrs["gen_ai.system"] = provider
                attrs["multimodel.deployment"] = outcome.deployment
                attrs["multimodel.attempts"] = outcome.attempt
                otel_span.set_attributes(attrs)
            error_type = type(error).__name__ if error is not None else None
            if error_type is None and outcome is not None and not outcome.ok:
                error_type = outcome.error or "_OTHER"
            if error_type is not None:
                from opentelemetry.trace import Status, StatusCode

                otel_span.set_attribute("error.type", error_type)
                otel_span.set_status(Status(StatusCode.ERROR, error_type))
        otel_span.end()

    def record(self, outcome: Outcome, *, operation: str | None = None) -> None:
        """Update the metrics with one attempt's outcome (call once per attempt);
        ``operation`` defaults to the outcome's own (``"chat"`` or ``"embeddings"``)."""
        if not self.enabled:
            return
        ins = self._instruments
        if ins is None:
            # Compared here: with a no-op meter provider (the common case) no call per answer.
            if time.monotonic() < self._metrics_recheck:
                return
            ins = self._get_instruments()
            if ins is None:
                return
        ok = outcome.ok
        latency = outcome.latency
        own: _Attrs = {
            "model": outcome.model,
            "provider": outcome.provider,
            "deployment": outcome.deployment,
            "status": "ok" if ok else "error",
        }
        ins.requests.add(1, own)
        ins.duration.record(latency, own)
        cost = outcome.cost
        if cost is not None and cost >= 0:
            ins.cost.add(float(cost), own)
        gen: _Attrs = {
            "gen_ai.operation.name": operation or outcome.operation,
            "gen_ai.provider.name": _PROVIDER_NAMES.get(outcome.provider, outcome.provider),
            "gen_ai.request.model": outcome.model,
        }
        if outcome.response_model:
            gen["gen_ai.response.model"] = outcome.response_model
        usage = outcome.usage
        if usage is not None:
            # Fresh dicts: the SDK may keep a reference to the attributes it was given.
            ins.token_usage.record(usage.input_tokens, {**gen, "gen_ai.token.type": "input"})
            ins.token_usage.record(usage.output_tokens, {**gen, "gen_ai.token.type": "output"})
        if not ok:
            error = outcome.error or "_OTHER"
            ins.errors.add(1, {**own, "error_type": error})
            gen["error.type"] = error
        ins.op_duration.record(latency, gen)

    def set_availability_source(self, source: AvailabilitySource | None) -> None:
        """Read the ``ai_multimodel_model_availability`` gauge from ``source`` at each collection.

        ``source()`` returns ``{deployment: availability}``; values are clamped to 0..1, NaNs and
        non-numbers are skipped, and an exception in ``source`` is logged and yields nothing.
        """
        self._availability_source = source
        if self.enabled and self._instruments is None:
            self._metrics_recheck = 0.0
            self._get_instruments()  # creates the gauge (unless the meter provider is a no-op)

    def _get_tracer(self) -> trace.Tracer | None:
        """The tracer, or ``None`` while the provider is a no-op (then spans are skipped)."""
        if time.monotonic() < self._trace_recheck:
            return None
        if self._tracer_provider is None and not _global_may_be_set(_TRACES):
            self._trace_recheck = _recheck_at(None)
            return None
        from opentelemetry import trace

        provider = self._tracer_provider or trace.get_tracer_provider()
        if isinstance(provider, _noop_tracer_providers()):
            self._trace_recheck = _recheck_at(self._tracer_provider)
            return None
        self._tracer = provider.get_tracer("multimodel", _version())
        return self._tracer

    def _get_instruments(self) -> _Instruments | None:
        """The instruments, or ``None`` while the provider is a no-op (then metrics are skipped)."""
        if time.monotonic() < self._metrics_recheck:
            return None
        if self._meter_provider is None and not _global_may_be_set(_METRICS):
            self._metrics_recheck = _recheck_at(None)
            return None
        from opentelemetry import metrics

        provider = self._meter_provider or metrics.get_meter_provider()
        if isinstance(provider, _noop_meter_providers()):
            self._metrics_recheck = _recheck_at(self._meter_provider)
            return None
        with self._lock:
            if self._instruments is None:
                meter = provider.get_meter("multimodel", _version())
                instruments = _Instruments(meter)
                meter.create_observable_gauge(
                    "ai.multimodel.model.availability",
                    callbacks=[self._observe_availability],
                    description="Availability (0..1) of each deployment, from the tracker.",
                )
                self._instruments = instruments
            return self._instruments

    def _observe_availability(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self._availability_source
        if source is None:
            return []
        try:
            values = source()
            items = list(values.items())
        except Exception:  # noqa: BLE001 - a user callback may raise anything
            _log.warning("multimodel: the availability source raised", exc_info=True)
            return []
        from opentelemetry.metrics import Observation

        observations = []
        for deployment, value in items:
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isnan(number):
                clamped = min(1.0, max(0.0, number))
                observations.append(Observation(clamped, {"deployment": str(deployment)}))
        return observations

    def _server(self, base_url: str) -> tuple[str | None, int | None]:
        server = self._servers.get(base_url)
        if server is None:
            try:
                parts = urlsplit(base_url)
                host = parts.hostname
                port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
            except ValueError:
                host, port = None, None
            server = (host, port)
            if len(self._servers) < 1024:
                self._servers[base_url] = server
        return server
