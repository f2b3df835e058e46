"""The adapters' fast request building gives exactly what httpx's own constructors give."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.errors import MalformedResponse
from multimodel.providers import _request
from multimodel.providers.base import (
    Endpoint,
    ProviderAdapter,
    json_bytes,
    post_request,
    usage_of,
)
from multimodel.providers.registry import get_adapter
from multimodel.types import ChatRequest, Usage

ENDPOINT = Endpoint(
    name="d",
    model="m",
    wire_model="m-1",
    provider="openai",
    base_url="https://api.example.test:8443/v1",
    api_key=None,
    headers=(("x-extra", "1"),),
)


@pytest.mark.parametrize("adapter", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [False, True])
def test_adapter_requests_equal_httpx_requests(adapter: str, stream: bool) -> None:
    request = ChatRequest(
        messages=[{"role": "user", "content": 'héllo \u2028 "x"'}],
        model="m",
        max_tokens=5,
        temperature=0.5,
        stop=["\n"],
    )
    built = get_adapter(adapter).build_request(request, replace(ENDPOINT), stream=stream)
    expected = httpx.Request(
        built.method,
        built.url,
        content=built.content,
        headers=[
            (k, v) for k, v in built.headers.raw if k.lower() not in (b"host", b"content-length")
        ],
    )
    assert built.headers.raw == expected.headers.raw
    assert built.content == expected.content
    assert isinstance(built.stream, httpx.SyncByteStream)
    assert isinstance(expected.stream, httpx.SyncByteStream)
    assert list(built.stream) == list(expected.stream)
    assert json.loads(built.content)  # a JSON object


def test_post_request_reuses_prepared_headers_per_url() -> None:
    endpoint = replace(ENDPOINT)
    headers = httpx.Headers({"content-type": "application/json", "authorization": "Bearer k"})
    url = endpoint.url("chat/completions")
    first = post_request(endpoint, url, headers, b'{"a":1}')
    second = post_request(endpoint, url, headers, b"{}")
    assert first.headers["content-length"] == "7" and second.headers["content-length"] == "2"
    assert first.headers["host"] == "api.example.test:8443"
    assert "content-length" not in headers  # the prepared headers are not changed
    other = post_request(endpoint, httpx.URL("http://other.test/x"), headers, b"{}")
    assert other.headers["host"] == "other.test"
    assert (
        _request._direct_request_works()
    )  # the fast path is what runs on the httpx installed here


def test_a_replaced_endpoint_prepares_its_own_headers() -> None:
    # Prepared headers are kept per URL in the endpoint's memo, from the headers its adapter
    # derives from it (key, extra headers). dataclasses.replace() copies every __init__ field:
    # the memo is not one, so a copy with another key never gets the original's headers.
    original = replace(ENDPOINT)
    url = original.url("chat/completions")
    sent = post_request(original, url, httpx.Headers({"authorization": "Bearer old"}), b"{}")
    assert sent.headers["authorization"] == "Bearer old" and original.memo
    other = replace(original, headers=(("x-extra", "2"),))
    assert other.memo is not original.memo and not other.memo
    sent = post_request(other, url, httpx.Headers({"authorization": "Bearer new"}), b"{}")
    assert sent.headers["authorization"] == "Bearer new"


@pytest.mark.parametrize(
    "value",
    [
        {"model": "m", "messages": [{"role": "user", "content": 'é\u2028\x00"\\'}]},
        {"n": [1, -2.5, 1e300, None, True, False], "nested": {"k": [{}, []]}},
        {"nan": float("nan"), "inf": float("-inf")},
    ],
)
def test_json_bytes_equals_json_dumps(value: object) -> None:
    assert (
        json_bytes(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@given(value=st.dictionaries(st.text(), _json, max_size=4))
def test_json_bytes_is_json_dumps_for_any_body(value: dict[str, object]) -> None:
    # One shared encoder without the circular check (see _unchecked_encoder): same bytes.
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert json_bytes(value) == expected


def test_json_bytes_errors_like_json_dumps() -> None:
    circular: dict[str, object] = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular"):
        json_bytes(circular)
    nested: list[object] = []
    circular_deep = {"a": [{"b": nested}]}  # a cycle through lists and dicts
    nested.append(circular_deep)
    with pytest.raises(ValueError, match="Circular"):
        json_bytes(circular_deep)
    deep: object = 1
    for _ in range(100_000):  # no cycle, but deeper than the recursion limit: as json.dumps
        deep = [deep]
    with pytest.raises(RecursionError):
        json.dumps({"d": deep}, separators=(",", ":"), ensure_ascii=False)
    with pytest.raises(RecursionError):
        json_bytes({"d": deep})
    with pytest.raises(TypeError):
        json_bytes({"x": object()})
    assert json_bytes({"ok": 1}) == b'{"ok":1}'  # no state left behind by the failures


def test_usage_of_is_the_validated_usage() -> None:
    usage = usage_of(10, 5, 2, 1, 3)
    assert usage == Usage(
        input_tokens=10,
        output_tokens=5,
        cache_read_tokens=2,
        cache_write_tokens=1,
        reasoning_tokens=3,
    )
    assert usage.model_fields_set == set(Usage.model_fields)
    assert usage_of(10, 5, 2, 1, 3) is usage  # frozen, so shared


def test_a_built_request_is_the_state_httpx_builds_and_owns_its_headers() -> None:
    endpoint = replace(ENDPOINT)
    headers = httpx.Headers({"content-type": "application/json", "authorization": "Bearer k"})
    url = endpoint.url("chat/completions")
    built = post_request(endpoint, url, headers, b'{"a":1}')
    expected = httpx.Request("POST", url, headers=built.headers.raw[:-1], content=b'{"a":1}')
    assert vars(built).keys() == vars(expected).keys()
    assert built.method == expected.method and built.url == expected.url
    assert built.headers.raw == expected.headers.raw
    assert vars(built.headers) == vars(expected.headers)
    assert built.extensions == expected.extensions == {}
    assert built.content == expected.content and built.read() == b'{"a":1}'
    # What a client does to one request's headers and extensions reaches no other request.
    built.headers["x-call"] = "1"
    built.extensions["timeout"] = {"read": 1.0}
    again = post_request(endpoint, url, headers, b"{}")
    assert "x-call" not in again.headers and "x-call" not in headers
    assert again.extensions == {}
    assert (
        again.headers["content-length"] == "2"
        and again.headers.raw.count((b"Content-Length", b"2")) == 1
    )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def decode_like_json_loads(content: bytes) -> object:
    """What the adapters' body decoding gave before: json.loads, or MalformedResponse."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return MalformedResponse


def decoded(content: bytes) -> object:
    response = httpx.Response(200, content=content)
    try:
        return ProviderAdapter.json_body(response, replace(ENDPOINT))
    except MalformedResponse:
        return MalformedResponse


@settings(max_examples=300, deadline=None)
@given(
    value=st.dictionaries(st.text(), JSON_VALUES, max_size=4),
    before=st.sampled_from([b"", b"\n\n", b" ", b"\xef\xbb\xbf"]),
    after=st.sampled_from([b"", b"\n", b"  \r\n", b"x", b"}", b"{}"]),
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32"]),
)
def test_json_bodies_decode_as_json_loads_decodes_them(
    value: dict[str, object], before: bytes, after: bytes, encoding: str
) -> None:
    text = json.dumps(value, ensure_ascii=False)
    content = before + text.encode(encoding, "surrogatepass") + after
    assert decoded(content) == decode_like_json_loads(content)


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"a": 1', b'{"a": "\xff"}', b'{"a": "\xed\xa0\x80"}', b"{\x00}", b"{}", b'{"a":1}  '],
)
def test_odd_json_bodies_decode_as_json_loads_decodes_them(content: bytes) -> None:
    assert decoded(content) == decode_like_json_loads(content)
