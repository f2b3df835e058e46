"""Tests of the mock provider server over real sockets, with plain httpx."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from multimodel.testing import Behavior, MockDeployment, MockProviderServer, MockUsage
from multimodel.testing.behavior import WireFormat

FORMATS: list[WireFormat] = ["openai", "anthropic", "gemini"]
USER_TEXT = "hello there, mock"


def request_body(fmt: WireFormat, *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    if fmt == "openai":
        body: dict[str, Any] = {
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": USER_TEXT},
            ],
        }
    elif fmt == "anthropic":
        body = {
            "model": "claude-test",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": [{"type": "text", "text": USER_TEXT}]}],
        }
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": USER_TEXT}]}]}
    if stream and fmt != "gemini":
        body["stream"] = True
    body.update(extra)
    return body


def endpoint(
    server: MockProviderServer, name: str, fmt: WireFormat, *, stream: bool = False
) -> str:
    base = server.base_url(name)
    if fmt == "openai":
        return base + "/chat/completions"
    if fmt == "anthropic":
        return base + "/messages"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base}/models/gemini-test:{method}"


def call(
    client: httpx.Client,
    server: MockProviderServer,
    name: str,
    fmt: WireFormat,
    *,
    stream: bool = False,
    **extra: Any,
) -> httpx.Response:
    url = endpoint(server, name, fmt, stream=stream)
    return client.post(url, json=request_body(fmt, stream=stream, **extra))


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """Parse SSE by hand: ``(event name, data)`` per event; CRLF or LF framing."""
    text = raw.decode().replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        events.append((name, "\n".join(data)))
    return events


def one_server(fmt: WireFormat, behavior: Behavior, name: str = "dep") -> MockProviderServer:
    return MockProviderServer(deployments={name: MockDeployment(format=fmt, behavior=behavior)})


@pytest.fixture
def client() -> Any:
    with httpx.Client(timeout=5) as c:
        yield c


# -- non-streaming bodies ------------------------------------------------------------------------


def test_openai_body_and_headers(mock_server: MockProviderServer, client: httpx.Client) -> None:
    r = call(client, mock_server, "openai-mock", "openai")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"].startswith("req_")
    assert int(r.headers["content-length"]) == len(r.content)
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["model"] == "gpt-test"
    choice = data["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello from openai-mock",
        "refusal": None,
        "annotations": [],
    }
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] >= len(USER_TEXT) // 4
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_openai_usage_details(client: httpx.Client) -> None:
    usage = MockUsage(input_tokens=100, output_tokens=30, cached_tokens=40, reasoning_tokens=10)
    with one_server("openai", Behavior(usage=usage, text="x")) as server:
        data = call(client, server, "dep", "openai").json()
    assert data["usage"]["prompt_tokens"] == 100
    assert data["usage"]["completion_tokens"] == 30
    assert data["usage"]["total_tokens"] == 130
    assert data["usage"]["prompt_tokens_details"]["cached_tokens"] == 40
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 10


def test_anthropic_body_usage_excludes_cache(client: httpx.Client) -> None:
    usage = MockUsage(
        input_tokens=100, output_tokens=20, cached_tokens=60, cache_creation_tokens=10
    )
    with one_server("anthropic", Behavior(text="Hi!", usage=usage)) as server:
        r = call(client, server, "dep", "anthropic")
    assert r.status_code == 200
    assert r.headers["request-id"].startswith("req_")
    data = r.json()
    assert data["id"].startswith("msg_")
    assert data["type"] == "message"
    assert data["role"] == "assistant"
    assert data["model"] == "claude-test"
    assert data["content"] == [{"type": "text", "text": "Hi!"}]
    assert data["stop_reason"] == "end_turn"
    assert data["stop_sequence"] is None
    assert data["usage"]["input_tokens"] == 30  # 100 - 60 cache reads - 10 cache writes
    assert data["usage"]["cache_read_input_tokens"] == 60
    assert data["usage"]["cache_creation_input_tokens"] == 10
    assert data["usage"]["output_tokens"] == 20


def test_gemini_body(client: httpx.Client) -> None:
    usage = MockUsage(input_tokens=50, output_tokens=30, cached_tokens=20, reasoning_tokens=12)
    with one_server("gemini", Behavior(text="Bonjour", usage=usage)) as server:
        r = call(client, server, "dep", "gemini")
    assert r.status_code == 200
    data = r.json()
    candidate = data["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": "Bonjour"}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert data["modelVersion"] == "gemini-test"
    meta = data["usageMetadata"]
    assert meta["promptTokenCount"] == 50
    assert meta["cachedContentTokenCount"] == 20
    assert meta["thoughtsTokenCount"] == 12
    assert meta["candidatesTokenCount"] == 18  # excludes thinking
    assert meta["totalTokenCount"] == 80


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("openai", "length"), ("anthropic", "max_tokens"), ("gemini", "MAX_TOKENS")],
)
def test_finish_reason_translated(fmt: WireFormat, expected: str, client: httpx.Client) -> None:
    with one_server(fmt, Behavior(finish_reason="length")) as server:
        data = call(client, server, "dep", fmt).json()
    got = {
        "openai": lambda: data["choices"][0]["finish_reason"],
        "anthropic": lambda: data["stop_reason"],
        "gemini": lambda: data["candidates"][0]["finishReason"],
    }[fmt]()
    assert got == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_echo_replies_with_last_user_text(fmt: WireFormat, client: httpx.Client) -> None:
    with one_server(fmt, Behavior(echo=True)) as server:
        raw = call(client, server, "dep", fmt).text
    assert USER_TEXT in raw


# -- stream framing ------------------------------------------------------------------------------


def test_openai_stream_framing(mock_server: MockProviderServer, client: httpx.Client) -> None:
    extra = {"stream_options": {"include_usage": True}}
    r = call(client, mock_server, "openai-mock", "openai", stream=True, **extra)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["transfer-encoding"] == "chunked"
    assert b"\r" not in r.content  # LF framing
    events = sse_events(r.content)
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == "Hello from openai-mock"
    assert len(chunks) == 1 + 3 + 1 + 1  # role, one per word, finish, usage
    finish = chunks[-2]
    assert finish["choices"][0]["delta"] == {}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_openai_stream_without_usage_and_done(client: httpx.Client) -> None:
    with one_server("openai", Behavior(text="abcdef", chunks=2, omit_done=True)) as server:
        r = call(client, server, "dep", "openai", stream=True)
    chunks = [json.loads(data) for _, data in sse_events(r.content)]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "abc", "def", None]
    assert all("usage" not in c for c in chunks)
    assert b"[DONE]" not in r.content


def test_anthropic_stream_framing(client: httpx.Client) -> None:
    usage = MockUsage(input_tokens=40, output_tokens=9, cached_tokens=15)
    with one_server("anthropic", Behavior(text="one two three", usage=usage)) as server:
        r = call(client, server, "dep", "anthropic", stream=True)
    assert r.headers["request-id"].startswith("req_")
    events = sse_events(r.content)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(data) for _, data in events]
    assert [p["type"] for p in payloads] == names
    start = payloads[0]["message"]
    assert start["content"] == []
    assert start["usage"]["input_tokens"] == 25
    assert start["usage"]["cache_read_input_tokens"] == 15
    text = "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
    assert text == "one two three"
    delta = payloads[-2]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == 9  # cumulative, not an increment
    assert delta["usage"]["input_tokens"] == 25


def test_gemini_stream_framing(client: httpx.Client) -> None:
    usage = MockUsage(input_tokens=10, output_tokens=8, reasoning_tokens=2)
    with one_server("gemini", Behavior(text="a b c d", usage=usage)) as server:
        r = call(client, server, "dep", "gemini", stream=True)
        array = client.post(
            endpoint(server, "dep", "gemini", stream=True).split("?")[0],
            json=request_body("gemini"),
        )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.content.endswith(b"}\r\n\r\n")
    assert b"[DONE]" not in r.content
    assert all(line.endswith(b"\r") for line in r.content.split(b"\n")[:-1])
    chunks = [json.loads(data) for _, data in sse_events(r.content)]
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "a b c d"
    totals = [c["usageMetadata"]["totalTokenCount"] for c in chunks]
    assert totals == sorted(totals)
    assert "candidatesTokenCount" not in chunks[0]["usageMetadata"]
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 6
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] == 18
    # Without alt=sse the stream endpoint answers one JSON array.
    assert array.headers["content-type"] == "application/json"
    assert [c["candidates"][0].get("finishReason") for c in array.json()][-1] == "STOP"


def test_chunks_and_interval(client: httpx.Client) -> None:
    with one_server("openai", Behavior(text="x" * 30, chunks=4, chunk_interval=0.05)) as server:
        start = time.perf_counter()
        r = call(client, server, "dep", "openai", stream=True)
        elapsed = time.perf_counter() - start
    contents = [
        json.loads(d)["choices"][0]["delta"].get("content") for _, d in sse_events(r.content)[:-1]
    ]
    assert len([c for c in contents if c]) == 4
    assert elapsed >= 0.18


def test_latency(client: httpx.Client) -> None:
    with one_server("anthropic", Behavior(latency=0.2)) as server:
        start = time.perf_counter()
        call(client, server, "dep", "anthropic")
        assert time.perf_counter() - start >= 0.2


# -- tool calls ----------------------------------------------------------------------------------

CALLS = [("get_weather", {"city": "Paris", "unit": "C"}), ("lookup", {"q": "mock"})]


def test_openai_tool_calls(client: httpx.Client) -> None:
    with one_server("openai", Behavior(tool_calls=CALLS)) as server:
        body = call(client, server, "dep", "openai").json()
        r = call(client, server, "dep", "openai", stream=True)
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    got = [
        (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message["tool_calls"]
    ]
    assert got == CALLS
    assert all(
        c["id"].startswith("call_") and c["type"] == "function" for c in message["tool_calls"]
    )
    chunks = [json.loads(d) for _, d in sse_events(r.content)[:-1]]
    calls: dict[int, dict[str, Any]] = {}
    fragments = 0
    for chunk in chunks:
        for frag in chunk["choices"][0]["delta"].get("tool_calls", []):
            fragments += 1
            entry = calls.setdefault(frag["index"], {"name": None, "args": ""})
            if "id" in frag:
                assert entry["name"] is None
                assert frag["function"]["arguments"] == ""
                entry["name"] = frag["function"]["name"]
            entry["args"] += frag["function"]["arguments"]
    assert fragments > 2 * len(CALLS)  # arguments split over several chunks
    assert [(calls[i]["name"], json.loads(calls[i]["args"])) for i in sorted(calls)] == CALLS
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_anthropic_tool_calls(client: httpx.Client) -> None:
    with one_server("anthropic", Behavior(text="Let me check.", tool_calls=CALLS)) as server:
        body = call(client, server, "dep", "anthropic").json()
        r = call(client, server, "dep", "anthropic", stream=True)
    assert body["stop_reason"] == "tool_use"
    assert body["content"][0] == {"type": "text", "text": "Let me check."}
    assert [(b["name"], b["input"]) for b in body["content"][1:]] == CALLS
    assert all(
        b["type"] == "tool_use" and b["id"].startswith("toolu_") for b in body["content"][1:]
    )
    payloads = [json.loads(d) for _, d in sse_events(r.content)]
    blocks: dict[int, dict[str, Any]] = {}
    for p in payloads:
        if p["type"] == "content_block_start":
            blocks[p["index"]] = {
                "block": p["content_block"],
                "json": "",
                "text": "",
                "stopped": False,
            }
        elif p["type"] == "content_block_delta":
            d = p["delta"]
            if d["type"] == "input_json_delta":
                blocks[p["index"]]["json"] += d["partial_json"]
            else:
                blocks[p["index"]]["text"] += d["text"]
        elif p["type"] == "content_block_stop":
            blocks[p["index"]]["stopped"] = True
    assert sorted(blocks) == [0, 1, 2]
    assert all(b["stopped"] for b in blocks.values())
    assert blocks[0]["text"] == "Let me check."
    for i, (name, args) in enumerate(CALLS, start=1):
        assert blocks[i]["block"]["type"] == "tool_use"
        assert blocks[i]["block"]["name"] == name
        assert blocks[i]["block"]["input"] == {}
        assert json.loads(blocks[i]["json"]) == args
    assert payloads[-2]["delta"]["stop_reason"] == "tool_use"


def test_gemini_tool_calls(client: httpx.Client) -> None:
    with one_server("gemini", Behavior(tool_calls=CALLS)) as server:
        body = call(client, server, "dep", "gemini").json()
        r = call(client, server, "dep", "gemini", stream=True)
    parts = body["candidates"][0]["content"]["parts"]
    assert [(p["functionCall"]["name"], p["functionCall"]["args"]) for p in parts] == CALLS
    assert all(p["thoughtSignature"] for p in parts)
    assert body["candidates"][0]["finishReason"] == "STOP"
    chunks = [json.loads(d) for _, d in sse_events(r.content)]
    streamed = [
        p["functionCall"]
        for c in chunks
        for p in c["candidates"][0]["content"]["parts"]
        if "functionCall" in p
    ]
    assert [(f["name"], f["args"]) for f in streamed] == CALLS  # whole calls, one per part


# -- errors and scripts --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_script_sequence_with_retry_after(fmt: WireFormat, client: httpx.Client) -> None:
    with one_server(fmt, Behavior(script=[429, 500, 200], retry_after=2)) as server:
        responses = [call(client, server, "dep", fmt) for _ in range(4)]
        assert server.stats("dep").errors == 2
    assert [r.status_code for r in responses] == [429, 500, 200, 200]
    assert responses[0].headers["retry-after"] == "2"
    assert "retry-after" not in responses[1].headers
    rate, server_error = responses[0].json(), responses[1].json()
    if fmt == "openai":
        assert rate["error"]["type"] == "rate_limit_error"
        assert set(rate["error"]) == {"message", "type", "param", "code"}
        assert server_error["error"]["type"] == "server_error"
    elif fmt == "anthropic":
        assert rate["type"] == "error"
        assert rate["error"]["type"] == "rate_limit_error"
        assert rate["request_id"] == responses[0].headers["request-id"]
        assert server_error["error"]["type"] == "api_error"
    else:
        assert rate["error"]["code"] == 429
        assert rate["error"]["status"] == "RESOURCE_EXHAUSTED"
        retry = [d for d in rate["error"]["details"] if d["@type"].endswith("RetryInfo")]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]
        assert server_error["error"]["status"] == "INTERNAL"


@pytest.mark.parametrize(
    ("fmt", "status", "code", "check"),
    [
        ("openai", 429, "insufficient_quota", lambda e: e["error"]["type"] == "insufficient_quota"),
        (
            "openai",
            400,
            "context_length_exceeded",
            lambda e: (
                e["error"]["code"] == "context_length_exceeded"
                and e["error"]["type"] == "invalid_request_error"
            ),
        ),
        (
            "anthropic",
            529,
            None,
            lambda e: e["error"] == {"type": "overloaded_error", "message": "Overloaded"},
        ),
        (
            "anthropic",
            400,
            "context_length_exceeded",
            lambda e: "prompt is too long" in e["error"]["message"],
        ),
        ("gemini", 503, "overloaded_error", lambda e: e["error"]["status"] == "UNAVAILABLE"),
    ],
)
def test_error_codes(
    fmt: WireFormat, status: int, code: str | None, check: Any, client: httpx.Client
) -> None:
    behavior = Behavior(fail_rate=1.0, fail_status=status, error_code=code, retry_after=0.5)
    with one_server(fmt, behavior) as server:
        r = call(client, server, "dep", fmt)
    assert r.status_code == status
    assert check(r.json())
    if status in (429, 503, 529):
        assert float(r.headers["retry-after"]) == 0.5


def test_fail_rate_is_deterministic_with_seed(client: httpx.Client) -> None:
    behavior = Behavior(fail_rate=0.5, fail_status=503, seed=1234)
    deployments = {n: MockDeployment(format="openai", behavior=behavior) for n in ("a", "b")}
    with MockProviderServer(deployments=deployments) as server:
        first = [call(client, server, "a", "openai").status_code for _ in range(30)]
        second = [call(client, server, "b", "openai").status_code for _ in range(30)]
        server.set_behavior("a", behavior)  # restarts the random sequence
        third = [call(client, server, "a", "openai").status_code for _ in range(30)]
        assert server.stats("a").errors == 2 * first.count(503)
    assert first == second == third
    assert set(first) == {200, 503}


# -- broken streams ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_stream_error_after(fmt: WireFormat, client: httpx.Client) -> None:
    with one_server(fmt, Behavior(text="a b c d e", stream_error_after=2)) as server:
        r = call(client, server, "dep", fmt, stream=True)
        assert server.stats("dep").errors == 1
    assert r.status_code == 200
    events = sse_events(r.content)
    name, data = events[-1]
    error = json.loads(data)
    if fmt == "openai":
        assert name is None
        assert error["error"]["type"] == "server_error"
        assert len(events) == 1 + 2 + 1  # role chunk, two chunks, error; no [DONE]
    elif fmt == "anthropic":
        assert name == "error"
        assert error == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        assert "message_stop" not in [n for n, _ in events]
    else:
        assert error["error"]["code"] == 503
        assert error["error"]["status"] == "UNAVAILABLE"
        assert len(events) == 2 + 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_drop_after(fmt: WireFormat, client: httpx.Client) -> None:
    with one_server(fmt, Behavior(text="a b c d e", drop_after=2)) as server:
        received = b""
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            with client.stream(
                "POST",
                endpoint(server, "dep", fmt, stream=True),
                json=request_body(fmt, stream=True),
            ) as r:
                assert r.status_code == 200
                for part in r.iter_raw():
                    received += part
        assert server.stats("dep").errors == 1
    assert received.count(b"data: ") >= 2
    assert b"[DONE]" not in received
    assert b"message_stop" not in received
    assert b"finishReason" not in received


def test_drop_before_response(client: httpx.Client) -> None:
    with one_server("openai", Behavior(drop_before_response=True)) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            call(client, server, "dep", "openai")
        server.set_behavior("dep", Behavior(script=["drop", 200]))
        with pytest.raises(httpx.RemoteProtocolError):
            call(client, server, "dep", "openai")
        assert call(client, server, "dep", "openai").status_code == 200


def test_stall_after_triggers_client_read_timeout() -> None:
    server = one_server("anthropic", Behavior(text="a b c d", stall_after=2)).start()
    try:
        timeout = httpx.Timeout(5, read=0.5)
        with httpx.Client(timeout=timeout) as c:
            received = b""
            start = time.perf_counter()
            with pytest.raises(httpx.ReadTimeout):
                with c.stream(
                    "POST",
                    endpoint(server, "dep", "anthropic"),
                    json=request_body("anthropic", stream=True),
                ) as r:
                    for part in r.iter_raw():
                        received += part
            assert 0.4 < time.perf_counter() - start < 3
        assert received.count(b"event: content_block_delta") == 2
    finally:
        start = time.perf_counter()
        server.stop()  # must not wait for the 30 s stall
        assert time.perf_counter() - start < 3


# -- routing, connections, observability -------------------------------------------------------


def test_unknown_deployment_and_bad_requests(
    mock_server: MockProviderServer, client: httpx.Client
) -> None:
    url = mock_server.url
    r = client.post(f"{url}/nope/v1/chat/completions", json={})
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = client.post(f"{url}/nope/v1/messages", json={})
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"
    r = client.post(f"{url}/nope/v1beta/models/g:generateContent", json={})
    assert r.status_code == 404
    assert r.json()["error"]["status"] == "NOT_FOUND"
    # Known deployment, wrong route / method / body.
    r = client.post(mock_server.base_url("anthropic-mock") + "/chat/completions", json={})
    assert r.status_code == 404
    r = client.get(mock_server.base_url("openai-mock") + "/chat/completions")
    assert r.status_code == 405
    r = client.post(
        mock_server.base_url("gemini-mock") + "/models/g:generateContent",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    stats = mock_server.stats("gemini-mock")
    assert (stats.requests, stats.errors) == (1, 1)
    # The connection survived all of it.
    assert mock_server.connections_opened == 1


def test_keep_alive_and_connection_close(
    mock_server: MockProviderServer, client: httpx.Client
) -> None:
    for _ in range(50):
        assert call(client, mock_server, "openai-mock", "openai").status_code == 200
    assert mock_server.connections_opened == 1
    r = client.post(
        endpoint(mock_server, "openai-mock", "openai"),
        json=request_body("openai"),
        headers={"connection": "close"},
    )
    assert r.headers["connection"] == "close"
    assert call(client, mock_server, "openai-mock", "openai").status_code == 200
    assert mock_server.connections_opened == 2
    assert mock_server.stats("openai-mock").requests == 52


def test_concurrent_requests_all_answered() -> None:
    behavior = Behavior(latency=0.005)
    deployments: dict[str, MockDeployment] = {
        f: MockDeployment(format=f, behavior=behavior) for f in FORMATS
    }
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(fmt: WireFormat, n: int) -> None:
        with httpx.Client(timeout=10) as c:
            for i in range(n):
                r = call(c, server, fmt, fmt, stream=i % 2 == 1)
                with lock:
                    statuses.append(r.status_code)

    with MockProviderServer(deployments=deployments) as server:
        threads = [threading.Thread(target=worker, args=(FORMATS[i % 3], 50)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert sum(server.stats(f).requests for f in FORMATS) == 200
        assert server.stats("openai").max_in_flight >= 2  # two threads share it
        assert server.connections_opened == 4
    assert statuses == [200] * 200


def test_requests_are_recorded_and_bounded(client: httpx.Client) -> None:
    deployments = {"dep": MockDeployment(format="gemini")}
    with MockProviderServer(deployments=deployments, max_recorded=5) as server:
        for i in range(8):
            client.post(
                endpoint(server, "dep", "gemini", stream=True),
                json={"contents": [{"parts": [{"text": f"msg {i}"}]}]},
                headers={"X-Goog-Api-Key": "k"},
            )
        recorded = server.requests("dep")
        assert server.stats("dep").requests == 8
        assert server.stats("dep").streams == 8
        server.reset("dep")
        assert server.requests("dep") == []
    assert len(recorded) == 5
    last = recorded[-1]
    assert last.method == "POST"
    assert last.path == "/dep/v1beta/models/gemini-test:streamGenerateContent"
    assert last.query == {"alt": "sse"}
    assert last.headers["x-goog-api-key"] == "k"
    assert last.body["contents"][0]["parts"][0]["text"] == "msg 7"


def test_add_set_behavior_remove_at_runtime(client: httpx.Client) -> None:
    with MockProviderServer(deployments={}) as server:
        server.add("late", MockDeployment(format="openai", model="fixed-model"))
        assert server.base_url("late") == f"{server.url}/late/v1"
        data = call(client, server, "late", "openai").json()
        assert data["model"] == "fixed-model"
        server.set_behavior("late", Behavior(text="changed"))
        assert server.behavior("late").text == "changed"
        data = call(client, server, "late", "openai").json()
        assert data["choices"][0]["message"]["content"] == "changed"
        server.remove("late")
        assert client.post(f"{server.url}/late/v1/chat/completions", json={}).status_code == 404
        with pytest.raises(KeyError):
            server.stats("late")
        with pytest.raises(ValueError):
            server.add("bad/name", MockDeployment(format="openai"))


def test_behavior_validation() -> None:
    with pytest.raises(ValueError):
        Behavior(fail_rate=2)
    with pytest.raises(ValueError):
        Behavior(script=[99])
    with pytest.raises(ValueError):
        Behavior(chunks=0)
    with pytest.raises(ValueError):
        MockDeployment(format="cohere")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Behavior.from_dict({"latenccy": 1})
    b = Behavior.from_dict(
        {
            "tool_calls": [["f", {"a": 1}], {"name": "g"}],
            "usage": {"input_tokens": 3},
            "script": [500],
        }
    )
    assert b.tool_calls == (("f", {"a": 1}), ("g", {}))
    assert b.usage == MockUsage(input_tokens=3)
    assert b.script == (500,)


# -- fixtures and the command line --------------------------------------------------------------


def test_mock_server_fixture(mock_server: MockProviderServer) -> None:
    port = mock_server.port
    assert mock_server.base_url("openai-mock") == f"http://127.0.0.1:{port}/openai-mock/v1"
    assert mock_server.base_url("anthropic-mock") == f"http://127.0.0.1:{port}/anthropic-mock/v1"
    assert mock_server.base_url("gemini-mock") == f"http://127.0.0.1:{port}/gemini-mock/v1beta"


def test_mock_server_factory_fixture(mock_server_factory: Any, client: httpx.Client) -> None:
    a = mock_server_factory({"x": MockDeployment(format="anthropic", behavior=Behavior(text="A"))})
    b = mock_server_factory()
    assert a.port != b.port
    assert call(client, a, "x", "anthropic").json()["content"][0]["text"] == "A"
    assert call(client, b, "gemini-mock", "gemini").status_code == 200


def _start_cli(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "multimodel.testing.server", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    killer = threading.Timer(15, proc.kill)  # never let a broken start hang the suite
    killer.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        killer.cancel()
    assert line.startswith("READY http://127.0.0.1:"), line
    return proc, line.split()[1]


def test_command_line(tmp_path: Path, client: httpx.Client) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps({"deployments": {"fast": {"format": "openai", "behavior": {"text": "cli"}}}})
    )
    proc, url = _start_cli(["--port", "0", "--config", str(scenario)])
    try:
        r = client.post(f"{url}/fast/v1/chat/completions", json=request_body("openai"))
        assert r.json()["choices"][0]["message"]["content"] == "cli"
        assert proc.stdin is not None
        proc.stdin.close()  # closing stdin stops the server
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_command_line_sigterm(client: httpx.Client) -> None:
    proc, url = _start_cli(["--ignore-stdin"])
    try:
        r = client.post(f"{url}/anthropic-mock/v1/messages", json=request_body("anthropic"))
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.stdout is not None:
            proc.stdout.close()
