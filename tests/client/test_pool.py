"""AsyncClient's own connection pool: reuse, limits, pool timeout, cancellation, streams, close.

Over real sockets to the mock server (which counts the TCP connections it accepts), on asyncio
and trio.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

import multimodel as mm
from multimodel._transports.pool import AsyncPoolTransport
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.testing.fixtures import MockServerFactory

pytestmark = pytest.mark.anyio
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def server_with(factory: MockServerFactory, **behavior: Any) -> MockProviderServer:
    return factory(
        {"p": MockDeployment(format="openai", behavior=Behavior(text="one two three", **behavior))}
    )


def url(server: MockProviderServer) -> str:
    return server.base_url("p") + "/chat/completions"


async def test_sequential_requests_reuse_one_connection(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory)
    transport = AsyncPoolTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        for _ in range(5):
            response = await http.post(url(server), json=BODY)
            assert response.status_code == 200
            assert response.json()["choices"][0]["message"]["content"] == "one two three"
        assert transport.open_connections == 1
    assert server.connections_opened == 1
    assert transport.open_connections == 0  # closed with the client


async def test_max_connections_is_never_exceeded(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, latency=0.05)
    transport = AsyncPoolTransport(limits=httpx.Limits(max_connections=2))
    peak = 0

    async with httpx.AsyncClient(transport=transport) as http:

        async def one() -> None:
            nonlocal peak
            response = await http.post(url(server), json=BODY)
            assert response.status_code == 200
            peak = max(peak, server.connections_open)

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(one)
    assert peak <= 2
    assert server.connections_opened == 2


async def test_waiting_for_a_connection_counts_against_the_pool_timeout(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory, latency=0.5)
    transport = AsyncPoolTransport(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport) as http, anyio.create_task_group() as group:

        async def slow() -> None:
            assert (await http.post(url(server), json=BODY)).status_code == 200

        group.start_soon(slow)
        await anyio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout, match="max_connections=1"):
            await http.post(url(server), json=BODY, timeout=httpx.Timeout(5.0, pool=0.05))


async def test_a_cancelled_request_frees_its_slot(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, latency=0.3)
    fast = mock_server_factory({"q": MockDeployment(format="openai")})
    transport = AsyncPoolTransport(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport) as http:
        with anyio.move_on_after(0.05):
            await http.post(url(server), json=BODY)
        response = await http.post(
            fast.base_url("q") + "/chat/completions",
            json=BODY,
            timeout=httpx.Timeout(5.0, pool=1.0),
        )
        assert response.status_code == 200
        assert transport.open_connections == 1  # the cancelled one was closed, not reused


async def test_a_callers_cancel_scope_ends_a_call_waiting_for_the_pool_as_a_cancellation(
    mock_server_factory: MockServerFactory,
) -> None:
    # The caller's own limit (move_on_after) cancels the call; it is neither the pool's
    # exhaustion nor the provider's timeout. Only the attempt's limit ends a wait as
    # PoolExhausted, and then after the time the message says.
    server = server_with(mock_server_factory, latency=1.0)
    deployment = mm.Deployment(
        model="m", provider="openai", api_key="sk-test-pool-0123456789", base_url=url(server)[:-17]
    )
    async with (
        mm.AsyncClient(deployments=[deployment], max_connections=1, max_retries=0) as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(client.query, "occupies the only connection")
        await anyio.sleep(0.1)
        start = anyio.current_time()
        with anyio.move_on_after(0.2) as scope:
            await client.query("waits for it")
        assert scope.cancelled_caught
        assert anyio.current_time() - start < 0.6
        with pytest.raises(mm.errors.PoolExhausted, match=r"within 0\.2\d*s") as exc:
            await client.query("waits for it", timeout=0.25)
        assert "max_connections=1" in str(exc.value)
    assert client.stats().deployments["openai/m"].in_flight == 0


async def test_a_stream_closed_early_hands_its_connection_back(
    mock_server_factory: MockServerFactory,
) -> None:
    server = mock_server_factory(
        {
            "s": MockDeployment(
                format="openai",
                behavior=Behavior(text=" ".join(["word"] * 50), chunks=50, chunk_interval=0.01),
            )
        }
    )
    deployment = mm.Deployment(
        model="m",
        provider="openai",
        api_key="sk-test-pool-0123456789",
        base_url=server.base_url("s"),
    )
    async with mm.AsyncClient(deployments=[deployment]) as client:
        assert isinstance(client._http._transport, AsyncPoolTransport)  # the default
        async with client.stream("hi") as stream:
            async for chunk in stream:
                assert chunk.text
                break
        response = await client.query("hi", timeout=5)
        assert response.text.startswith("word")
        # The early-closed stream's connection was not idle (body unread): it was closed.
        assert server.connections_opened == 2


async def test_server_closing_the_connection_is_not_reused(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory)
    transport = AsyncPoolTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.post(url(server), json=BODY, headers={"connection": "close"})
        assert response.status_code == 200
        assert transport.open_connections == 0
        response = await http.post(url(server), json=BODY)
        assert response.status_code == 200
    assert server.connections_opened == 2


async def test_expired_idle_connections_are_closed_not_reused(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory, latency=0.02)
    transport = AsyncPoolTransport(limits=httpx.Limits(keepalive_expiry=0.1))
    async with httpx.AsyncClient(transport=transport) as http:

        async def one() -> None:
            assert (await http.post(url(server), json=BODY)).status_code == 200

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(one)
        assert transport.open_connections == 3
        await anyio.sleep(0.25)
        assert (await http.post(url(server), json=BODY)).status_code == 200
        assert transport.open_connections == 1  # the three expired ones were closed
    assert server.connections_opened == 4


async def test_errors_are_httpx_errors() -> None:
    transport = AsyncPoolTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post("http://127.0.0.1:9/v1/chat/completions", json=BODY)
    assert transport.open_connections == 0


async def test_the_client_maps_pool_failures_to_provider_errors(
    mock_server_factory: MockServerFactory,
) -> None:
    deployment = mm.Deployment(
        model="m",
        provider="openai",
        api_key="sk-test-pool-0123456789",
        base_url="http://127.0.0.1:9/v1",
    )
    async with mm.AsyncClient(deployments=[deployment], max_retries=0) as client:
        with pytest.raises(mm.errors.ProviderConnectionError):
            await client.query("hi")


async def test_httpx_pool_on_request(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory)
    deployment = mm.Deployment(
        model="m",
        provider="openai",
        api_key="sk-test-pool-0123456789",
        base_url=server.base_url("p"),
    )
    async with mm.AsyncClient(deployments=[deployment], transport="httpx") as client:
        assert not isinstance(client._http._transport, AsyncPoolTransport)
        assert (await client.query("hi")).text == "one two three"


async def test_an_idle_connection_the_server_closed_reads_as_readable() -> None:
    """The pool's expiry check at each release: a socket whose peer closed it is readable (its
    read would return the end), one still open with nothing sent is not."""
    import socket

    from multimodel._transports.timed import AsyncTimedBackend

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        stream = await AsyncTimedBackend().connect_tcp("127.0.0.1", port, timeout=5)
        peer, _ = listener.accept()
        try:
            assert stream.get_extra_info("is_readable") is False
            peer.close()
            for _ in range(500):  # the peer's FIN arrives at once on loopback; 5 s at most
                if stream.get_extra_info("is_readable"):
                    break
                await anyio.sleep(0.01)
            assert stream.get_extra_info("is_readable") is True
        finally:
            await stream.aclose()
        assert stream.get_extra_info("is_readable") is True  # closed here: gone, readable
