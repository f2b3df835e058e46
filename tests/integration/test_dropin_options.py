"""``with_options`` as the OpenAI SDK has it (``timeout`` as seconds or an ``httpx.Timeout``,
``max_retries``, ``default_headers``), and the SDK's exception names at the top level.

Checked at the HTTP boundary (the mock server's recorded requests and its delays), on the sync
client and the async client on asyncio and trio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing import Behavior, MockDeployment

from .conftest import FAST_RETRY, KEY, Mock

BACKENDS = ["sync", "asyncio", "trio"]

SDK_NAMES = {
    "APIConnectionError": errors.ProviderConnectionError,
    "APIError": errors.ProviderError,
    "APIStatusError": errors.ProviderError,
    "APITimeoutError": errors.ProviderTimeout,
    "AuthenticationError": errors.AuthenticationError,
    "BadRequestError": errors.BadRequestError,
    "ConflictError": errors.ConflictError,
    "InternalServerError": errors.ServerError,
    "NotFoundError": errors.NotFoundError,
    "PermissionDeniedError": errors.PermissionDeniedError,
    "RateLimitError": errors.RateLimited,
    "UnprocessableEntityError": errors.BadRequestError,
}


def _drive(backend: str, mock: Mock, program: Callable[[Any], Any], **options: Any) -> Any:
    """Run ``program(client)`` (a coroutine function on the async client) on one backend,
    with multimodel's own pool (a foreign sync transport checks the idle limit only between
    body pieces)."""
    options.setdefault("retry", FAST_RETRY)
    if backend == "sync":
        with mm.Client([mock.dep("a")], **options) as client:
            return program(client)

    async def go() -> Any:
        async with mm.AsyncClient([mock.dep("a")], **options) as c:
            return await program(c)

    return anyio.run(go, backend=backend)


def test_sdk_exception_names_at_the_top_level() -> None:
    for name, cls in SDK_NAMES.items():
        assert getattr(mm, name) is cls, name
        assert name in mm.__all__


@pytest.mark.parametrize("backend", BACKENDS)
def test_except_rate_limit_error_catches_the_final_error(
    serve: Callable[..., Mock], backend: str
) -> None:
    mock = serve(a=MockDeployment("openai", Behavior(fail_rate=1.0, fail_status=429)))
    messages = [{"role": "user", "content": "hi"}]

    def sync_program(client: Any) -> Any:
        try:
            client.chat.completions.create(model="m", messages=messages)
        except mm.RateLimitError as exc:  # as written for the OpenAI SDK
            return exc
        return None

    async def async_program(client: Any) -> Any:
        try:
            await client.chat.completions.create(model="m", messages=messages)
        except mm.RateLimitError as exc:
            return exc
        return None

    program = sync_program if backend == "sync" else async_program
    caught = _drive(backend, mock, program, max_retries=2)
    assert caught is not None and caught.status_code == 429
    assert isinstance(caught, mm.APIStatusError) and isinstance(caught, mm.AllAttemptsFailed)
    assert mock.count("a") == 3 and len(caught.errors) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_options_httpx_timeout_bounds_the_attempt(
    serve: Callable[..., Mock], backend: str
) -> None:
    """``httpx.Timeout(0.3, connect=0.1)``: the attempt may take the largest limit, 0.3 s."""
    mock = serve(a=MockDeployment("openai", Behavior(latency=3.0)))
    timeout = httpx.Timeout(0.3, connect=0.1)

    def sync_program(client: Any) -> Any:
        with pytest.raises(mm.APITimeoutError):
            client.with_options(timeout=timeout, max_retries=0).query("hi")

    async def async_program(client: Any) -> Any:
        with pytest.raises(mm.APITimeoutError):
            await client.with_options(timeout=timeout, max_retries=0).query("hi")

    start = time.perf_counter()
    _drive(backend, mock, sync_program if backend == "sync" else async_program, timeout=30)
    assert time.perf_counter() - start < 2.5
    assert mock.count("a") == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_options_httpx_read_timeout_is_the_stream_idle_limit(
    serve: Callable[..., Mock], backend: str
) -> None:
    """The SDK's per-read limit is the wait for a stream's next piece: a stream that pauses
    1.5 s between chunks fails under ``read=0.3`` though the attempt may take 10 s."""
    mock = serve(a=MockDeployment("openai", Behavior(text="a b c", chunk_interval=1.5)))
    timeout = httpx.Timeout(10.0, read=0.3)

    def sync_program(client: Any) -> Any:
        with (
            pytest.raises(mm.MultimodelError, match="(?i)idle|no content|timed? ?out"),
            client.with_options(timeout=timeout, max_retries=0).stream("hi") as stream,
        ):
            for _ in stream:
                pass

    async def async_program(client: Any) -> Any:
        with pytest.raises(mm.MultimodelError, match="(?i)idle|no content|timed? ?out"):
            async with client.with_options(timeout=timeout, max_retries=0).stream("hi") as s:
                async for _ in s:
                    pass

    start = time.perf_counter()
    _drive(backend, mock, sync_program if backend == "sync" else async_program, timeout=30)
    assert time.perf_counter() - start < 2.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_options_default_headers_reach_every_request(
    serve: Callable[..., Mock], backend: str
) -> None:
    mock = serve(a=MockDeployment("openai"))
    messages = [{"role": "user", "content": "hi"}]

    def sync_program(client: Any) -> Any:
        tagged = client.with_options(default_headers={"X-Team": "search"})
        tagged = tagged.with_options(default_headers={"X-Trace": "t1"}, max_retries=1)
        tagged.query("hi")
        tagged.chat.completions.create(model="m", messages=messages)
        with tagged.stream("hi") as stream:
            list(stream)
        tagged.chat.completions.with_raw_response.create(model="m", messages=messages)
        client.query("hi")  # the original client: unchanged

    async def async_program(client: Any) -> Any:
        tagged = client.with_options(default_headers={"X-Team": "search"})
        tagged = tagged.with_options(default_headers={"X-Trace": "t1"}, max_retries=1)
        await tagged.query("hi")
        await tagged.chat.completions.create(model="m", messages=messages)
        async with tagged.stream("hi") as stream:
            [c async for c in stream]
        await tagged.chat.completions.with_raw_response.create(model="m", messages=messages)
        await client.query("hi")

    _drive(backend, mock, sync_program if backend == "sync" else async_program)
    received = [r.headers for r in mock.server.requests("a")]
    assert len(received) == 5
    for headers in received[:4]:
        assert headers["x-team"] == "search" and headers["x-trace"] == "t1"
        assert headers["authorization"] == f"Bearer {KEY}"
    assert "x-team" not in received[4] and "x-trace" not in received[4]


def test_with_options_checks_its_values() -> None:
    deployment = mm.Deployment(model="m", provider="openai", api_key=KEY)
    with mm.Client([deployment]) as client:
        with pytest.raises(mm.ConfigError, match="sets no limit"):
            client.with_options(timeout=httpx.Timeout(None))
        with pytest.raises(mm.ConfigError, match="timeout must be > 0"):
            client.with_options(timeout=0)
        with pytest.raises(mm.ConfigError, match="default_headers"):
            client.with_options(default_headers={"x-n": 1})  # type: ignore[dict-item]
