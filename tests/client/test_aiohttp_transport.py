"""multimodel's aiohttp transport (``AsyncClient(transport="aiohttp")``), over real sockets.

Against the mock server on 127.0.0.1: whole bodies and streams, a stream closed early, provider
errors, timeouts, refused connections, the pool limit and its timeout, closing. asyncio only
(aiohttp does not run on trio; that case is a ConfigError, tested last).
"""

from __future__ import annotations

import json
import socket
from functools import partial

import anyio
import httpx
import pytest

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.testing.fixtures import MockServerFactory

pytest.importorskip("aiohttp", reason="needs the aiohttp extra: pip install 'multimodel[aiohttp]'")

from multimodel._transports.aiohttp import _FIRST_READ_SIZE, _READ_SIZE, AiohttpTransport

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])
pytestmark = pytest.mark.anyio
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
KEY = "sk-test-aiohttp-0123456789"


def server_with(
    factory: MockServerFactory, fmt: str = "openai", **behavior: object
) -> MockProviderServer:
    return factory({"p": MockDeployment(format=fmt, behavior=Behavior(**behavior))})  # type: ignore[arg-type]


def deployment(server: MockProviderServer, fmt: str = "openai") -> mm.Deployment:
    return mm.Deployment(
        model="m",
        provider="anthropic" if fmt == "anthropic" else "openai",
        api_key=KEY,
        base_url=server.base_url("p"),
    )


def url(server: MockProviderServer) -> str:
    return server.base_url("p") + "/chat/completions"


def transport_of(client: mm.AsyncClient) -> AiohttpTransport:
    transport = client._http._transport
    assert isinstance(transport, AiohttpTransport)
    return transport


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- through AsyncClient -------------------------------------------------------------------------


@asyncio_only
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_query_and_stream(mock_server_factory: MockServerFactory, fmt: str) -> None:
    server = server_with(mock_server_factory, fmt, text="one two three")
    async with mm.AsyncClient(deployments=[deployment(server, fmt)], transport="aiohttp") as client:
        response = await client.query("hi")
        async with client.stream("hi") as stream:
            chunks = [chunk.text async for chunk in stream]
        again = await client.query("hi")
    assert response.text == "".join(chunks) == again.text == "one two three"
    assert len([c for c in chunks if c]) == 3  # streamed chunk by chunk, not buffered
    assert stream.response is not None
    assert stream.response.usage == response.usage
    assert response.usage.output_tokens > 0
    assert server.connections_opened == 1  # one keep-alive connection for all three


@asyncio_only
async def test_response_is_read_like_httpx_reads_it(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, text="hello")
    async with httpx.AsyncClient(transport=AiohttpTransport()) as plain:
        expected = await plain.post(url(server), json=BODY)
    request = httpx.Request("POST", url(server), json=BODY, extensions={"total_timeout": 5.0})
    transport = AiohttpTransport()
    try:
        response = await transport.handle_async_request(request)
    finally:
        await transport.aclose()
    assert response.is_closed and response.is_stream_consumed
    assert response.content == await response.aread()
    assert response.json()["choices"] == expected.json()["choices"]
    assert response.json()["choices"][0]["message"]["content"] == "hello"
    assert response.request is request
    assert response.status_code == 200 and response.reason_phrase == "OK"
    assert response.http_version == "HTTP/1.1"
    assert response.num_bytes_downloaded == len(response.content)
    assert response.headers["content-type"] == expected.headers["content-type"]


@asyncio_only
async def test_a_buffered_burst_is_read_a_slice_at_a_time(
    mock_server_factory: MockServerFactory,
) -> None:
    # 500 events written at once: by the first read the whole body is buffered. A read returns
    # at most _READ_SIZE bytes (the first event is not held back while aiohttp moves every
    # buffered piece), and the pieces make the whole body.
    text = " ".join(f"w{i}" for i in range(500))
    server = server_with(mock_server_factory, text=text)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        request = client.build_request("POST", url(server), json={**BODY, "stream": True})
        response = await client.send(request, stream=True)
        try:
            await anyio.sleep(0.2)  # let the burst arrive (if it has not, reads are smaller)
            pieces = [piece async for piece in response.aiter_raw()]
        finally:
            await response.aclose()
    assert len(pieces[0]) <= _FIRST_READ_SIZE  # the first chunk after a few pieces moved
    assert max(map(len, pieces)) <= _READ_SIZE
    body = b"".join(pieces)
    assert len(body) > 8 * _READ_SIZE and body.endswith(b"data: [DONE]\n\n")
    events = [json.loads(line[6:]) for line in body.split(b"\n") if line[6:7] == b"{"]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == text


@asyncio_only
async def test_stream_closed_early_frees_its_slot(mock_server_factory: MockServerFactory) -> None:
    server = server_with(
        mock_server_factory, text=" ".join(f"w{i}" for i in range(40)), chunk_interval=0.01
    )
    async with mm.AsyncClient(deployments=[deployment(server)], transport="aiohttp") as client:
        transport = transport_of(client)
        free = transport._slots._free
        assert free is not None
        async with client.stream("hi") as stream:
            async for chunk in stream:
                if chunk.text:
                    break
            assert transport._slots._free == free - 1  # the open stream holds its connection
        assert stream.response is None  # abandoned: not a success
        assert transport._slots._free == free
        assert (await client.query("hi")).text.startswith("w0 w1")


@asyncio_only
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, mm.errors.RateLimited),
        (500, mm.errors.ServerError),
    ],
)
async def test_provider_errors_are_mapped(
    mock_server_factory: MockServerFactory, status: int, error: type[Exception]
) -> None:
    server = server_with(mock_server_factory, fail_rate=1.0, fail_status=status)
    async with mm.AsyncClient(
        deployments=[deployment(server)], transport="aiohttp", max_retries=0
    ) as client:
        with pytest.raises(error):
            await client.query("hi")
        with pytest.raises(error):
            async with client.stream("hi") as stream:
                async for _ in stream:
                    pass
        assert transport_of(client)._slots._free == 100  # every slot came back


@asyncio_only
async def test_retry_after_error_uses_the_next_answer(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory, text="ok", script=[500, 429])
    async with mm.AsyncClient(
        deployments=[deployment(server)],
        transport="aiohttp",
        retry=mm.RetryPolicy(backoff_initial=0.0, backoff_max=0.0, jitter=0.0),
    ) as client:
        assert (await client.query("hi")).text == "ok"


@asyncio_only
async def test_timeout_is_a_provider_timeout(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, latency=2.0)
    async with mm.AsyncClient(
        deployments=[deployment(server)], transport="aiohttp", max_retries=0, timeout=0.2
    ) as client:
        with anyio.fail_after(5):
            with pytest.raises(mm.errors.ProviderTimeout):
                await client.query("hi")
        assert transport_of(client)._slots._free == 100


@asyncio_only
async def test_stalled_stream_times_out(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, text="a b c d e f", stall_after=2, stall_timeout=5.0)
    async with mm.AsyncClient(
        deployments=[deployment(server)], transport="aiohttp", max_retries=0, timeout=0.3
    ) as client:
        with anyio.fail_after(5):
            with pytest.raises(mm.errors.ProviderError):
                async with client.stream("hi") as stream:
                    async for _ in stream:
                        pass


@asyncio_only
async def test_connection_refused() -> None:
    dep = mm.Deployment(
        model="m", provider="openai", api_key=KEY, base_url=f"http://127.0.0.1:{free_port()}/v1"
    )
    async with mm.AsyncClient(deployments=[dep], transport="aiohttp", max_retries=0) as client:
        with pytest.raises(mm.errors.ProviderConnectionError):
            await client.query("hi")
        with pytest.raises(mm.errors.ProviderConnectionError):
            async with client.stream("hi") as stream:
                async for _ in stream:
                    pass


@asyncio_only
async def test_closing_the_client_closes_the_session(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory, text="hi")
    client = mm.AsyncClient(deployments=[deployment(server)], transport="aiohttp")
    transport = transport_of(client)
    assert (await client.query("hi")).text == "hi"
    session = transport._session
    assert session is not None and not session.closed
    await client.aclose()
    assert session.closed
    assert transport._session is None
    for _ in range(500):  # the server notices the closed socket on its own thread
        if not server.connections_open:
            break
        await anyio.sleep(0.01)
    assert server.connections_open == 0
    with pytest.raises(RuntimeError):
        await client.query("hi")


@asyncio_only
async def test_api_key_not_in_repr(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, text="hi")
    async with mm.AsyncClient(deployments=[deployment(server)], transport="aiohttp") as client:
        await client.query("hi")
        assert KEY not in repr(transport_of(client))
        assert KEY not in repr(client)


# -- the transport under a plain httpx client -----------------------------------------------------


@asyncio_only
async def test_httpx_errors(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, latency=1.0)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"http://127.0.0.1:{free_port()}/v1", json=BODY)
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url(server), json=BODY, timeout=0.1)
        request = http.build_request(
            "POST", url(server), json=BODY, extensions={"total_timeout": 0.1}
        )
        with pytest.raises(httpx.ReadTimeout, match="0.1 s"):
            await http.send(request)
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("ftp://127.0.0.1/")


@asyncio_only
async def test_dropped_connection_is_a_remote_protocol_error(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory, drop_before_response=True)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(url(server), json=BODY)
    dep = deployment(server)
    async with mm.AsyncClient(deployments=[dep], transport="aiohttp", max_retries=0) as client:
        with pytest.raises(mm.errors.ProviderConnectionError):
            await client.query("hi")


@asyncio_only
async def test_pool_limit_and_pool_timeout(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, text="x " * 20, chunk_interval=0.02, latency=0.05)
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=2))
    peak = 0
    async with httpx.AsyncClient(transport=transport) as http:

        async def one() -> None:
            nonlocal peak
            response = await http.post(url(server), json=BODY)
            assert response.status_code == 200
            peak = max(peak, server.connections_open)

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
        assert peak <= 2
        assert transport._slots._free == 2

        # Both slots held by open streams: a third request waits, then times out.
        streams = [
            await http.send(
                http.build_request("POST", url(server), json={**BODY, "stream": True}), stream=True
            )
            for _ in range(2)
        ]
        with pytest.raises(httpx.PoolTimeout):
            await http.post(url(server), json=BODY, timeout=httpx.Timeout(5.0, pool=0.1))
        assert transport._slots._free == 0
        await streams[0].aclose()  # hands its slot to the next request
        assert (await http.post(url(server), json=BODY)).status_code == 200
        await streams[1].aclose()
        assert transport._slots._free == 2


@asyncio_only
async def test_each_request_gets_its_own_timeout(mock_server_factory: MockServerFactory) -> None:
    # The transport reuses the last request's aiohttp timeout when the phases and the total
    # are the same: a request with a shorter limit must still time out, and the next longer
    # one must not.
    server = server_with(mock_server_factory, latency=0.3)
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        for limit, total in ((5.0, None), (0.05, None), (5.0, None), (5.0, 0.05), (5.0, 5.0)):
            request = http.build_request("POST", url(server), json=BODY, timeout=limit)
            if total is not None:
                request.extensions["total_timeout"] = total
            if min(limit, total or limit) < 0.3:
                with pytest.raises(httpx.ReadTimeout):
                    await http.send(request)
            else:
                assert (await http.send(request)).status_code == 200


@asyncio_only
async def test_a_cancelled_waiter_gives_up_its_place(
    mock_server_factory: MockServerFactory,
) -> None:
    server = server_with(mock_server_factory, latency=0.3)
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport) as http:
        async with anyio.create_task_group() as group:
            group.start_soon(partial(http.post, url(server), json=BODY))  # the only slot
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.05):
                await http.post(url(server), json=BODY)  # waits, then is cancelled
            assert not transport._slots._waiters
        assert transport._slots._free == 1
        assert (await http.post(url(server), json=BODY)).status_code == 200


# -- trio ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_a_config_error(mock_server_factory: MockServerFactory) -> None:
    server = server_with(mock_server_factory, text="hi")
    async with mm.AsyncClient(deployments=[deployment(server)], transport="aiohttp") as client:
        with pytest.raises(mm.errors.ConfigError, match="asyncio"):
            await client.query("hi")


@asyncio_only
async def test_each_request_sends_its_own_headers(mock_server_factory: MockServerFactory) -> None:
    # The transport converts each distinct header list once: calls with other headers (a
    # per-call header, another body length) must not get an earlier call's.
    server = server_with(mock_server_factory, text="hi")
    async with mm.AsyncClient(deployments=[deployment(server)], transport="aiohttp") as client:
        await client.query("hi", extra_headers={"x-call": "1"})
        await client.query("hi", extra_headers={"x-call": "2"})
        await client.query("a longer prompt")
        await client.query("hi", extra_headers={"x-call": "1"})
    seen = server.requests("p")
    assert [r.headers.get("x-call") for r in seen] == ["1", "2", None, "1"]
    assert [int(r.headers["content-length"]) for r in seen] == [
        len(json.dumps(r.body, separators=(",", ":"), ensure_ascii=False).encode()) for r in seen
    ]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in seen)
