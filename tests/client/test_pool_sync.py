"""Client's own connection pool (sync, shared between threads), over real sockets."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import multimodel as mm
from multimodel._transports.pool import PoolTransport
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.testing.fixtures import MockServerFactory

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
KEY = "sk-test-pool-sync-0123456789"


def server_with(factory: MockServerFactory, **behavior: Any) -> MockProviderServer:
    return factory(
        {"p": MockDeployment(format="openai", behavior=Behavior(text="one two three", **behavior))}
    )


def url(server: MockProviderServer) -> str:
    return server.base_url("p") + "/chat/completions"


def test_sequential_requests_reuse_one_connection(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory)
    transport = PoolTransport()
    with httpx.Client(transport=transport) as http:
        for _ in range(5):
            assert (
                http.post(url(server), json=BODY).json()["choices"][0]["message"]["content"]
                == "one two three"
            )
        assert transport.open_connections == 1
    assert server.connections_opened == 1
    assert transport.open_connections == 0


def test_threads_never_exceed_max_connections(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, latency=0.02)
    transport = PoolTransport(limits=httpx.Limits(max_connections=3))
    peak = 0
    lock = threading.Lock()

    def one(_: int) -> int:
        nonlocal peak
        status = http.post(url(server), json=BODY).status_code
        with lock:
            peak = max(peak, server.connections_open)
        return status

    with httpx.Client(transport=transport) as http, ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(64)))
    assert statuses == [200] * 64
    assert peak <= 3
    assert server.connections_opened <= 3
    assert transport.open_connections == 0


def test_waiting_for_a_connection_counts_against_the_pool_timeout(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory, latency=0.5)
    transport = PoolTransport(limits=httpx.Limits(max_connections=1))
    with httpx.Client(transport=transport) as http, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(http.post, url(server), json=BODY)
        time.sleep(0.1)
        with pytest.raises(httpx.PoolTimeout, match="max_connections=1"):
            http.post(url(server), json=BODY, timeout=httpx.Timeout(5.0, pool=0.05))
        assert slow.result().status_code == 200


def test_a_stream_closed_early_hands_its_connection_back(
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
        model="m", provider="openai", api_key=KEY, base_url=server.base_url("s")
    )
    with mm.Client(deployments=[deployment]) as client:
        assert isinstance(client._http._transport, PoolTransport)  # the default
        with client.stream("hi") as stream:
            for chunk in stream:
                assert chunk.text
                break
        assert client.query("hi", timeout=5).text.startswith("word")
    assert server.connections_opened == 2  # the unread one was closed, not reused


def test_server_closing_the_connection_is_not_reused(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory)
    transport = PoolTransport()
    with httpx.Client(transport=transport) as http:
        assert http.post(url(server), json=BODY, headers={"connection": "close"}).is_success
        assert transport.open_connections == 0
        assert http.post(url(server), json=BODY).is_success
    assert server.connections_opened == 2


def test_expired_idle_connections_are_closed(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory)
    transport = PoolTransport(limits=httpx.Limits(keepalive_expiry=0.1))
    with httpx.Client(transport=transport) as http:
        assert http.post(url(server), json=BODY).is_success
        time.sleep(0.25)
        assert http.post(url(server), json=BODY).is_success
        assert transport.open_connections == 1
    assert server.connections_opened == 2


def test_errors_are_httpx_errors_and_provider_errors() -> None:
    transport = PoolTransport()
    with httpx.Client(transport=transport) as http, pytest.raises(httpx.ConnectError):
        http.post("http://127.0.0.1:9/v1/chat/completions", json=BODY)
    assert transport.open_connections == 0
    deployment = mm.Deployment(
        model="m", provider="openai", api_key=KEY, base_url="http://127.0.0.1:9/v1"
    )
    with (
        mm.Client(deployments=[deployment], max_retries=0) as client,
        pytest.raises(mm.errors.ProviderConnectionError),
    ):
        client.query("hi")


def test_httpx_pool_on_request(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory)
    deployment = mm.Deployment(
        model="m", provider="openai", api_key=KEY, base_url=server.base_url("p")
    )
    with mm.Client(deployments=[deployment], transport="httpx") as client:
        assert not isinstance(client._http._transport, PoolTransport)
        assert client.query("hi").text == "one two three"
    with pytest.raises(mm.InvalidRequestError, match="unknown transport"):
        mm.Client(deployments=[deployment], transport="curl")  # type: ignore[arg-type]


def test_an_idle_connection_the_server_closed_reads_as_readable() -> None:
    import socket

    from multimodel._transports.timed import TimedBackend

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        stream = TimedBackend().connect_tcp("127.0.0.1", port, timeout=5)
        peer, _ = listener.accept()
        try:
            assert stream.get_extra_info("is_readable") is False
            peer.close()
            deadline = time.monotonic() + 5
            while not stream.get_extra_info("is_readable"):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            stream.close()
        assert stream.get_extra_info("is_readable") is True
