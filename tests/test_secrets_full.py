"""A full scenario with failures, streams, cache, ledger, telemetry and events: scan every byte
the library produced for the API keys."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

import multimodel as mm
from multimodel.cache import MemoryCache, ResponseCache
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


# -- keys that do not look like keys, echoed back by the providers ------------------------------
#
# Providers echo what they were sent: in error messages, nested in error bodies, as error codes,
# in response headers (request ids), in in-stream error events and in plain-text bodies. Keys
# that no pattern recognizes (Groq's gsk_, a plain token, one made of regex metacharacters) must
# be redacted by value, on both clients, in every wire format.

ECHO_KEYS = {
    "groq": "gsk_LEAKgroq0123456789abcdefABCDEF0123456789wxyz",
    "plain": "abc123LEAKplain456def789ghi",
    "regex": "LEAK.*key+(re)?[x]{2}^$|\\d/=%&",
}
GATEWAY_KEY = "gw-LEAKgateway-0123456789"  # a credential in an extra header of one deployment
SCENARIOS = ("auth", "bad", "server", "quota", "text", "ok", "sbefore", "safter")
FORMATS = ("openai", "anthropic", "gemini")


def _sse(events: list[bytes]) -> bytes:
    return b"".join(events)


def _data(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n".encode()


def _error(fmt: str, scenario: str, key: str, sent: str, gateway: str) -> tuple[int, Any]:
    """The status and JSON error body of ``scenario``, echoing the key every way it can."""
    echo = {
        "headers": {"authorization": sent, "x-gateway-key": gateway},
        "seen": [key, [sent, {"deep": {"deeper": [key]}}]],
        key: "the key as a dict key",
    }
    if fmt == "openai":
        status, etype, code = {
            "auth": (401, "invalid_request_error", "invalid_api_key"),
            "bad": (400, "invalid_request_error", key),  # the key as the error code
            "server": (500, "server_error", None),
            "quota": (429, "insufficient_quota", "insufficient_quota"),
        }[scenario]
        return status, {
            "error": {
                "message": f"Invalid API Key provided: {key}",
                "type": etype,
                "code": code,
                "param": echo,
            }
        }
    if fmt == "anthropic":
        status, etype = {
            "auth": (401, "authentication_error"),
            "bad": (413, "request_too_large"),  # the adapter builds this error itself
            "server": (500, "api_error"),
            "quota": (429, "rate_limit_error"),
        }[scenario]
        return status, {
            "type": "error",
            "request_id": f"req_{key}",
            "error": {"type": etype, "message": f"invalid x-api-key {key}", "details": echo},
        }
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"key": key, "header": sent},
    }
    quota = {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel", "quotaMetric": key}],
    }
    bad = {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "key", "description": f"{key} is malformed"}],
    }
    status, gstatus, details = {
        "auth": (400, "INVALID_ARGUMENT", [info]),  # the adapter builds this error itself
        "bad": (400, "INVALID_ARGUMENT", [bad, echo]),
        "server": (500, "INTERNAL", [echo]),
        "quota": (429, "RESOURCE_EXHAUSTED", [quota]),  # this one too (a daily quota)
    }[scenario]
    return status, {
        "error": {
            "code": status,
            "message": f"API key not valid: {key}",
            "status": gstatus,
            "details": details,
        }
    }


def _stream(fmt: str, before_content: bool, key: str, sent: str) -> bytes:
    from multimodel.testing.behavior import ResolvedUsage
    from multimodel.testing.wire import RENDERERS, Reply

    reply = Reply(
        model="m",
        text="one two",
        pieces=("one", " two"),
        tool_calls=(),
        usage=ResolvedUsage(3, 2),
        finish_reason=None,
        seq=1,
    )
    plan = RENDERERS[fmt].stream(reply)
    events = list(plan.head) + ([] if before_content else list(plan.body))
    if fmt == "openai":
        events.append(
            _data(
                {
                    "error": {
                        "message": f"upstream failed for {key}",
                        "type": "server_error",
                        "code": 500,
                        "echo": [sent],
                    }
                }
            )
        )
    elif fmt == "anthropic":
        events.append(
            _data(
                {
                    "type": "error",
                    "error": {
                        "type": "api_error",
                        "message": f"failed for {key}",
                        "echo": {"x-api-key": sent},
                    },
                },
                "error",
            )
        )
    else:
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "metadata": {"key": key},
        }
        events.append(
            _data(
                {
                    "error": {
                        "code": 400,
                        "message": f"API key not valid: {key}",
                        "status": "INVALID_ARGUMENT",
                        "details": [info],
                    }
                }
            )
        )
    return _sse(events)


class EchoingProviders:
    """An httpx transport handler playing three providers that echo the caller's credentials.

    The host names the wire format; ``scenario-NAME`` in the prompt picks the answer.
    """

    def __init__(self) -> None:
        self.received: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        from multimodel.testing.behavior import ResolvedUsage
        from multimodel.testing.wire import RENDERERS, Reply

        fmt = request.url.host.split(".")[0]
        sent = (
            request.headers.get("authorization")
            or request.headers.get("x-api-key")
            or request.headers.get("x-goog-api-key")
            or ""
        )
        self.received.append(sent)
        key = sent.removeprefix("Bearer ")
        gateway = request.headers.get("x-gateway-key", "")
        found = re.search(rb"scenario-(\w+)", request.content)
        assert found is not None
        scenario = found.group(1).decode()
        headers = {
            "x-request-id": f"req-{key}",
            "request-id": f"req-{key}",
            "x-echo": sent,
            "www-authenticate": f'Bearer realm="api", token="{key}"',
            "x-echo-gateway": gateway,
        }
        if scenario == "ok":
            reply = Reply(
                model="m",
                text="fine",
                pieces=("fine",),
                tool_calls=(),
                usage=ResolvedUsage(3, 1),
                finish_reason=None,
                seq=1,
            )
            return httpx.Response(
                200,
                content=RENDERERS[fmt].body(reply),
                headers={**headers, "content-type": "application/json"},
            )
        if scenario == "text":
            return httpx.Response(
                502, text=f"bad gateway: upstream refused {sent} ({key})", headers=headers
            )
        if scenario in ("sbefore", "safter"):
            return httpx.Response(
                200,
                content=_stream(fmt, scenario == "sbefore", key, sent),
                headers={**headers, "content-type": "text/event-stream"},
            )
        status, body = _error(fmt, scenario, key, sent, gateway)
        return httpx.Response(status, json=body, headers=headers)


class RecordingCache(MemoryCache):
    """A memory backend that keeps every value written, to scan cache entries."""

    def __init__(self) -> None:
        super().__init__(max_entries=1000)
        self.written: list[bytes] = []

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.written.append(value)
        super().set(key, value, ttl)

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        self.written.append(value)
        await super().aset(key, value, ttl)


class Harness:
    """Telemetry, a ledger, a cache and the log, shared by every client of one test."""

    def __init__(self, tmp_path: Path, key: str) -> None:
        self.key = key
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = Telemetry(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
        )
        self.ledger_path = tmp_path / "ledger.sqlite3"
        self.ledger = UsageLedger(self.ledger_path, store_content=True)
        self.backend = RecordingCache()
        self.provider = EchoingProviders()
        self.captured: list[str] = []
        self.events: list[object] = []
        self.errors: dict[tuple[str, str], mm.ProviderError] = {}

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "deployments": [
                mm.Deployment(
                    model="m-openai",
                    provider="groq",
                    name="openai",
                    api_key=self.key,
                    base_url="https://openai.test/openai/v1",
                    headers={"x-gateway-key": GATEWAY_KEY},
                ),
                mm.Deployment(
                    model="m-anthropic",
                    provider="anthropic",
                    name="anthropic",
                    api_key=self.key,
                    base_url="https://anthropic.test/v1",
                ),
                mm.Deployment(
                    model="m-gemini",
                    provider="gemini",
                    name="gemini",
                    api_key=self.key,
                    base_url="https://gemini.test/v1beta",
                ),
            ],
            "transport": httpx.MockTransport(self.provider),
            "telemetry": self.telemetry,
            "ledger": self.ledger,
            "cache": ResponseCache(backend=self.backend),
            "retry": mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.002),
            "max_retries": 1,
        }

    def watch(self, client: Any) -> None:
        client.on("model_status_change", self.events.append)
        client.on("outcome", self.events.append)

    def answered(self, response: mm.ChatResponse) -> None:
        self.captured += [
            repr(response),
            response.model_dump_json(),
            repr(response.trace),
            str(response.raw_body()),
            str(response.request_id),
        ]

    def failed(self, fmt: str, scenario: str, exc: BaseException) -> None:
        self.captured += [str(exc), repr(exc), repr(getattr(exc, "trace", None)), repr(vars(exc))]
        nested = list(getattr(exc, "errors", ())) or [exc]
        for error in nested:
            chain: BaseException | None = error
            while chain is not None:
                self.captured += [
                    str(chain),
                    repr(chain),
                    repr(vars(chain)),
                    repr(getattr(chain, "body", None)),
                    str(getattr(chain, "message", "")),
                ]
                chain = chain.__cause__
        provider_errors = [e for e in nested if isinstance(e, mm.ProviderError)]
        assert provider_errors, repr(exc)
        self.errors[(fmt, scenario)] = provider_errors[0]

    def scan(self, caplog: pytest.LogCaptureFixture) -> None:
        self.ledger.close()
        self.captured += [repr(e) for e in self.events]
        self.captured += [r.getMessage() for r in caplog.records]
        self.captured += [r.exc_text or "" for r in caplog.records]
        self.captured += [str(span.to_json()) for span in self.spans.get_finished_spans()]
        metrics = self.reader.get_metrics_data()
        assert metrics is not None
        self.captured.append(str(metrics.to_json()))
        blob = "\n".join(self.captured).encode()
        blob += b"".join(self.backend.written)
        blob += self.ledger_path.read_bytes()
        for suffix in ("-wal", "-shm"):
            extra = Path(str(self.ledger_path) + suffix)
            if extra.exists():
                blob += extra.read_bytes()
        assert self.spans.get_finished_spans()  # telemetry ran
        assert self.backend.written  # the cache stored the answers
        assert len(self.errors) == len(FORMATS) * (len(SCENARIOS) - 1)
        for secret in (self.key, GATEWAY_KEY):
            for form in (secret, json.dumps(secret)[1:-1], quote(secret, safe="")):
                assert form.encode() not in blob, form
        assert b"LEAK" not in blob  # not even a piece of one
        # The keys did reach the providers (so they could echo them) ...
        assert f"Bearer {self.key}" in self.provider.received
        assert self.key in self.provider.received
        # ... and every error really carried an echo, redacted rather than lost.
        for (fmt, scenario), error in self.errors.items():
            assert "[REDACTED]" in error.message, (fmt, scenario, error.message)
            assert error.request_id is None or "LEAK" not in error.request_id
            if scenario not in ("text",) and error.body is not None:
                assert "[REDACTED]" in repr(error.body), (fmt, scenario, error.body)


def _prompt(scenario: str) -> str:
    return f"please answer scenario-{scenario}"


@pytest.mark.parametrize("key", list(ECHO_KEYS.values()), ids=list(ECHO_KEYS))
def test_echoed_keys_of_any_shape_are_redacted_sync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, key: str
) -> None:
    caplog.set_level(logging.DEBUG)
    h = Harness(tmp_path, key)
    for scenario in SCENARIOS:  # a fresh client each: a 401 cools its deployment down
        with mm.Client(**h.client_kwargs()) as client:
            h.watch(client)
            for fmt in FORMATS:
                try:
                    if scenario.startswith("s"):
                        with client.stream(_prompt(scenario), model=f"m-{fmt}") as stream:
                            h.captured += [repr(c) for c in stream]
                        assert stream.response is not None
                        h.answered(stream.response)
                    else:
                        h.answered(client.query(_prompt(scenario), model=f"m-{fmt}", temperature=0))
                except mm.MultimodelError as exc:
                    h.failed(fmt, scenario, exc)
            h.captured.append(str(client.stats()))
    h.scan(caplog)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("key", list(ECHO_KEYS.values()), ids=list(ECHO_KEYS))
async def test_echoed_keys_of_any_shape_are_redacted_async(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, key: str
) -> None:
    caplog.set_level(logging.DEBUG)
    h = Harness(tmp_path, key)
    for scenario in SCENARIOS:
        async with mm.AsyncClient(**h.client_kwargs()) as client:
            h.watch(client)
            for fmt in FORMATS:
                try:
                    if scenario.startswith("s"):
                        async with client.stream(_prompt(scenario), model=f"m-{fmt}") as stream:
                            h.captured += [repr(c) async for c in stream]
                        assert stream.response is not None
                        h.answered(stream.response)
                    else:
                        h.answered(
                            await client.query(_prompt(scenario), model=f"m-{fmt}", temperature=0)
                        )
                except mm.MultimodelError as exc:
                    h.failed(fmt, scenario, exc)
            h.captured.append(str(client.stats()))
    h.scan(caplog)


def test_endpoint_secrets_cover_forms_and_credential_headers() -> None:
    from multimodel.providers._errors import endpoint_secrets
    from multimodel.providers.base import Endpoint

    endpoint = Endpoint(
        name="d",
        model="m",
        wire_model="m",
        provider="groq",
        base_url="https://x.test/v1",
        api_key=SecretStr('k"e/y+1 2\\3'),
        headers=(
            ("x-portkey-api-key", "pk-gateway-0001"),
            ("cf-aig-authorization", "Bearer cf-token-0002"),
            ("x-title", "My App"),
            ("x-short-key", "abc"),
        ),
    )
    secrets = endpoint_secrets(endpoint)
    assert secrets is endpoint_secrets(endpoint)  # computed once per endpoint
    assert 'k"e/y+1 2\\3' in secrets
    assert 'k\\"e/y+1 2\\\\3' in secrets  # inside JSON text
    assert "k%22e%2Fy%2B1%202%5C3" in secrets and "k%22e%2Fy%2B1+2%5C3" in secrets
    assert {"pk-gateway-0001", "Bearer cf-token-0002", "cf-token-0002"} <= set(secrets)
    assert "My App" not in secrets and "abc" not in secrets  # not credentials / too short
    assert [len(s) for s in secrets] == sorted((len(s) for s in secrets), reverse=True)
    # No process-wide state: another endpoint has only its own secrets.
    other = Endpoint(
        name="e",
        model="m",
        wire_model="m",
        provider="groq",
        base_url="https://x.test/v1",
        api_key=SecretStr("other-key-0003"),
    )
    assert endpoint_secrets(other) == ("other-key-0003",)


def test_an_error_built_without_secrets_is_redacted_when_recorded() -> None:
    """Whatever an adapter builds, the client redacts the deployment's secrets from it."""
    key = ECHO_KEYS["regex"]
    inner = mm.errors.ServerError(f"inner {key}", body={"k": [key]})
    outer = mm.errors.AuthenticationError(
        f"outer {key}", body={"error": {key: (key, {"x": key})}}, code=key, request_id=f"r-{key}"
    )
    outer.__cause__ = inner
    assert key in outer.message  # nothing recognized it as a key ...
    outer.redact_secrets([key])  # ... until the deployment's secrets were applied
    for error in (outer, inner):
        text = repr(vars(error)) + str(error) + repr(error)
        assert "LEAK" not in text and "[REDACTED]" in text
    assert outer.body == {"error": {"[REDACTED]": ["[REDACTED]", {"x": "[REDACTED]"}]}}
    assert (outer.code, outer.request_id) == ("[REDACTED]", "r-[REDACTED]")
