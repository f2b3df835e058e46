"""The fault matrix: what a misbehaving server does, on every wire format and every client.

A raw-socket :class:`~multimodel.testing.faults.FaultServer` drips bytes, resets connections,
stalls before headers or mid-body, sends only keep-alives, truncates or corrupts bodies, sends
error events and error statuses, and asks for a wait in seconds, milliseconds or as an HTTP
date. Each case runs on the sync client, on the async client on asyncio and on trio, as a
query and as a stream, for the OpenAI, Anthropic and Gemini formats. Every run must end
answered or with the expected typed error within its time limit plus a small margin; afterwards
the tracker holds nothing in flight, the accounting matches what the server saw, and the pool
(one connection, shared with a healthy deployment) serves the next call at once. The faults
that decide when a call ends run again over an ``httpx`` client of the caller's.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing.behavior import ResolvedUsage
from multimodel.testing.faults import FaultServer, Step, json_response, sse_head, trickle
from multimodel.testing.wire import RENDERERS, ErrorSpec, Reply, split_text

KEY = "sk-test-faults-0123456789"
FORMATS = ("openai", "anthropic", "gemini")
TEXT = "alpha beta gamma delta"
USAGE = ResolvedUsage(11, 4)
LIMIT = 0.6  # timeout and stream idle limit of every run
MARGIN = 0.7  # scheduling noise on a loaded 2-core machine
HANG = 30.0  # a stall: far longer than any limit


def reply() -> Reply:
    return Reply(
        model="m",
        text=TEXT,
        pieces=split_text(TEXT, 4),
        tool_calls=(),
        usage=USAGE,
        finish_reason=None,
        seq=1,
        include_usage=True,
    )


def answer(fmt: str) -> tuple[bytes, bytes]:
    return json_response(RENDERERS[fmt].body(reply()))


def stream_parts(fmt: str) -> tuple[bytes, list[bytes], bytes]:
    """The opening (head and opening events), one unit per content chunk, and the end."""
    plan = RENDERERS[fmt].stream(reply())
    return sse_head() + b"".join(plan.head), list(plan.body), b"".join(plan.tail)


def error(fmt: str, status: int, headers: tuple[tuple[str, str], ...] = ()) -> list[Step]:
    head, body = json_response(RENDERERS[fmt].error(ErrorSpec(status=status)), status, headers)
    return [Step(0.0, head + body)]


def good(fmt: str, stream: bool) -> list[Step]:
    if stream:
        opening, units, end = stream_parts(fmt)
        return [Step(0.0, opening + b"".join(units) + end)]
    head, body = answer(fmt)
    return [Step(0.0, head + body)]


Build = Callable[[str, bool], list[Step]]


@dataclass(frozen=True)
class Fault:
    name: str
    build: Build
    expect: type[BaseException] | tuple[type[BaseException], ...] | None  # None: answered
    ends_by: float  # seconds after the call starts
    modes: tuple[bool, ...] = (False, True)  # stream=False, stream=True
    retries: int = 0
    sleep: tuple[float, float] | None = None  # the back-off the trace must show
    fails: int = 1  # failed attempts the tracker must count


def drip(fmt: str, stream: bool) -> list[Step]:
    if stream:
        opening, units, end = stream_parts(fmt)
        return trickle(
            (sse_head(), opening[len(sse_head()) :] + b"".join(units) + end), size=4, interval=0.15
        )
    return trickle(answer(fmt), size=4, interval=0.15)


def stall_mid(fmt: str, stream: bool) -> list[Step]:
    if stream:
        opening, units, _ = stream_parts(fmt)
        return [Step(0.0, opening + units[0]), Step(HANG)]
    head, body = answer(fmt)
    return [Step(0.0, head + body[: len(body) // 2]), Step(HANG)]


def keepalive_only(fmt: str, stream: bool) -> list[Step]:
    return [Step(0.0, sse_head()), *[Step(0.1, b": keep-alive\n\n") for _ in range(300)]]


def truncated(fmt: str, stream: bool) -> list[Step]:
    if stream:
        opening, units, _ = stream_parts(fmt)
        return [Step(0.0, opening + units[0]), Step(0.05, close=True)]
    head, body = answer(fmt)
    return [Step(0.0, head + body[: len(body) // 2], close=True)]


def corrupt(fmt: str, stream: bool) -> list[Step]:
    if stream:
        return [Step(0.0, sse_head() + b"data: {not json\n\n"), Step(0.05, close=True)]
    head, _ = json_response(b"{not json")
    return [Step(0.0, head + b"{not json")]


def error_event(fmt: str, stream: bool) -> list[Step]:
    opening, _, _ = stream_parts(fmt)
    event = RENDERERS[fmt].stream_error(ErrorSpec(status=500))
    return [Step(0.0, opening + event), Step(0.05, close=True)]


def html_500(fmt: str, stream: bool) -> list[Step]:
    body = b"<html><body>502 Bad Gateway</body></html>"
    head = (
        f"HTTP/1.1 500 X\r\ncontent-type: text/html\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    return [Step(0.0, head + body)]


def redirect(fmt: str, stream: bool) -> list[Step]:
    # What an http:// base_url meets in front of an https:// API: not followed, not retried.
    head = b"HTTP/1.1 301 Moved Permanently\r\nlocation: https://api.example.test/v1\r\n"
    return [Step(0.0, head + b"content-length: 0\r\n\r\n")]


def status(code: int) -> Build:
    return lambda fmt, stream: error(fmt, code)


def http_date(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


FAULTS = [
    Fault("answer", good, None, 0.5),
    Fault("drip", drip, errors.ProviderTimeout, LIMIT),
    Fault(
        "reset", lambda fmt, stream: [Step(0.0, reset=True)], errors.ProviderConnectionError, 0.5
    ),
    Fault("stall before headers", lambda fmt, stream: [Step(HANG)], errors.ProviderTimeout, LIMIT),
    Fault("stall mid-body", stall_mid, (errors.ProviderTimeout, errors.StreamInterrupted), LIMIT),
    Fault("keep-alive only", keepalive_only, errors.ProviderTimeout, LIMIT, modes=(True,)),
    Fault("truncated", truncated, (errors.ProviderConnectionError, errors.StreamInterrupted), 0.5),
    Fault("corrupt", corrupt, errors.MalformedResponse, 0.5),
    Fault("error event", error_event, (errors.ServerError, errors.Overloaded), 0.5, modes=(True,)),
    Fault("500 with an HTML body", html_500, errors.ServerError, 0.5),
    Fault("301 redirect", redirect, errors.NotFoundError, 0.5, retries=1),
    Fault("400", status(400), errors.BadRequestError, 0.5),
    Fault("401", status(401), errors.AuthenticationError, 0.5),
    Fault("429", status(429), errors.RateLimited, 0.5),
    Fault("503", status(503), (errors.Overloaded, errors.ServerError), 0.5),
    Fault("529", status(529), errors.Overloaded, 0.5),
    Fault(
        "Retry-After in seconds",
        lambda fmt, s: error(fmt, 429, (("retry-after", "1"),)),
        None,
        1.0 + 0.5,
        retries=1,
        sleep=(0.95, 1.05),
    ),
    Fault(
        "Retry-After as an HTTP date",
        lambda fmt, s: error(fmt, 503, (("retry-after", http_date(2)),)),
        None,
        2.0 + 0.5,
        retries=1,
        sleep=(0.5, 2.05),
    ),
    Fault(
        "retry-after-ms",
        lambda fmt, s: error(fmt, 429, (("retry-after-ms", "300"),)),
        None,
        0.3 + 0.5,
        retries=1,
        sleep=(0.29, 0.31),
    ),
]

CASES = [
    pytest.param(fault, fmt, stream, id=f"{fmt}-{'stream' if stream else 'query'}-{fault.name}")
    for fault in FAULTS
    for fmt in FORMATS
    for stream in fault.modes
]


# Over an httpx client of the caller's (httpx's own transport, not multimodel's pool): the
# faults that test when a call ends (its reads are bounded by httpcore, not by multimodel).
HTTPX_FAULTS = ("answer", "drip", "stall before headers", "stall mid-body", "keep-alive only")
HTTPX_CASES = [
    pytest.param(fault, fmt, stream, id=f"{fmt}-{'stream' if stream else 'query'}-{fault.name}")
    for fault in FAULTS
    if fault.name in HTTPX_FAULTS
    for fmt in FORMATS
    for stream in fault.modes
]


def servers(fault: Fault, fmt: str, stream: bool) -> tuple[FaultServer, FaultServer]:
    """The faulty deployment (misbehaves on its first request, answers after) and a healthy
    one that shares the client's one-connection pool."""
    bad = fault.build(fmt, stream)
    retry = good(fmt, stream)
    return FaultServer(lambda n: bad if n == 0 else retry), FaultServer(good(fmt, False))


def options(
    fault: Fault, fmt: str, faulty: FaultServer, healthy: FaultServer, pool: Any
) -> dict[str, Any]:
    """The client's options; ``pool`` is multimodel's pool (a transport) or an httpx client."""
    transport = (
        {"http_client": pool}
        if isinstance(pool, httpx.Client | httpx.AsyncClient)
        else {"transport": pool}
    )
    return {
        "deployments": [
            mm.Deployment(
                model="m", provider=fmt, name="bad", api_key=KEY, base_url=faulty.base_url
            ),
            mm.Deployment(
                model="ok", provider=fmt, name="good", api_key=KEY, base_url=healthy.base_url
            ),
        ],
        "timeout": LIMIT,
        "stream_idle_timeout": LIMIT,
        "max_retries": fault.retries,
        # Room for the longest Retry-After (the default deadline is twice the timeout).
        "deadline": 5.0,
        "retry": mm.RetryPolicy(backoff_initial=0.01, backoff_max=0.01, jitter=0.0),
        **transport,
    }


@dataclass
class Result:
    elapsed: float
    error: BaseException | None
    text: str
    usage: Any
    trace: Any


def verify(fault: Fault, stream: bool, result: Result, client: Any, faulty: FaultServer) -> None:
    if fault.expect is None:
        assert result.error is None, repr(result.error)
        assert result.text == TEXT
        assert result.usage.input_tokens == USAGE.input_tokens
        assert result.usage.output_tokens == USAGE.output_tokens
    else:
        assert isinstance(result.error, fault.expect), repr(result.error)
        assert KEY not in str(result.error)
    assert result.elapsed <= fault.ends_by + MARGIN, result.elapsed
    if fault.sleep is not None:
        low, high = fault.sleep
        assert result.trace is not None and len(result.trace.sleeps) == 1
        assert low <= result.trace.sleeps[0] <= high, result.trace.sleeps
    stats = client.stats().deployments["bad"]
    assert stats.in_flight == 0
    assert stats.requests == faulty.requests  # every request the server saw, counted once
    answered = 0 if fault.expect is not None else 1
    assert stats.failures == faulty.requests - answered
    assert client.status()["good"] == "healthy"


@pytest.mark.parametrize(("fault", "fmt", "stream"), CASES)
def test_sync(fault: Fault, fmt: str, stream: bool) -> None:
    from multimodel._transports.pool import PoolTransport

    run_sync(fault, fmt, stream, PoolTransport(limits=httpx.Limits(max_connections=1)))


@pytest.mark.parametrize(("fault", "fmt", "stream"), HTTPX_CASES)
def test_sync_over_httpx(fault: Fault, fmt: str, stream: bool) -> None:
    with httpx.Client(limits=httpx.Limits(max_connections=1)) as http:
        run_sync(fault, fmt, stream, http)


def run_sync(fault: Fault, fmt: str, stream: bool, pool: Any) -> None:
    faulty, healthy = servers(fault, fmt, stream)
    with faulty, healthy, mm.Client(**options(fault, fmt, faulty, healthy, pool)) as client:
        started = time.monotonic()
        error: BaseException | None = None
        text, usage, trace = "", None, None
        try:
            if stream:
                with client.stream("hi", model="m") as s:
                    text = "".join(c.text for c in s)
                assert s.response is not None
                usage, trace = s.response.usage, s.response.trace
            else:
                response = client.query("hi", model="m")
                text, usage, trace = response.text, response.usage, response.trace
        except mm.MultimodelError as exc:
            error, trace = exc, exc.trace
        result = Result(time.monotonic() - started, error, text, usage, trace)
        # The one pooled connection is free again: the healthy deployment answers at once.
        assert client.query("hi", model="ok", timeout=2.0).text == TEXT
        verify(fault, stream, result, client, faulty)


@pytest.mark.anyio
@pytest.mark.parametrize(("fault", "fmt", "stream"), CASES)
async def test_async(fault: Fault, fmt: str, stream: bool) -> None:
    from multimodel._transports.pool import AsyncPoolTransport

    await run_async(fault, fmt, stream, AsyncPoolTransport(limits=httpx.Limits(max_connections=1)))


@pytest.mark.anyio
@pytest.mark.parametrize(("fault", "fmt", "stream"), HTTPX_CASES)
async def test_async_over_httpx(fault: Fault, fmt: str, stream: bool) -> None:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as http:
        await run_async(fault, fmt, stream, http)


async def run_async(fault: Fault, fmt: str, stream: bool, pool: Any) -> None:
    faulty, healthy = servers(fault, fmt, stream)
    with faulty, healthy:
        async with mm.AsyncClient(**options(fault, fmt, faulty, healthy, pool)) as client:
            started = time.monotonic()
            error: BaseException | None = None
            text, usage, trace = "", None, None
            try:
                if stream:
                    async with client.stream("hi", model="m") as s:
                        text = "".join([c.text async for c in s])
                    assert s.response is not None
                    usage, trace = s.response.usage, s.response.trace
                else:
                    response = await client.query("hi", model="m")
                    text, usage, trace = response.text, response.usage, response.trace
            except mm.MultimodelError as exc:
                error, trace = exc, exc.trace
            result = Result(time.monotonic() - started, error, text, usage, trace)
            assert (await client.query("hi", model="ok", timeout=2.0)).text == TEXT
            verify(fault, stream, result, client, faulty)
