"""One time-limit rule on both clients, against a server that misbehaves on purpose.

``timeout`` bounds one whole attempt (connect, headers and body; for a stream, the wait for its
first content), ``deadline`` the whole call, and a stream's idle limit the wait for more content
(keep-alive comments do not count). Each scenario runs on the sync client (multimodel's pool and
httpx's) and on the async client (asyncio, also over aiohttp, and trio), and must end, typed,
when its limit says — not when the server is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing.faults import (
    FaultServer,
    Step,
    json_response,
    openai_completion,
    pieces,
    sse_events,
    sse_head,
    trickle,
)

KEY = "sk-test-limits-0123456789"
MARGIN = 0.6  # scheduling noise on a loaded 2-core CI machine
FAST_RETRY = mm.RetryPolicy(backoff_initial=0.05, backoff_max=0.05, jitter=0.0)


def chunk(text: str) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


@dataclass
class Case:
    name: str
    script: list[Step]
    options: dict[str, Any]
    stream: bool
    ends_at: float  # seconds after the call starts
    error: type[BaseException] | tuple[type[BaseException], ...] | None
    text: str = field(default="")  # what the caller received, for a successful case


BODY = json_response(openai_completion("ok"))
KEEPALIVES = [Step(0.2, b": keep-alive\n\n") for _ in range(100)]
CASES = [
    Case(
        "body in 7 pieces 0.3 s apart, timeout 1",
        pieces(BODY, count=7, interval=0.3),
        {"timeout": 1.0, "max_retries": 0},
        stream=False,
        ends_at=1.0,
        error=errors.ProviderTimeout,
    ),
    Case(
        "body in 7 pieces 0.1 s apart, timeout 1 (answers)",
        pieces(BODY, count=7, interval=0.1),
        {"timeout": 1.0, "max_retries": 0},
        stream=False,
        ends_at=0.7,
        error=None,
        text="ok",
    ),
    Case(
        "body trickling 4 bytes every 0.5 s, timeout 2, deadline 3",
        trickle(BODY, size=4, interval=0.5),
        {"timeout": 2.0, "deadline": 3.0, "retry": FAST_RETRY},
        stream=False,
        ends_at=3.0,
        error=(errors.ProviderTimeout, errors.AllAttemptsFailed),
    ),
    Case(
        "stream of keep-alives only, timeout 1",
        [Step(0.0, sse_head()), *KEEPALIVES],
        {"timeout": 1.0, "max_retries": 0},
        stream=True,
        ends_at=1.0,
        error=errors.ProviderTimeout,
    ),
    Case(
        "stream goes quiet (keep-alives) after content, idle limit 0.8",
        [Step(0.0, sse_head() + sse_events([chunk("hi")])), *KEEPALIVES],
        {"timeout": 5.0, "stream_idle_timeout": 0.8},
        stream=True,
        ends_at=0.8,
        error=errors.StreamInterrupted,
    ),
    Case(
        "stream delivers steadily for 20 s, deadline 1.5",
        [Step(0.0, sse_head()), *[Step(0.1, sse_events([chunk("tick ")])) for _ in range(200)]],
        {"timeout": 5.0, "deadline": 1.5},
        stream=True,
        ends_at=1.5,
        error=errors.StreamInterrupted,
    ),
]


def make(cls: type[Any], server: FaultServer, case: Case, **kw: Any) -> Any:
    options = {"retry": FAST_RETRY, **case.options, **kw}
    deployment = mm.Deployment(
        model="m", provider="openai", name="f", base_url=server.base_url, api_key=KEY
    )
    return cls(deployments=[deployment], **options)


def check(case: Case, elapsed: float, error: BaseException | None, text: str) -> None:
    if case.error is None:
        assert error is None, repr(error)
        assert text == case.text
    else:
        assert isinstance(error, case.error), repr(error)
        assert KEY not in str(error)
    assert case.ends_at - 0.1 <= elapsed <= case.ends_at + MARGIN, elapsed


def run_sync(case: Case, **kw: Any) -> None:
    with FaultServer(case.script) as server, make(mm.Client, server, case, **kw) as client:
        error: BaseException | None = None
        text = ""
        started = time.monotonic()
        try:
            if case.stream:
                with client.stream("hi", model="m") as stream:
                    text = "".join(c.text for c in stream)
            else:
                text = client.query("hi", model="m").text
        except mm.MultimodelError as exc:
            error = exc
        elapsed = time.monotonic() - started
    check(case, elapsed, error, text)
    if isinstance(error, errors.StreamInterrupted):
        assert error.partial_text  # what the caller already had


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("transport", [None, "httpx"], ids=["own-pool", "httpx-pool"])
def test_sync(case: Case, transport: str | None) -> None:
    run_sync(case, transport=transport)


async def run_async(case: Case, **kw: Any) -> None:
    with FaultServer(case.script) as server:
        async with make(mm.AsyncClient, server, case, **kw) as client:
            error: BaseException | None = None
            text = ""
            started = time.monotonic()
            try:
                if case.stream:
                    async with client.stream("hi", model="m") as stream:
                        text = "".join([c.text async for c in stream])
                else:
                    text = (await client.query("hi", model="m")).text
            except mm.MultimodelError as exc:
                error = exc
            elapsed = time.monotonic() - started
    check(case, elapsed, error, text)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_async(case: Case) -> None:
    await run_async(case)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_async_over_aiohttp(case: Case, anyio_backend: str) -> None:
    pytest.importorskip("aiohttp", reason="needs the aiohttp extra")
    await run_async(case, transport="aiohttp")


def test_the_stream_releases_its_attempt_when_the_deadline_ends_it() -> None:
    """The call's own deadline is not the provider's failure: no error is counted."""
    case = CASES[-1]
    with FaultServer(case.script) as server, make(mm.Client, server, case) as client:
        with pytest.raises(errors.StreamInterrupted), client.stream("hi", model="m") as stream:
            for _ in stream:
                pass
        stats = client.stats().deployments["f"]
    assert stats.in_flight == 0
    assert client.status()["f"] == "healthy"


def test_without_a_deadline_a_call_waits_at_most_twice_its_timeout() -> None:
    """The default deadline (2 x timeout) bounds retries, back-offs and waits for a recovery."""
    from multimodel.testing.fake import FakeProvider, FakeReply

    fake = FakeProvider(FakeReply(500))
    deployment = mm.Deployment(
        model="m", provider="openai", name="f", base_url="https://f.test/v1", api_key=KEY
    )
    with mm.Client(
        deployments=[deployment],
        transport=fake,
        timeout=0.5,
        circuit=mm.CircuitPolicy(failure_threshold=1, cooldown=30.0),
    ) as client:
        with pytest.raises(mm.MultimodelError):
            client.query("hi", model="m")  # opens the breaker for 30 s
        started = time.monotonic()
        with pytest.raises(mm.MultimodelError):
            client.query("hi", model="m")  # would wait 30 s for the recovery
        assert time.monotonic() - started <= 2 * 0.5 + 0.3


def test_the_default_deadline_does_not_cut_a_stream_that_is_delivering() -> None:
    script = [Step(0.0, sse_head()), *[Step(0.1, sse_events([chunk("t ")])) for _ in range(14)]]
    script.append(
        Step(
            0.0,
            sse_events(
                [
                    {**chunk(""), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    "[DONE]",
                ]
            ),
            close=True,
        )
    )
    with FaultServer(script) as server:
        deployment = mm.Deployment(
            model="m", provider="openai", name="f", base_url=server.base_url, api_key=KEY
        )
        with mm.Client(deployments=[deployment], timeout=0.5) as client:
            started = time.monotonic()
            with client.stream("hi", model="m") as stream:
                text = "".join(c.text for c in stream)
            assert time.monotonic() - started > 2 * 0.5  # longer than the default deadline
    assert text == "t " * 14
