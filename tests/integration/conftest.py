"""End-to-end harness: one runner per client kind, returning normalized results.

The ``runner`` fixture is parametrized over the sync client and the async client on asyncio
and on trio. Every runner exposes the same methods (``query``, ``stream``, ``compat``,
``batch``); each builds its client, performs the call over real sockets against a
:class:`~multimodel.testing.MockProviderServer` and returns an :class:`Outcome`, so one
scenario table runs unchanged on every client.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

import multimodel as mm
from multimodel.testing import MockDeployment, MockProviderServer

KEY = "sk-test-e2e-0123456789"
FORMATS = ("openai", "anthropic", "gemini")
FAST_RETRY = mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.002, jitter=0.0)
# Every httpx client would otherwise load the system CA bundle (~0.1 s each); the mock server
# speaks plain HTTP, so one shared TLS context without CA certificates keeps clients cheap.
_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def sync_transport() -> httpx.HTTPTransport:
    return httpx.HTTPTransport(verify=_TLS)


def async_transport() -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(verify=_TLS)


class Mock:
    """A started mock server and the wire format of each of its deployments."""

    def __init__(self, server: MockProviderServer, formats: Mapping[str, str]) -> None:
        self.server = server
        self.formats = dict(formats)

    def dep(self, name: str, model: str = "m") -> mm.Deployment:
        """The client deployment for mock deployment ``name`` (provider = its wire format)."""
        return mm.Deployment(
            model=model,
            provider=self.formats[name],
            name=name,
            base_url=self.server.base_url(name),
            api_key=KEY,
        )

    def deps(self, *names: str) -> list[mm.Deployment]:
        return [self.dep(n) for n in names]

    def body(self, name: str, index: int = -1) -> Any:
        """The JSON body of a request ``name`` received."""
        return self.server.requests(name)[index].body

    def count(self, name: str) -> int:
        return self.server.stats(name).requests


@dataclass
class Outcome:
    """What one call produced, the same shape whichever client ran it."""

    response: Any = None  # ChatResponse, ChatCompletion, or None
    error: BaseException | None = None
    chunks: list[Any] = field(default_factory=list)  # ChatChunk / ChatCompletionChunk
    trace: Any = None
    in_flight: dict[str, int] = field(default_factory=dict)  # tracker, after the call
    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)  # tracker (in, out)
    failures: dict[str, int] = field(default_factory=dict)  # tracker, failed attempts
    batch: list[Any] = field(default_factory=list)
    elapsed: float = 0.0  # seconds the whole call took

    @property
    def texts(self) -> list[str]:
        """Non-empty chunk texts in order."""
        out = []
        for c in self.chunks:
            text = getattr(c, "text", None)
            if text is None:  # an OpenAI-shaped chunk
                text = "".join(ch.delta.content or "" for ch in c.choices)
            if text:
                out.append(text)
        return out

    def ok(self) -> Any:
        if self.error is not None:
            raise AssertionError(f"expected success, got {self.error!r}") from self.error
        return self.response


def _after(client: Any, out: Outcome) -> None:
    for ep in client.deployments:
        stats = client.tracker.get(ep.name)
        out.in_flight[ep.name] = stats.in_flight
        out.tokens[ep.name] = (stats.input_tokens, stats.output_tokens)
        out.failures[ep.name] = stats.failures


def _trace_of(exc: BaseException) -> Any:
    return getattr(exc, "trace", None)


class SyncRunner:
    """Runs calls on :class:`multimodel.Client`."""

    kind = "sync"

    def __init__(self) -> None:
        self.client: Any = None

    def _client(self, deployments: Sequence[mm.Deployment], **options: Any) -> mm.Client:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("transport", sync_transport())
        client = self.client = mm.Client(deployments=list(deployments), **options)
        return client

    def query(
        self,
        deployments: Sequence[mm.Deployment],
        prompt: Any = "hello there",
        *,
        options: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Outcome:
        out = Outcome()
        with self._client(deployments, **(options or {})) as client:
            try:
                out.response = client.query(prompt, model="m", **params)
                out.trace = out.response.trace
            except mm.MultimodelError as exc:
                out.error, out.trace = exc, _trace_of(exc)
            _after(client, out)
        return out

    def stream(
        self,
        deployments: Sequence[mm.Deployment],
        prompt: Any = "hello there",
        *,
        options: Mapping[str, Any] | None = None,
        stop_after: int | None = None,
        probe: Callable[[Any], None] | None = None,
        **params: Any,
    ) -> Outcome:
        out = Outcome()
        with self._client(deployments, **(options or {})) as client:
            start = time.perf_counter()
            try:
                with client.stream(prompt, model="m", **params) as s:
                    for chunk in s:
                        out.chunks.append(chunk)
                        if stop_after is not None and len(out.texts) >= stop_after:
                            break
                out.response = s.response
                out.trace = s.trace
            except mm.MultimodelError as exc:
                out.error, out.trace = exc, _trace_of(exc)
            out.elapsed = time.perf_counter() - start
            _after(client, out)
            if probe is not None:
                probe(client)
        return out

    def compat(
        self, deployments: Sequence[mm.Deployment], *, stream: bool, **kwargs: Any
    ) -> Outcome:
        out = Outcome()
        messages = [{"role": "user", "content": "hello there"}]
        with self._client(deployments) as client:
            create: Any = client.chat.completions.create
            result = create(model="m", messages=messages, stream=stream, **kwargs)
            if stream:
                out.chunks = list(result)
            else:
                out.response = result
            _after(client, out)
        return out

    def batch(self, deployments: Sequence[mm.Deployment], items: list[Any], **kw: Any) -> Outcome:
        with self._client(deployments, max_retries=0) as client:
            return Outcome(batch=client.batch(items, model="m", **kw))


class AsyncRunner:
    """Runs calls on :class:`multimodel.AsyncClient`, inside ``anyio.run`` on one backend."""

    def __init__(self, backend: str) -> None:
        self.kind = backend
        self.client: Any = None

    def _run(self, fn: Callable[[], Awaitable[Outcome]]) -> Outcome:
        return anyio.run(fn, backend=self.kind)

    def _client(self, deployments: Sequence[mm.Deployment], **options: Any) -> mm.AsyncClient:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("transport", async_transport())
        client = self.client = mm.AsyncClient(deployments=list(deployments), **options)
        return client

    def query(
        self,
        deployments: Sequence[mm.Deployment],
        prompt: Any = "hello there",
        *,
        options: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Outcome:
        async def go() -> Outcome:
            out = Outcome()
            async with self._client(deployments, **(options or {})) as client:
                try:
                    out.response = await client.query(prompt, model="m", **params)
                    out.trace = out.response.trace
                except mm.MultimodelError as exc:
                    out.error, out.trace = exc, _trace_of(exc)
                _after(client, out)
            return out

        return self._run(go)

    def stream(
        self,
        deployments: Sequence[mm.Deployment],
        prompt: Any = "hello there",
        *,
        options: Mapping[str, Any] | None = None,
        stop_after: int | None = None,
        probe: Callable[[Any], None] | None = None,
        **params: Any,
    ) -> Outcome:
        async def go() -> Outcome:
            out = Outcome()
            async with self._client(deployments, **(options or {})) as client:
                start = time.perf_counter()
                try:
                    async with client.stream(prompt, model="m", **params) as s:
                        async for chunk in s:
                            out.chunks.append(chunk)
                            if stop_after is not None and len(out.texts) >= stop_after:
                                break
                    out.response = s.response
                    out.trace = s.trace
                except mm.MultimodelError as exc:
                    out.error, out.trace = exc, _trace_of(exc)
                out.elapsed = time.perf_counter() - start
                _after(client, out)
                if probe is not None:
                    probe(client)  # synchronous on purpose: it only polls counters
            return out

        return self._run(go)

    def compat(
        self, deployments: Sequence[mm.Deployment], *, stream: bool, **kwargs: Any
    ) -> Outcome:
        async def go() -> Outcome:
            out = Outcome()
            messages = [{"role": "user", "content": "hello there"}]
            async with self._client(deployments) as client:
                result: Any = await client.chat.completions.create(
                    model="m", messages=messages, stream=stream, **kwargs
                )
                if stream:
                    out.chunks = [c async for c in result]
                else:
                    out.response = result
                _after(client, out)
            return out

        return self._run(go)

    def batch(self, deployments: Sequence[mm.Deployment], items: list[Any], **kw: Any) -> Outcome:
        async def go() -> Outcome:
            async with self._client(deployments, max_retries=0) as client:
                return Outcome(batch=await client.batch(items, model="m", **kw))

        return self._run(go)


@pytest.fixture(params=["sync", "asyncio", "trio"])
def runner(request: pytest.FixtureRequest) -> SyncRunner | AsyncRunner:
    """A sync runner, or an async runner on asyncio or trio."""
    return SyncRunner() if request.param == "sync" else AsyncRunner(str(request.param))


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    """A wire format."""
    return str(request.param)


@pytest.fixture
def serve(mock_server_factory: Callable[..., MockProviderServer]) -> Callable[..., Mock]:
    """``serve(name=MockDeployment, ...)``: a started server (stopped at teardown)."""

    def start(**deployments: MockDeployment) -> Mock:
        server = mock_server_factory(deployments)
        return Mock(server, {n: d.format for n, d in deployments.items()})

    return start
