"""The pools' limits are pool-wide, as httpx's are: ``max_keepalive_connections`` idle
connections in all origins together (the least recently used one is closed first) and
``max_connections`` open in all, in use or idle.

Over real sockets: five mock servers (five origins), each counting the TCP connections it has
accepted and not yet seen closed. The pool's own count is exact at every instant; a server sees
a close a moment later, so its count is checked once the closes have reached it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest

import multimodel as mm
from multimodel._transports.pool import AsyncPoolTransport, PoolTransport
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.testing.fixtures import MockServerFactory

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
ORIGINS = 5


def servers(factory: MockServerFactory, latency: float = 0.0) -> list[MockProviderServer]:
    return [
        factory({"p": MockDeployment(format="openai", behavior=Behavior(latency=latency))})
        for _ in range(ORIGINS)
    ]


def url(server: MockProviderServer) -> str:
    return server.base_url("p") + "/chat/completions"


def open_sockets(fleet: list[MockProviderServer]) -> int:
    return sum(server.connections_open for server in fleet)


def settled_sockets(fleet: list[MockProviderServer], at_most: int) -> int:
    """The servers' open count once the closes the client made have reached them."""
    deadline = time.monotonic() + 3.0
    while open_sockets(fleet) > at_most and time.monotonic() < deadline:
        time.sleep(0.01)
    return open_sockets(fleet)


# -- async ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_keepalive_cap_is_pool_wide(mock_server_factory: MockServerFactory) -> None:
    fleet = servers(mock_server_factory, latency=0.02)
    transport = AsyncPoolTransport(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
    )
    peak = 0
    async with httpx.AsyncClient(transport=transport) as http:

        async def one(server: MockProviderServer) -> None:
            nonlocal peak
            response = await http.post(url(server), json=BODY)
            assert response.status_code == 200
            peak = max(peak, transport.open_connections)

        for _ in range(3):  # bursts of 100 in flight, 20 to each origin
            async with anyio.create_task_group() as group:
                for i in range(100):
                    group.start_soon(one, fleet[i % ORIGINS])
        assert transport.idle_connections <= 20
        assert transport.open_connections <= 20  # nothing in use: only the idle ones
        assert settled_sockets(fleet, 20) <= 20  # per origin, that would be 100
    assert peak <= 100
    assert settled_sockets(fleet, 0) == 0


@pytest.mark.anyio
async def test_async_max_connections_counts_idle_connections_of_other_origins(
    mock_server_factory: MockServerFactory,
) -> None:
    fleet = servers(mock_server_factory, latency=0.02)
    transport = AsyncPoolTransport(
        limits=httpx.Limits(max_connections=30, max_keepalive_connections=20)
    )
    peak = 0
    async with httpx.AsyncClient(transport=transport) as http:

        async def one(server: MockProviderServer) -> None:
            nonlocal peak
            response = await http.post(url(server), json=BODY)
            assert response.status_code == 200
            peak = max(peak, transport.open_connections)

        for server in fleet:  # one origin at a time: 30 in flight, then 20 left idle
            async with anyio.create_task_group() as group:
                for _ in range(30):
                    group.start_soon(one, server)
            assert transport.open_connections <= 30
    # Opening a connection in a full pool closed an idle one of another origin first.
    assert peak <= 30


@pytest.mark.anyio
async def test_async_the_least_recently_used_idle_connection_goes_first(
    mock_server_factory: MockServerFactory,
) -> None:
    a, b, c = servers(mock_server_factory)[:3]
    transport = AsyncPoolTransport(limits=httpx.Limits(max_keepalive_connections=2))
    async with httpx.AsyncClient(transport=transport) as http:
        for server in (a, b, c):  # idle: a, then a b, then b c (a closed)
            assert (await http.post(url(server), json=BODY)).status_code == 200
        assert transport.idle_connections == 2
        assert settled_sockets([a], 0) == 0
        assert (await http.post(url(a), json=BODY)).status_code == 200  # new; idle c a
        assert (await http.post(url(c), json=BODY)).status_code == 200  # reused; idle a c
        assert settled_sockets([b], 0) == 0
        assert transport.open_connections == 2
    assert (a.connections_opened, b.connections_opened, c.connections_opened) == (2, 1, 1)


@pytest.mark.anyio
async def test_async_no_keepalive_keeps_nothing(mock_server_factory: MockServerFactory) -> None:
    fleet = servers(mock_server_factory)
    transport = AsyncPoolTransport(limits=httpx.Limits(max_keepalive_connections=0))
    async with httpx.AsyncClient(transport=transport) as http:
        for server in fleet:
            assert (await http.post(url(server), json=BODY)).status_code == 200
        assert (transport.open_connections, transport.idle_connections) == (0, 0)


@pytest.mark.anyio
async def test_a_client_over_five_deployments_keeps_its_sockets_bounded(
    mock_server_factory: MockServerFactory,
) -> None:
    """The field report: 5 origins and max_connections=100 held ~200 open sockets."""
    from multimodel._transports.select import HTTP_LIMITS

    fleet = servers(mock_server_factory, latency=0.02)
    deployments = [
        mm.Deployment(
            model="m",
            provider="openai",
            name=f"d{i}",
            base_url=server.base_url("p"),
            api_key="sk-test-pool-0123456789",
        )
        for i, server in enumerate(fleet)
    ]
    async with mm.AsyncClient(deployments=deployments, strategy="round_robin") as client:
        transport = client._http._transport
        assert isinstance(transport, AsyncPoolTransport)
        peak = 0

        async def one() -> None:
            nonlocal peak
            assert (await client.query("hi", timeout=10)).text
            peak = max(peak, transport.open_connections)

        for _ in range(3):
            async with anyio.create_task_group() as group:
                for _ in range(150):
                    group.start_soon(one)
        cap = HTTP_LIMITS.max_keepalive_connections
        assert cap is not None
        assert transport.idle_connections <= cap
        assert settled_sockets(fleet, cap) <= cap
        assert peak <= (HTTP_LIMITS.max_connections or 0)


# -- sync ----------------------------------------------------------------------------------------


def test_sync_keepalive_cap_is_pool_wide(mock_server_factory: MockServerFactory) -> None:
    fleet = servers(mock_server_factory, latency=0.02)
    transport = PoolTransport(limits=httpx.Limits(max_connections=40, max_keepalive_connections=10))
    peak = 0
    lock = threading.Lock()
    with httpx.Client(transport=transport) as http:

        def one(i: int) -> None:
            nonlocal peak
            response = http.post(url(fleet[i % ORIGINS]), json=BODY)
            assert response.status_code == 200
            with lock:
                peak = max(peak, transport.open_connections)

        with ThreadPoolExecutor(max_workers=40) as pool:
            list(pool.map(one, range(400)))
        assert transport.idle_connections <= 10
        assert transport.open_connections <= 10
        assert settled_sockets(fleet, 10) <= 10
    assert peak <= 40
    assert settled_sockets(fleet, 0) == 0


def test_sync_max_connections_counts_idle_connections_of_other_origins(
    mock_server_factory: MockServerFactory,
) -> None:
    fleet = servers(mock_server_factory, latency=0.02)
    transport = PoolTransport(limits=httpx.Limits(max_connections=12, max_keepalive_connections=8))
    peak = 0
    lock = threading.Lock()
    with httpx.Client(transport=transport) as http, ThreadPoolExecutor(max_workers=12) as pool:

        def one(server: MockProviderServer) -> None:
            nonlocal peak
            assert http.post(url(server), json=BODY).status_code == 200
            with lock:
                peak = max(peak, transport.open_connections)

        for server in fleet:
            list(pool.map(one, [server] * 24))
            assert transport.open_connections <= 12
    assert peak <= 12


def test_sync_the_least_recently_used_idle_connection_goes_first(
    mock_server_factory: MockServerFactory,
) -> None:
    a, b, c = servers(mock_server_factory)[:3]
    transport = PoolTransport(limits=httpx.Limits(max_keepalive_connections=2))
    with httpx.Client(transport=transport) as http:
        for server in (a, b, c):
            assert http.post(url(server), json=BODY).status_code == 200
        assert transport.idle_connections == 2
        assert settled_sockets([a], 0) == 0
        assert http.post(url(a), json=BODY).status_code == 200
        assert http.post(url(c), json=BODY).status_code == 200
        assert settled_sockets([b], 0) == 0
    assert (a.connections_opened, b.connections_opened, c.connections_opened) == (2, 1, 1)
