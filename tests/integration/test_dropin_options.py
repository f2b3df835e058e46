"""``with_options`` as the OpenAI SDK has it (``timeout`` as seconds or an ``httpx.Timeout``,
``max_retries``, ``default_headers``, ``default_query``), the SDK's per-call ``extra_headers``
and ``extra_query``, and the SDK's exception names at the top level.

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


def _drive(
    backend: str, mock: Mock, program: Callable[[Any], Any], name: str = "a", **options: Any
) -> Any:
    """Run ``program(client)`` (a coroutine function on the async client) on one backend,
    with multimodel's own pool (a foreign sync transport checks the idle limit only between
    body pieces)."""
    options.setdefault("retry", FAST_RETRY)
    if backend == "sync":
        with mm.Client([mock.dep(name)], **options) as client:
            return program(client)

    async def go() -> Any:
        async with mm.AsyncClient([mock.dep(name)], **options) as c:
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
@pytest.mark.parametrize(
    ("behavior", "caught", "not_caught"),
    [
        # every attempt a 503: the SDK's InternalServerError (>= 500) catches it
        (Behavior(fail_rate=1.0, fail_status=503, retry_after=0.001), "InternalServerError", ()),
        # a 500 then a 503: one family, a ServerError that is not an Overloaded
        (Behavior(script=[500, 503]), "InternalServerError", (errors.Overloaded,)),
        # timeouts: the SDK's APIConnectionError catches its APITimeoutError
        (Behavior(latency=3.0), "APIConnectionError", ()),
    ],
    ids=["503s", "500-then-503", "timeouts"],
)
def test_sdk_except_clauses_catch_the_final_error(
    serve: Callable[..., Mock],
    backend: str,
    behavior: Behavior,
    caught: str,
    not_caught: tuple[type[BaseException], ...],
) -> None:
    mock = serve(a=MockDeployment("openai", behavior))
    sdk_class = getattr(mm, caught)
    messages = [{"role": "user", "content": "hi"}]

    def sync_program(client: Any) -> Any:
        try:
            client.chat.completions.create(model="m", messages=messages, timeout=0.3)
        except sdk_class as exc:
            return exc
        return None

    async def async_program(client: Any) -> Any:
        try:
            await client.chat.completions.create(model="m", messages=messages, timeout=0.3)
        except sdk_class as exc:
            return exc
        return None

    program = sync_program if backend == "sync" else async_program
    exc = _drive(backend, mock, program, max_retries=1)
    assert isinstance(exc, mm.AllAttemptsFailed) and len(exc.errors) == 2
    assert mock.count("a") == 2
    assert not isinstance(exc, not_caught)
    if caught == "APIConnectionError":
        assert isinstance(exc, mm.APITimeoutError) and exc.status_code is None
    else:
        assert isinstance(exc, errors.ServerError) and exc.status_code == 503  # the last attempt's


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
def test_a_per_call_httpx_timeout_bounds_the_attempt(
    serve: Callable[..., Mock], backend: str
) -> None:
    """``create(timeout=httpx.Timeout(0.3, connect=0.1))``, as SDK code passes it per call: this
    call's attempt may take 0.3 s, and the client's own limit is left as it was."""
    mock = serve(a=MockDeployment("openai", Behavior(latency=3.0)))
    timeout = httpx.Timeout(0.3, connect=0.1)
    messages = [{"role": "user", "content": "hi"}]

    def sync_program(client: Any) -> Any:
        with pytest.raises(mm.APITimeoutError):
            client.chat.completions.create(model="m", messages=messages, timeout=timeout)
        assert client._timeout == 60.0

    async def async_program(client: Any) -> Any:
        with pytest.raises(mm.APITimeoutError):
            await client.chat.completions.create(model="m", messages=messages, timeout=timeout)
        assert client._timeout == 60.0

    start = time.perf_counter()
    program = sync_program if backend == "sync" else async_program
    _drive(backend, mock, program, timeout=60.0, max_retries=0)
    assert time.perf_counter() - start < 2.5
    assert mock.count("a") == 1


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_a_call_timeout_that_is_not_finite_seconds_is_refused_before_sending(
    serve: Callable[..., Mock], bad: Any
) -> None:
    # 0 used to mean the client's limit, a negative one ended the call as a provider timeout,
    # nan and inf raised ValueError and OverflowError.
    mock = serve(a=MockDeployment("openai"))
    messages = [{"role": "user", "content": "hi"}]
    with mm.Client([mock.dep("a")], retry=FAST_RETRY) as client:
        calls: list[Callable[[], Any]] = [
            lambda: client.query("hi", timeout=bad),
            lambda: client.stream("hi", timeout=bad),
            lambda: client.chat.completions.create(model="m", messages=messages, timeout=bad),
            lambda: client.embed("hi", timeout=bad),
        ]
        for call in calls:
            with pytest.raises(mm.InvalidRequestError, match="finite number of seconds") as exc:
                call()
            assert exc.value.field == "timeout"
        with pytest.raises(mm.InvalidRequestError, match="with_options"):
            client.query("hi", timeout=httpx.Timeout(5.0))  # type: ignore[arg-type]

    async def go() -> None:
        async with mm.AsyncClient([mock.dep("a")], retry=FAST_RETRY) as c:
            with pytest.raises(mm.InvalidRequestError, match="finite number of seconds"):
                await c.query("hi", timeout=bad)

    anyio.run(go)
    assert mock.count("a") == 0


@pytest.mark.parametrize("field", ["timeout", "deadline", "stream_idle_timeout"])
def test_an_infinite_client_limit_is_a_config_error(field: str) -> None:
    deployment = mm.Deployment(model="m", provider="openai", api_key=KEY)
    with pytest.raises(mm.ConfigError, match=f"{field}: Input should be a finite number"):
        options: dict[str, Any] = {field: float("inf")}
        mm.Client([deployment], **options)
    with pytest.raises(mm.ConfigError, match="timeout: Input should be a finite number"):
        mm.Deployment(model="m", provider="openai", api_key=KEY, timeout=float("inf"))


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
        for bad in (0, -1, float("nan"), float("inf"), "5"):
            with pytest.raises(mm.ConfigError, match="finite number of seconds > 0"):
                client.with_options(timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(mm.ConfigError, match="default_headers"):
            client.with_options(default_headers={"x-n": 1})  # type: ignore[dict-item]


# -- the SDK's per-call extra_headers / extra_query ------------------------------------------

HEADERS = {"X-Title": "my-app", "HTTP-Referer": "https://example.com"}
QUERY = {"tag": "t1", "beta": True}


@pytest.mark.parametrize("backend", BACKENDS)
def test_extra_headers_and_extra_query_reach_this_call_only(
    serve: Callable[..., Mock], fmt: Any, backend: str
) -> None:
    """Each surface (create, its stream, with_raw_response, parse, query, stream) sends the
    call's headers and query parameters beside the deployment's own, on every wire format; the
    next call without them sends neither."""
    mock = serve(d=MockDeployment(fmt, Behavior(text='{"a": 1}')))
    messages = [{"role": "user", "content": "hi"}]
    extra: dict[str, Any] = {"extra_headers": HEADERS, "extra_query": QUERY}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}

    def sync_program(client: Any) -> Any:
        completions = client.chat.completions
        completions.create(model="m", messages=messages, **extra)
        with completions.create(model="m", messages=messages, stream=True, **extra) as stream:
            list(stream)
        completions.with_raw_response.create(model="m", messages=messages, **extra)
        completions.parse(model="m", messages=messages, response_format=schema, **extra)
        client.query("hi", **extra)
        with client.stream("hi", **extra) as s:
            list(s)
        client.query("hi")  # without: nothing sticks

    async def async_program(client: Any) -> Any:
        completions = client.chat.completions
        await completions.create(model="m", messages=messages, **extra)
        stream = await completions.create(model="m", messages=messages, stream=True, **extra)
        async with stream:
            [c async for c in stream]
        await completions.with_raw_response.create(model="m", messages=messages, **extra)
        await completions.parse(model="m", messages=messages, response_format=schema, **extra)
        await client.query("hi", **extra)
        async with client.stream("hi", **extra) as s:
            [c async for c in s]
        await client.query("hi")

    _drive(backend, mock, sync_program if backend == "sync" else async_program, name="d")
    received = mock.server.requests("d")
    assert len(received) == 7
    for request in received[:6]:
        assert request.headers["x-title"] == "my-app"
        assert request.headers["http-referer"] == "https://example.com"
        assert {"tag": "t1", "beta": "true"}.items() <= request.query.items()
        assert (
            "x-goog-api-key" in request.headers
            or "authorization" in request.headers
            or ("x-api-key" in request.headers)
        )  # the deployment's own credentials still go
    if fmt == "gemini":  # the format's own query parameter stays beside the caller's
        assert received[1].query["alt"] == "sse" and received[5].query["alt"] == "sse"
    assert "x-title" not in received[6].headers and "tag" not in received[6].query


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_query_merges_with_the_deployments_own(
    serve: Callable[..., Mock], backend: str
) -> None:
    """Azure's ``api-version`` stays; ``with_options(default_query=...)`` adds to it."""
    mock = serve(a=MockDeployment("openai"))
    azure = mm.Deployment(
        model="m",
        provider="azure",
        provider_model="prod",
        api_version="2024-10-21",
        api_key=KEY,
        base_url=mock.server.url + "/a",
    )

    def sync_program(client: Any) -> Any:
        client.with_options(default_query={"team": "search"}).query("hi")

    async def async_program(client: Any) -> Any:
        await client.with_options(default_query={"team": "search"}).query("hi")

    if backend == "sync":
        with mm.Client([azure], retry=FAST_RETRY) as client:
            sync_program(client)
    else:

        async def go() -> None:
            async with mm.AsyncClient([azure], retry=FAST_RETRY) as client:
                await async_program(client)

        anyio.run(go, backend=backend)
    (request,) = mock.server.requests("a")
    assert request.path == "/a/openai/deployments/prod/chat/completions"
    assert request.query == {"api-version": "2024-10-21", "team": "search"}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"extra_headers": {"x-n": 1}}, "extra_headers"),
        ({"extra_headers": "x-n: 1"}, "extra_headers"),
        ({"extra_query": {"ids": [1, 2]}}, "extra_query"),
        ({"extra_query": "a=1"}, "extra_query"),
    ],
)
def test_wrong_extra_values_are_refused_before_sending(
    serve: Callable[..., Mock], extra: dict[str, Any], field: str
) -> None:
    mock = serve(a=MockDeployment("openai"))
    messages = [{"role": "user", "content": "hi"}]
    with mm.Client([mock.dep("a")], retry=FAST_RETRY) as client:
        with pytest.raises(mm.InvalidRequestError, match=field) as caught:
            client.chat.completions.create(model="m", messages=messages, **extra)
        assert caught.value.field == field
        with pytest.raises(mm.InvalidRequestError, match=field):
            client.query("hi", **extra)
        with pytest.raises(mm.ConfigError, match="query parameter"):
            client.with_options(default_query={"ids": [1]})  # type: ignore[dict-item]
    assert mock.count("a") == 0
