"""Streams the caller stops or drops: the connection and the attempt are released, what the
provider bills is recorded (estimated, marked so), and the client keeps working. Over real
sockets, on the sync client and the async client (asyncio and trio)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing import Behavior, MockDeployment
from multimodel.testing.fixtures import MockServerFactory

KEY = "sk-test-release-0123456789"
TEXT = " ".join(f"word{i}" for i in range(40))
DROPS = 200  # more than the pool's 100 connections


def fleet(factory: MockServerFactory) -> list[mm.Deployment]:
    server = factory(
        {"s": MockDeployment(format="openai", behavior=Behavior(text=TEXT, chunks=40))}
    )
    return [
        mm.Deployment(
            model="gpt-4o-mini",
            provider="openai",
            name="s",
            api_key=KEY,
            base_url=server.base_url("s"),
        )
    ]


def check_healthy(client: Any, requests: int) -> None:
    stats = client.stats().deployments["s"]
    assert stats.in_flight == 0
    assert stats.failures == 0
    assert stats.requests == requests
    assert client.status() == {"s": "healthy"}


def test_sync_dropped_streams_release_their_connection(
    mock_server_factory: MockServerFactory,
) -> None:
    with mm.Client(deployments=fleet(mock_server_factory), timeout=5) as client:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(DROPS):
                for _chunk in client.stream("hi"):
                    break
        assert caught and all(w.category is ResourceWarning for w in caught)
        assert __file__ in str(caught[0].message)  # names where the stream was opened
        assert client.query("hi").text == TEXT
        check_healthy(client, DROPS + 1)


@pytest.mark.anyio
async def test_async_dropped_streams_release_their_connection(
    mock_server_factory: MockServerFactory,
) -> None:
    async with mm.AsyncClient(deployments=fleet(mock_server_factory), timeout=5) as client:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(DROPS):
                async for _chunk in client.stream("hi"):
                    break
        assert caught and all(w.category is ResourceWarning for w in caught)
        assert (await client.query("hi")).text == TEXT
        check_healthy(client, DROPS + 1)


def test_a_stopped_stream_is_billed_estimated_and_not_a_failure(
    mock_server_factory: MockServerFactory, tmp_path: Path
) -> None:
    ledger = tmp_path / "usage.sqlite3"
    with mm.Client(deployments=fleet(mock_server_factory), ledger=str(ledger)) as client:
        with client.stream("hi") as stream:
            received = [next(stream).text for _ in range(3)]
        assert stream.response is None
        stats = client.stats().deployments["s"]
        assert stats.requests == 1 and stats.failures == 0 and stats.successes == 0
        assert stats.output_tokens >= len("".join(received)) // 4
        assert stats.input_tokens > 0
        assert stats.cost is not None and stats.cost > 0  # priced: what was billed counts
        client.ledger.flush()  # type: ignore[union-attr]
        rows = client.ledger.requests()  # type: ignore[union-attr]
    assert len(rows) == 1
    assert rows[0].ok is False and rows[0].output_tokens > 0
    assert rows[0].error == "Cancelled" and rows[0].usage_estimated is True


@pytest.mark.anyio
async def test_an_interrupted_stream_records_partial_usage_and_cost(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(
        {
            "s": MockDeployment(
                format="openai", behavior=Behavior(text=TEXT, chunks=40, drop_after=10)
            )
        }
    )
    deployment = mm.Deployment(
        model="gpt-4o-mini", provider="openai", name="s", api_key=KEY, base_url=server.base_url("s")
    )
    async with mm.AsyncClient(deployments=[deployment]) as client:
        with pytest.raises(errors.StreamInterrupted) as info:
            async with client.stream("hi") as stream:
                async for _ in stream:
                    pass
        stats = client.stats().deployments["s"]
    assert info.value.partial_text
    assert stats.requests == 1 and stats.failures == 1
    assert stats.output_tokens >= len(info.value.partial_text) // 4 > 0
    assert stats.cost is not None and stats.cost > 0


def test_usage_the_provider_did_not_send_is_estimated_and_marked(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(
        {"s": MockDeployment(format="openai", behavior=Behavior(text=TEXT, chunks=4))}
    )
    deployment = mm.Deployment(
        model="gpt-4o-mini",
        provider="openai",
        name="s",
        api_key=KEY,
        base_url=server.base_url("s"),
        extra_body={},
    )
    with mm.Client(deployments=[deployment]) as client, client.stream("hi") as stream:
        final = stream.get_final_response()
    # The mock sends usage when asked (include_usage): it is the provider's, not estimated.
    assert final.usage.estimated is False
    assert final.usage.output_tokens > 0


@pytest.mark.anyio
async def test_calls_after_close_raise_client_closed(
    mock_server_factory: MockServerFactory,
) -> None:
    deployments = fleet(mock_server_factory)
    sync = mm.Client(deployments=deployments)
    sync.close()
    with pytest.raises(errors.ClientClosed):
        sync.query("hi")
    with pytest.raises(errors.ClientClosed):
        sync.stream("hi")
    with pytest.raises(errors.ClientClosed):
        sync.batch(["hi"])
    with pytest.raises(errors.ClientClosed):
        sync.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    client = mm.AsyncClient(deployments=deployments)
    await client.aclose()
    with pytest.raises(errors.ClientClosed):
        await client.query("hi")
    with pytest.raises(errors.ClientClosed):
        client.stream("hi")
    with pytest.raises(errors.ClientClosed):
        await client.batch(["hi"])
    assert isinstance(errors.ClientClosed("x"), RuntimeError)


def test_sync_exhausted_pool_is_the_clients_error_not_the_providers(
    mock_server_factory: MockServerFactory,
) -> None:
    import httpx

    from multimodel._transports.pool import PoolTransport

    pool = PoolTransport(limits=httpx.Limits(max_connections=2))
    with mm.Client(deployments=fleet(mock_server_factory), transport=pool) as client:
        with client.stream("hi") as one, client.stream("hi") as two:
            next(one), next(two)  # both connections held
            with pytest.raises(errors.PoolExhausted):
                client.query("hi", timeout=0.3)
        assert client.query("hi").text == TEXT  # released: works again
        check_healthy(client, 3)


@pytest.mark.anyio
async def test_async_exhausted_pool_is_the_clients_error_not_the_providers(
    mock_server_factory: MockServerFactory,
) -> None:
    import httpx

    from multimodel._transports.pool import AsyncPoolTransport

    pool = AsyncPoolTransport(limits=httpx.Limits(max_connections=2))
    async with mm.AsyncClient(deployments=fleet(mock_server_factory), transport=pool) as client:
        async with client.stream("hi") as one, client.stream("hi") as two:
            await one.__anext__(), await two.__anext__()
            with pytest.raises(errors.PoolExhausted):
                await client.query("hi", timeout=0.3)
        assert (await client.query("hi")).text == TEXT
        check_healthy(client, 3)


NO_USAGE_BODY = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
    ],
}


def test_an_answer_without_usage_is_estimated_and_marked() -> None:
    import httpx

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=NO_USAGE_BODY)

    deployment = mm.Deployment(
        model="gpt-4o-mini", provider="openai", name="s", api_key=KEY, base_url="https://s.test/v1"
    )
    with mm.Client(deployments=[deployment], transport=httpx.MockTransport(reply)) as client:
        response = client.query("a prompt of some length")
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        stats = client.stats().deployments["s"]
    assert response.usage.estimated is True
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens == -(-len(TEXT) // 4)
    assert response.cost is not None and response.cost > 0
    assert stats.output_tokens == 2 * response.usage.output_tokens
    assert completion.usage.model_dump()["estimated"] is True


def test_a_stream_without_usage_is_estimated_and_the_usage_chunk_says_so() -> None:
    from multimodel.testing.faults import FaultServer, Step, sse_events, sse_head

    delta = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini"}
    events = [
        {**delta, "choices": [{"index": 0, "delta": {"content": TEXT}, "finish_reason": None}]},
        {**delta, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        "[DONE]",
    ]
    with FaultServer([Step(0.0, sse_head() + sse_events(events), close=True)]) as server:
        deployment = mm.Deployment(
            model="gpt-4o-mini", provider="openai", name="s", api_key=KEY, base_url=server.base_url
        )
        with mm.Client(deployments=[deployment]) as client:
            chunks = list(
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == -(-len(TEXT) // 4) > 0  # never a confident zero
    assert usage.model_dump()["estimated"] is True
