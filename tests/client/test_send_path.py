"""How requests reach the transport: straight through it, unless the httpx client needs its
own machinery (auth, event hooks), which an injected client then keeps."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

import multimodel as mm

KEY = "sk-test-send-path-0123456789"
BODY = {
    "id": "chatcmpl-1",
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


class Recorder:
    """A provider that answers every request and remembers what it received."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(
            200, json=BODY, headers={"set-cookie": "__cf_bm=tracking; Path=/", "x-request-id": "r1"}
        )


def deployment() -> mm.Deployment:
    return mm.Deployment(model="m", provider="openai", api_key=KEY, base_url="https://p.test/v1")


def test_owned_client_keeps_no_provider_cookies() -> None:
    provider = Recorder()
    with mm.Client(deployments=[deployment()], transport=httpx.MockTransport(provider)) as client:
        first = client.query("hi")
        client.query("hi")
        assert not client._http.cookies  # Set-Cookie from a provider is not stored ...
    assert "cookie" not in provider.requests[1].headers  # ... nor sent back
    assert first.request_id == "r1"
    assert first.raw_body()["id"] == "chatcmpl-1"


def test_injected_client_with_hooks_and_auth_goes_through_send() -> None:
    provider = Recorder()
    seen: list[str] = []

    def auth(request: httpx.Request) -> httpx.Request:
        request.headers["x-proxy-auth"] = "token"
        return request

    http = httpx.Client(
        transport=httpx.MockTransport(provider),
        auth=auth,
        event_hooks={
            "request": [lambda r: seen.append(str(r.url))],
            "response": [lambda r: seen.append(str(r.status_code))],
        },
    )
    with http, mm.Client(deployments=[deployment()], http_client=http) as client:
        assert client.query("hi").text == "hi"
    assert provider.requests[0].headers["x-proxy-auth"] == "token"
    assert seen == ["https://p.test/v1/chat/completions", "200"]


def test_injected_client_that_follows_redirects_still_does() -> None:
    provider = Recorder()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "old.test":
            return httpx.Response(307, headers={"location": "https://p.test/v1/chat/completions"})
        return provider(request)

    http = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    moved = mm.Deployment(model="m", provider="openai", api_key=KEY, base_url="https://old.test/v1")
    with http, mm.Client(deployments=[moved], http_client=http) as client:
        assert client.query("hi").text == "hi"
    assert provider.requests[0].url.host == "p.test"


def test_closed_injected_client_is_a_clear_error() -> None:
    http = httpx.Client(transport=httpx.MockTransport(Recorder()))
    client = mm.Client(deployments=[deployment()], http_client=http)
    http.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.query("hi")


@pytest.mark.anyio
async def test_async_owned_and_injected_clients() -> None:
    provider = Recorder()
    async with mm.AsyncClient(
        deployments=[deployment()], transport=httpx.MockTransport(provider)
    ) as client:
        response = await client.query("hi")
        assert not client._http.cookies
    assert json.loads(provider.requests[0].content)["messages"][0]["content"] == "hi"
    assert response.text == "hi"

    seen: list[Any] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.host)

    http = httpx.AsyncClient(
        transport=httpx.MockTransport(provider), event_hooks={"request": [hook]}
    )
    async with http, mm.AsyncClient(deployments=[deployment()], http_client=http) as client:
        await client.query("hi")
    assert seen == ["p.test"]


class _OneEventThenSilence(httpx.AsyncByteStream):
    """A stream body that sends one content event, then nothing, for ever."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        event = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
        yield f"data: {json.dumps(event)}\n\n".encode()
        await anyio.sleep(3600)


class _SilentTransport(httpx.AsyncBaseTransport):
    """A caller's transport (not httpx's own): nothing bounds its reads."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=_OneEventThenSilence())


@pytest.mark.anyio
async def test_a_stream_over_a_callers_transport_that_goes_silent_ends_at_its_idle_limit() -> None:
    # httpx's own transports end a silent read at the attempt's timeout, so a stream over them
    # arms no cancel scope per read; a caller's transport may never end one, so the stream's own
    # limit must (this test hangs, and fails at the outer limit, if that scope is skipped).
    http = httpx.AsyncClient(transport=_SilentTransport())
    options: dict[str, Any] = {"timeout": 0.3, "max_retries": 0}
    async with http, mm.AsyncClient(deployments=[deployment()], http_client=http, **options) as c:
        started = anyio.current_time()
        with anyio.fail_after(10):
            with pytest.raises((mm.errors.ProviderTimeout, mm.errors.StreamInterrupted)):
                async with c.stream("hi") as s:
                    async for _ in s:
                        pass
        assert anyio.current_time() - started < 0.3 + 1.0
