"""``max_connections``: how many connections a client keeps open, set where the client is built.

Over real sockets, on the sync client and the async client (asyncio and trio; aiohttp on
asyncio): with two connections held by open streams a third request waits for one and, at its
time limit, fails with the client's own ``PoolExhausted`` naming the option, never blamed on the
deployment; once a stream is closed the client works again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing import Behavior, MockDeployment
from multimodel.testing.fixtures import MockServerFactory

KEY = "sk-test-max-conn-0123456789"
TEXT = " ".join(f"word{i}" for i in range(20))


def fleet(factory: MockServerFactory) -> list[mm.Deployment]:
    server = factory(
        {"s": MockDeployment(format="openai", behavior=Behavior(text=TEXT, chunks=20))}
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


def check_not_blamed(client: Any) -> None:
    stats = client.stats().deployments["s"]
    assert stats.in_flight == 0
    assert stats.failures == 0
    assert client.status() == {"s": "healthy"}


def exhaust(client: mm.Client, limit: str, via: mm.Client | None = None) -> None:
    """Hold both connections with open streams; a query (through ``via``, else ``client``)
    then fails with the client's own ``PoolExhausted`` naming ``limit``."""
    with client.stream("hi") as one, client.stream("hi") as two:
        next(one), next(two)  # both connections held
        with pytest.raises(errors.PoolExhausted, match=limit):
            (via or client).query("hi", timeout=0.3)


async def aexhaust(client: mm.AsyncClient, limit: str) -> None:
    """:func:`exhaust` on the async client."""
    async with client.stream("hi") as one, client.stream("hi") as two:
        await one.__anext__(), await two.__anext__()
        with pytest.raises(errors.PoolExhausted, match=limit):
            await client.query("hi", timeout=0.3)


@pytest.mark.parametrize("transport", [None, "httpx"])
def test_sync_max_connections_bounds_the_clients_connections(
    mock_server_factory: MockServerFactory, transport: Any
) -> None:
    with mm.Client(
        deployments=fleet(mock_server_factory), max_connections=2, transport=transport
    ) as client:
        exhaust(client, "max_connections=2")
        assert client.query("hi").text == TEXT  # released: works again
        check_not_blamed(client)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", [None, "httpx"])
async def test_async_max_connections_bounds_the_clients_connections(
    mock_server_factory: MockServerFactory, transport: Any
) -> None:
    async with mm.AsyncClient(
        deployments=fleet(mock_server_factory), max_connections=2, transport=transport
    ) as client:
        await aexhaust(client, "max_connections=2")
        assert (await client.query("hi")).text == TEXT
        check_not_blamed(client)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiohttp_transport_takes_max_connections(
    mock_server_factory: MockServerFactory, anyio_backend: str
) -> None:
    pytest.importorskip("aiohttp", reason="needs the aiohttp extra")
    async with mm.AsyncClient(
        deployments=fleet(mock_server_factory), max_connections=2, transport="aiohttp"
    ) as client:
        await aexhaust(client, "max_connections=2")
        assert (await client.query("hi")).text == TEXT
        check_not_blamed(client)


def test_more_connections_serve_more_requests_at_once(
    mock_server_factory: MockServerFactory,
) -> None:
    with mm.Client(deployments=fleet(mock_server_factory), max_connections=3) as client:
        with client.stream("hi") as one, client.stream("hi") as two:
            next(one), next(two)
            assert client.query("hi", timeout=5).text == TEXT  # the third connection
        check_not_blamed(client)


def test_the_default_is_a_hundred_connections_half_kept_idle() -> None:
    from multimodel._transports.select import DEFAULT_MAX_CONNECTIONS, HTTP_LIMITS

    assert mm.ClientConfig.model_fields["max_connections"].default == DEFAULT_MAX_CONNECTIONS
    assert HTTP_LIMITS.max_connections == DEFAULT_MAX_CONNECTIONS == 100
    assert HTTP_LIMITS.max_keepalive_connections == 50


@pytest.mark.parametrize("bad", [0, -1, "many", 2.5])
def test_max_connections_must_be_a_positive_int(bad: Any) -> None:
    deployment = mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY)
    with pytest.raises(errors.ConfigError, match="max_connections"):
        mm.Client(deployments=[deployment], max_connections=bad)


def test_max_connections_cannot_size_a_client_or_transport_it_does_not_build() -> None:
    deployment = mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY)
    with httpx.Client() as http, pytest.raises(errors.ConfigError, match="http_client"):
        mm.Client(deployments=[deployment], max_connections=5, http_client=http)
    with pytest.raises(errors.ConfigError, match="transport object"):
        mm.Client(deployments=[deployment], max_connections=5, transport=httpx.HTTPTransport())
    # Not set: an http_client keeps its own limits, as before.
    with httpx.Client() as http, mm.Client(deployments=[deployment], http_client=http):
        pass


@pytest.mark.anyio
async def test_async_max_connections_cannot_size_an_http_client_given() -> None:
    deployment = mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY)
    async with httpx.AsyncClient() as http:
        with pytest.raises(errors.ConfigError, match="http_client"):
            mm.AsyncClient(deployments=[deployment], max_connections=5, http_client=http)


def test_max_connections_from_a_config_file(
    mock_server_factory: MockServerFactory, tmp_path: Path
) -> None:
    (deployment,) = fleet(mock_server_factory)
    path = tmp_path / "multimodel.toml"
    path.write_text(
        "max_connections = 2\n\n[[deployments]]\n"
        f'model = "gpt-4o-mini"\nprovider = "openai"\nname = "s"\n'
        f'api_key = "{KEY}"\nbase_url = "{deployment.base_url}"\n'
    )
    with mm.Client(config=path) as client:
        assert client.config.max_connections == 2
        exhaust(client, "max_connections=2")


@pytest.mark.anyio
async def test_async_an_http_clients_full_pool_is_not_blamed_on_the_provider(
    mock_server_factory: MockServerFactory,
) -> None:
    # httpx's own pool, sized by the caller: its wait ends before the attempt's time limit, so
    # the attempt fails as the client's PoolExhausted, not as the provider's timeout.
    async with (
        httpx.AsyncClient(limits=httpx.Limits(max_connections=2)) as http,
        mm.AsyncClient(deployments=fleet(mock_server_factory), http_client=http) as client,
    ):
        await aexhaust(client, "limits of the http_client")
        assert (await client.query("hi")).text == TEXT
        check_not_blamed(client)


def test_sync_an_http_clients_full_pool_is_not_blamed_on_the_provider(
    mock_server_factory: MockServerFactory,
) -> None:
    with (
        httpx.Client(limits=httpx.Limits(max_connections=2)) as http,
        mm.Client(deployments=fleet(mock_server_factory), http_client=http) as client,
    ):
        exhaust(client, "limits of the http_client")
        assert client.query("hi").text == TEXT
        check_not_blamed(client)


@pytest.mark.anyio
async def test_a_transport_objects_full_pool_names_the_transport(
    mock_server_factory: MockServerFactory,
) -> None:
    # The limit is the transport's own: the message says to raise it there, not max_connections
    # (which cannot size a transport object).
    from multimodel._transports.pool import AsyncPoolTransport

    pool = AsyncPoolTransport(limits=httpx.Limits(max_connections=2))
    async with mm.AsyncClient(deployments=fleet(mock_server_factory), transport=pool) as client:
        await aexhaust(client, "limits of the transport given")
        check_not_blamed(client)


def test_a_clone_names_the_limit_of_the_client_it_was_made_from(
    mock_server_factory: MockServerFactory,
) -> None:
    with mm.Client(deployments=fleet(mock_server_factory), max_connections=2) as client:
        clone = client.with_options(timeout=5)
        exhaust(client, "max_connections=2", via=clone)
        check_not_blamed(client)
