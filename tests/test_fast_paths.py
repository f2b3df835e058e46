"""Per-request shortcuts give what the general code they skip gives.

Each test drives the shortcut and the plain way it replaces (written out here) over many
inputs: the request's text check skipping fields nobody set, the size bound reading a
request's fields from its ``__dict__``, the aiohttp transport's preset response headers, the
request id read from httpx's lowered names, OpenAI's usage counts read inline, and the aiohttp
transport's timeouts built slot by slot.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from multimodel._client._accounting import Accounting
from multimodel._core.text import find_unencodable, unencodable_field
from multimodel._transports.aiohttp import _TIMEOUT_FIELDS, _loaded, _timeout_builder
from multimodel.providers._usage import token_count, usage_of
from multimodel.providers.openai import parse_usage
from multimodel.security.limits import _upper_bound
from multimodel.types import ChatRequest

S = "\ud800"  # a lone surrogate: cannot be encoded as UTF-8
_OTHER = ("stop", "tools", "tool_choice", "response_format", "user", "metadata", "tags",
          "openai_params", "extra_body")  # fmt: skip


def _walk_every_field(request: ChatRequest) -> str | None:
    """unencodable_field as a plain walk: every message, then every other set field."""
    for index, message in enumerate(request.messages):
        bad = find_unencodable(message, f"messages.{index}")
        if bad is not None:
            return bad
    for name in _OTHER:
        value = getattr(request, name)
        if value is not None:
            bad = find_unencodable(value, name)
            if bad is not None:
                return bad
    return None


_text = st.sampled_from(["", "a", "é", S, f"x{S}"])
_texts = st.lists(_text, max_size=2)
_mapping = st.dictionaries(_text, _text, max_size=2)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "stop": _texts,
        "user": _text,
        "metadata": _mapping,
        "tags": _texts,
        "openai_params": st.dictionaries(_text, _text | st.integers(), max_size=2),
        "extra_body": _mapping,
        "tools": st.lists(
            st.builds(
                lambda d: {"name": "f", "description": d, "parameters": {"type": "object"}}, _text
            ),
            max_size=1,
        ),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]),
    },
)


@given(prompt=_text.filter(bool), fields=_fields)
def test_the_text_check_finds_what_a_walk_of_every_field_finds(
    prompt: str, fields: dict[str, Any]
) -> None:
    values = dict(ChatRequest(model="m", messages=[{"role": "user", "content": prompt}]).__dict__)
    for name, value in fields.items():
        # Each field validated on its own, so that a value the request's own checks refuse
        # (a tool choice naming no tool ...) does not stop the others reaching the text check.
        try:
            values[name] = ChatRequest.model_validate(
                {"model": "m", "messages": [{"role": "user", "content": "x"}], name: value}
            ).__dict__[name]
        except ValueError:
            continue
    request = ChatRequest.model_construct(**values)
    assert unencodable_field(request) == _walk_every_field(request)


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"name": "f", "parameters": {"type": "object"}}]},
        {"tool_choice": "auto"},
        {"response_format": {"type": "json_object"}},
        {"metadata": {"a": "b"}},
        {"openai_params": {"logprobs": True}},
        {"extra_body": {"k": 1}},
    ],
)
def test_the_size_bound_leaves_structured_fields_to_the_serializer(extra: dict[str, Any]) -> None:
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], **extra)
    assert _upper_bound(request, 2) == 1 << 62
    plain = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    assert _upper_bound(plain, 2) < 1 << 62


_names = st.sampled_from([b"Content-Type", b"x-request-id", b"X-Request-ID", b"SET-COOKIE", b"a"])


@given(raw=st.lists(st.tuples(_names, st.binary(max_size=4)), max_size=8).map(tuple))
def test_a_read_response_has_the_headers_httpx_builds(raw: tuple[tuple[bytes, bytes], ...]) -> None:
    mine = _loaded(200, raw, b"{}", httpx.Request("POST", "https://a.test"), {})
    theirs = httpx.Response(200, headers=raw)
    assert mine.headers.raw == theirs.headers.raw
    assert mine.headers.multi_items() == theirs.headers.multi_items()
    for name in {k for k, _ in raw}:
        assert mine.headers.get_list(name.decode()) == theirs.headers.get_list(name.decode())


_count = st.none() | st.integers(-3, 10**6) | st.sampled_from(["7", 1.5, True, [1]])


@given(
    prompt=_count,
    completion=_count,
    cached=_count,
    reasoning=_count,
    pdetails=st.booleans(),
    cdetails=st.booleans(),
)
def test_openai_usage_counts_are_token_counts(
    prompt: Any, completion: Any, cached: Any, reasoning: Any, pdetails: bool, cdetails: bool
) -> None:
    data: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if pdetails:
        data["prompt_tokens_details"] = {"cached_tokens": cached}
    if cdetails:
        data["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    assert parse_usage(data) == usage_of(
        token_count(prompt),
        token_count(completion),
        token_count(cached) if pdetails else 0,
        0,
        token_count(reasoning) if cdetails else 0,
    )


def _first_request_id(raw: tuple[tuple[bytes, bytes], ...]) -> str | None:
    """The first ``x-request-id``, else the first ``request-id``, by a scan of the pairs."""
    found = None
    for key, value in raw:
        if key.lower() == b"x-request-id":
            return value.decode("latin-1")
        if key.lower() == b"request-id" and found is None:
            found = value.decode("latin-1")
    return found


_id_names = st.sampled_from([b"X-Request-ID", b"x-request-id", b"Request-Id", b"request-id", b"a"])


@given(raw=st.lists(st.tuples(_id_names, st.binary(max_size=3)), max_size=6).map(tuple))
def test_the_request_id_is_the_first_of_its_headers(raw: tuple[tuple[bytes, bytes], ...]) -> None:
    assert Accounting._request_id(httpx.Headers(raw)) == _first_request_id(raw)
    assert Accounting._request_id(dict(httpx.Headers(raw))) == (
        httpx.Headers(raw).get("x-request-id") or httpx.Headers(raw).get("request-id")
    )


_seconds = st.none() | st.floats(0.001, 1e6) | st.integers(1, 100)


@given(total=_seconds, connect=_seconds, sock_read=_seconds, sock_connect=_seconds)
def test_a_built_aiohttp_timeout_is_the_constructed_one(
    total: Any, connect: Any, sock_read: Any, sock_connect: Any
) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    build = _timeout_builder(aiohttp.ClientTimeout)
    built = build(total, connect, sock_read, sock_connect)
    expected = aiohttp.ClientTimeout(
        total=total, connect=connect, sock_read=sock_read, sock_connect=sock_connect
    )
    assert type(built) is aiohttp.ClientTimeout
    assert built == expected and repr(built) == repr(expected) and hash(built) == hash(expected)
    assert [getattr(built, n) for n in _TIMEOUT_FIELDS] == [
        getattr(expected, n) for n in _TIMEOUT_FIELDS
    ]
