"""The response cache: keys, scopes, policy, the in-memory backend, serialization, counters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from multimodel._core.clock import ManualClock
from multimodel.cache import (
    CacheBackend,
    CachePolicy,
    MemoryCache,
    ResponseCache,
    cache_key,
    chunks_from_response,
    decode_response,
    encode_response,
    scope_for,
)
from multimodel.types import (
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    Usage,
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")
WEATHER_TOOL: dict[str, Any] = {
    "name": "weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
        "required": ["city"],
    },
}


def req(**kw: Any) -> ChatRequest:
    base: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "temperature": 0,
    }
    base.update(kw)
    return ChatRequest.model_validate(base)


def resp(text: str = "4", **kw: Any) -> ChatResponse:
    base: dict[str, Any] = {
        "id": "chatcmpl-1",
        "message": Message(role="assistant", content=text),
        "finish_reason": "stop",
        "raw_finish_reason": "stop",
        "usage": Usage(input_tokens=12, output_tokens=3, cache_read_tokens=2),
        "model": "gpt-4o-mini-2024-07-18",
        "provider": "openai",
        "deployment": "openai-east",
        "request_id": "req_abc",
        "latency": 1.25,
        "ttft": 0.3,
        "cost": Decimal("0.00042"),
        "cost_breakdown": {"input": "0.0001"},
        "trace": object(),
    }
    base.update(kw)
    return ChatResponse(**base)


def memory_cache(**policy: Any) -> tuple[ResponseCache, MemoryCache, ManualClock]:
    clock = ManualClock()
    backend = MemoryCache(max_entries=policy.pop("max_entries", 100), clock=clock)
    return ResponseCache(CachePolicy(**policy), backend=backend), backend, clock


# ------------------------------------------------------------------------- keys and scopes


def test_key_is_sha256_hex_and_deterministic() -> None:
    key = cache_key(req(), scope="global")
    assert HEX64.match(key)
    assert key == cache_key(req(), scope="global")


def test_scope_for() -> None:
    assert scope_for(req()) == "global"
    assert scope_for(req(user="alice")) == "user:alice"
    assert scope_for(req(user="alice"), "team") == "ns:team"
    # A namespace can never impersonate a user's scope.
    assert scope_for(req(), "user:alice") != scope_for(req(user="alice"))


def test_two_users_same_prompt_get_different_keys() -> None:
    a, b = req(user="alice"), req(user="bob")
    assert cache_key(a, scope=scope_for(a)) != cache_key(b, scope=scope_for(b))
    assert cache_key(a, scope=scope_for(a)) != cache_key(req(), scope=scope_for(req()))


def test_user_a_entry_is_never_served_to_user_b() -> None:
    cache, _, _ = memory_cache()
    assert cache.store(req(user="alice"), resp("alice's answer"))
    assert cache.lookup(req(user="bob")) is None
    assert cache.lookup(req()) is None  # nor to anonymous callers
    hit = cache.lookup(req(user="alice"))
    assert hit is not None
    assert hit.text == "alice's answer"


def test_namespace_shares_across_users_and_isolates_from_others() -> None:
    cache, _, _ = memory_cache()
    cache.store(req(user="alice"), resp("shared"), namespace="team-a")
    hit = cache.lookup(req(user="bob"), namespace="team-a")
    assert hit is not None
    assert hit.text == "shared"
    assert cache.lookup(req(user="bob"), namespace="team-b") is None
    assert cache.lookup(req(user="alice")) is None  # the per-user scope is separate


def test_policy_namespace_and_per_call_override() -> None:
    cache, _, _ = memory_cache(namespace="org")
    cache.store(req(user="alice"), resp("org answer"))
    assert cache.lookup(req(user="bob")) is not None  # shared by policy
    assert cache.lookup(req(user="bob"), namespace="other") is None  # per-call wins


def test_key_ignores_dict_ordering() -> None:
    tool_reordered = {
        "parameters": {
            "required": ["city"],
            "properties": {"unit": {"enum": ["C", "F"]}, "city": {"type": "string"}},
            "type": "object",
        },
        "description": "Weather for a city",
        "name": "weather",
    }
    a = req(
        tools=[WEATHER_TOOL],
        extra_body={"a": 1, "b": {"x": [1, 2], "y": None}},
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": {"p": 1, "q": 2}},
        },
    )
    b = req(
        tools=[tool_reordered],
        extra_body={"b": {"y": None, "x": [1, 2]}, "a": 1},
        response_format={
            "json_schema": {"schema": {"q": 2, "p": 1}, "name": "r"},
            "type": "json_schema",
        },
    )
    assert cache_key(a, scope="s") == cache_key(b, scope="s")


def test_key_equal_for_equivalent_inputs() -> None:
    assert cache_key(req(stop="x"), scope="s") == cache_key(req(stop=["x"]), scope="s")
    openai_tool = {"type": "function", "function": WEATHER_TOOL}
    assert cache_key(req(tools=[openai_tool]), scope="s") == cache_key(
        req(tools=[WEATHER_TOOL]), scope="s"
    )
    assert cache_key(req(tool_choice="auto"), scope="s") == cache_key(
        req(tool_choice={"mode": "auto"}), scope="s"
    )
    assert cache_key(req(temperature=0), scope="s") == cache_key(req(temperature=0.0), scope="s")


def test_key_changes_with_scope_and_version_prefix() -> None:
    assert cache_key(req(), scope="a") != cache_key(req(), scope="b")


ANSWER_CHANGES: list[dict[str, Any]] = [
    {"model": "gpt-4o"},
    {"messages": [{"role": "user", "content": "What is 2+3?"}]},
    {"messages": [{"role": "system", "content": "What is 2+2?"}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}]},
    {"messages": [{"role": "user", "content": "What is 2+2?", "name": "n"}]},
    {
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "name": "weather", "arguments": '{"city":"Oslo"}'}],
            },
            {"role": "tool", "content": "5C", "tool_call_id": "c1"},
        ]
    },
    {"max_tokens": 10},
    {"temperature": 0.5},
    {"top_p": 0.9},
    {"stop": ["\n"]},
    {"tools": [WEATHER_TOOL]},
    {"tools": [WEATHER_TOOL], "tool_choice": "required"},
    {"response_format": {"type": "json_object"}},
    {"seed": 7},
    {"extra_body": {"reasoning_effort": "high"}},
]


@pytest.mark.parametrize("change", ANSWER_CHANGES)
def test_key_changes_with_every_answer_changing_field(change: dict[str, Any]) -> None:
    assert cache_key(req(**change), scope="s") != cache_key(req(), scope="s")


def test_tool_call_details_change_the_key() -> None:
    def convo(call_id: str, args: str) -> ChatRequest:
        return req(
            messages=[
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": call_id, "name": "weather", "arguments": args}],
                },
                {"role": "tool", "content": "5C", "tool_call_id": call_id},
            ]
        )

    base = cache_key(convo("c1", "{}"), scope="s")
    assert cache_key(convo("c2", "{}"), scope="s") != base
    assert cache_key(convo("c1", '{"city":"Oslo"}'), scope="s") != base


def test_key_ignores_user_tags_metadata() -> None:
    plain = cache_key(req(), scope="s")
    assert cache_key(req(user="alice", tags=["x"], metadata={"k": "v"}), scope="s") == plain


def test_request_fields_are_all_classified() -> None:
    # A new ChatRequest field is hashed by default; this makes adding one a conscious decision.
    assert set(ChatRequest.model_fields) == {
        "messages", "model", "max_tokens", "temperature", "top_p", "stop", "tools",
        "tool_choice", "response_format", "seed", "openai_params", "extra_body",  # in the key
        "user", "metadata", "tags",  # not in the key
    }  # fmt: skip


def test_key_never_contains_secrets() -> None:
    secret = "sk-live-SECRET-0123456789"
    request = req(user=secret, metadata={"api_key": secret}, tags=[secret])
    for scope in (scope_for(request), scope_for(request, secret), "deployment:openai-east"):
        key = cache_key(request, scope=scope)
        assert HEX64.match(key)
        assert secret not in key


# Small domains, so that generated pairs are often equal and often different. Values are
# chosen so that Python equality matches JSON equality (no 1 vs 1.0 vs True).
_ANSWER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["m1", "m2"]),
    "messages": st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "system"]), "content": st.sampled_from(["a", "b"])}
        ),
        min_size=1,
        max_size=2,
    ),
    "max_tokens": st.sampled_from([None, 5, 6]),
    "temperature": st.sampled_from([0.0, 0.5]),
    "top_p": st.sampled_from([None, 0.5]),
    "stop": st.sampled_from([None, "x", ["x"], ["x", "y"]]),
    "tools": st.sampled_from(
        [None, [WEATHER_TOOL], [{"type": "function", "function": WEATHER_TOOL}]]
    ),
    "tool_choice": st.sampled_from([None, "auto", {"mode": "none"}]),
    "response_format": st.sampled_from([None, {"type": "json_object"}, {"type": "text"}]),
    "seed": st.sampled_from([None, 1, 2]),
    "extra_body": st.sampled_from([None, {"a": "1"}, {"a": "1", "b": "2"}, {"b": "2", "a": "1"}]),
}
_IGNORED_FIELDS = st.fixed_dictionaries(
    {
        "user": st.sampled_from([None, "alice", "bob"]),
        "tags": st.sampled_from([None, ["t1"], ["t2"]]),
        "metadata": st.sampled_from([None, {"k": "v"}, {"k": "w"}]),
    }
)
_NOT_IN_KEY = {"user", "tags", "metadata"}


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_key_equal_iff_answer_fields_equal(data: st.DataObject) -> None:
    # b is a copy of a with up to two answer fields redrawn (possibly to the same value) and
    # independently drawn user/tags/metadata, so equal and different pairs both come up often.
    a = data.draw(st.fixed_dictionaries(_ANSWER_FIELDS))
    redraw = data.draw(st.sets(st.sampled_from(sorted(_ANSWER_FIELDS)), max_size=2))
    b = {k: data.draw(_ANSWER_FIELDS[k]) if k in redraw else v for k, v in a.items()}
    ra = ChatRequest(**a, **data.draw(_IGNORED_FIELDS))
    rb = ChatRequest(**b, **data.draw(_IGNORED_FIELDS))
    same_answer = ra.model_dump(exclude=_NOT_IN_KEY) == rb.model_dump(exclude=_NOT_IN_KEY)
    event(f"same answer: {same_answer}")
    assert (cache_key(ra, scope="s") == cache_key(rb, scope="s")) is same_answer


# ----------------------------------------------------------------------------------- policy


def test_sampled_requests_are_not_cached_by_default() -> None:
    policy = CachePolicy()
    assert policy.cacheable(req(temperature=0))
    assert not policy.cacheable(req(temperature=0.7))
    assert not policy.cacheable(req(temperature=None))  # providers default to 1
    opted_in = CachePolicy(cache_sampled=True)
    assert opted_in.cacheable(req(temperature=0.7))
    assert opted_in.cacheable(req(temperature=None))


def test_override_flags() -> None:
    policy = CachePolicy()
    assert not policy.cacheable(req(temperature=0), override=False)
    assert policy.cacheable(req(temperature=1.0), override=True)
    assert not CachePolicy(cache_sampled=True).cacheable(req(temperature=1.0), override=False)


def test_sampled_skipped_end_to_end_unless_forced() -> None:
    cache, backend, _ = memory_cache()
    sampled = req(temperature=0.9)
    assert not cache.store(sampled, resp())
    assert cache.lookup(sampled) is None
    assert len(backend) == 0
    assert (cache.hits, cache.misses, cache.stores) == (0, 0, 0)  # skipped: counted nowhere
    assert cache.store(sampled, resp(), override=True)
    assert cache.lookup(sampled) is None  # the policy still skips it without the override
    assert cache.lookup(sampled, override=True) is not None


def test_cache_false_disables_for_one_call() -> None:
    cache, _, _ = memory_cache()
    cache.store(req(), resp())
    assert cache.lookup(req(), override=False) is None
    assert not cache.store(req(), resp("other"), override=False)
    hit = cache.lookup(req())
    assert hit is not None
    assert hit.text == "4"


def test_policy_validates() -> None:
    with pytest.raises(ValueError, match="ttl"):
        CachePolicy(ttl=0)
    with pytest.raises(ValueError, match="max_entries"):
        CachePolicy(max_entries=0)
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(max_entries=0)


def test_hits_failures_and_replays_are_not_stored() -> None:
    cache, backend, _ = memory_cache()
    assert not cache.store(req(), resp(finish_reason="error"))
    assert not cache.store(req(), resp(cached=True))
    assert len(backend) == 0


# --------------------------------------------------------------------------------- backend


def test_memory_cache_is_a_backend() -> None:
    backend: CacheBackend = MemoryCache(clock=ManualClock())
    backend.set("k", b"v", 1)
    assert backend.get("k") == b"v"
    backend.delete("k")
    backend.delete("k")  # absent: no error
    assert backend.get("k") is None


def test_ttl_expiry_with_manual_clock() -> None:
    cache, _, clock = memory_cache(ttl=60)
    cache.store(req(), resp())
    clock.advance(59.9)
    assert cache.lookup(req()) is not None
    clock.advance(0.2)
    assert cache.lookup(req()) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_per_call_ttl() -> None:
    cache, backend, clock = memory_cache(ttl=3600)
    cache.store(req(seed=1), resp(), ttl=5)
    cache.store(req(seed=2), resp())
    clock.advance(6)
    assert cache.lookup(req(seed=1)) is None
    assert cache.lookup(req(seed=2)) is not None
    with pytest.raises(ValueError, match="ttl"):
        cache.store(req(), resp(), ttl=0)
    backend.set("k", b"v", ttl=0)  # a backend told "do not keep" keeps nothing
    assert backend.get("k") is None


def test_lru_bound() -> None:
    clock = ManualClock()
    backend = MemoryCache(max_entries=3, clock=clock)
    for key in "abc":
        backend.set(key, key.encode(), 100)
    assert backend.get("a") == b"a"  # a is now the most recently used
    backend.set("d", b"d", 100)
    assert backend.get("b") is None  # the least recently used went
    assert [backend.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    assert len(backend) == 3


def test_default_backend_is_bounded_by_policy() -> None:
    cache = ResponseCache(CachePolicy(max_entries=2))
    for seed in range(3):
        cache.store(req(seed=seed), resp())
    assert isinstance(cache._backend, MemoryCache)
    assert len(cache._backend) == 2
    assert cache.lookup(req(seed=0)) is None


def test_clear() -> None:
    cache, backend, _ = memory_cache()
    cache.store(req(), resp())
    backend.clear()
    assert cache.lookup(req()) is None


def test_thread_safety() -> None:
    backend = MemoryCache(max_entries=500, clock=ManualClock())
    cache = ResponseCache(CachePolicy(), backend=backend)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(1000):
                key = f"{n}-{i % 700}"
                backend.set(key, key.encode(), 100)
                value = backend.get(key)
                assert value in (None, key.encode())  # may be evicted by another thread
                if i % 100 == 0:
                    request = req(seed=i)
                    cache.store(request, resp())
                    cache.lookup(request)
        except Exception as exc:  # noqa: BLE001 - collected, then asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(backend) <= 500
    assert cache.stores == 80
    assert cache.hits + cache.misses == 80


# --------------------------------------------------------------------------- serialization


def test_round_trip() -> None:
    original = resp(
        message=Message(
            role="assistant",
            content="Let me check.",
            tool_calls=[ToolCall(id="c1", name="weather", arguments='{"city":"Oslo"}')],
        ),
        finish_reason="tool_calls",
    )
    data = encode_response(original)
    assert b"trace" not in data
    assert b"cost" not in data
    assert b"latency" not in data
    hit = decode_response(data)
    assert hit.message == original.message
    assert hit.usage == original.usage
    for field in ("id", "model", "provider", "deployment", "request_id", "finish_reason"):
        assert getattr(hit, field) == getattr(original, field)
    assert hit.raw_finish_reason == "stop"
    assert hit.cached is True
    assert hit.cost == Decimal(0)
    assert hit.latency == 0.0
    assert hit.ttft is None
    assert hit.trace is None
    assert hit.cost_breakdown is None


def test_lookup_returns_a_free_cached_copy() -> None:
    cache, _, _ = memory_cache()
    cache.store(req(), resp())
    hit = cache.lookup(req())
    assert hit is not None
    assert (hit.cached, hit.cost, hit.text) == (True, Decimal(0), "4")
    assert (cache.hits, cache.misses, cache.stores) == (1, 0, 1)


def test_unicode_round_trip() -> None:
    hit = decode_response(encode_response(resp("héllo 世界 🌍")))
    assert hit.text == "héllo 世界 🌍"
    key = cache_key(req(messages=[{"role": "user", "content": "世界 🌍"}]), scope="user:é")
    assert HEX64.match(key)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\xff\xfe\x00",
        b"not json",
        b'{"id": "x"}',
        b"[1,2,3]",
        json.dumps({"id": "x", "unexpected": 1}).encode(),
    ],
)
def test_corrupt_entries_are_misses_and_deleted(garbage: bytes) -> None:
    cache, backend, _ = memory_cache()
    key = cache.key_for(req())
    backend.set(key, garbage, 100)
    assert cache.lookup(req()) is None
    assert backend.get(key) is None
    assert (cache.hits, cache.misses) == (0, 1)
    with pytest.raises(ValueError):
        decode_response(garbage)


def test_truncated_entry_is_a_miss() -> None:
    cache, backend, _ = memory_cache()
    key = cache.key_for(req())
    backend.set(key, encode_response(resp())[:-5], 100)
    assert cache.lookup(req()) is None


class _Broken:
    """A backend whose every operation fails, like an unreachable Redis."""

    def get(self, key: str) -> bytes | None:
        raise ConnectionError("down")

    def set(self, key: str, value: bytes, ttl: float) -> None:
        raise ConnectionError("down")

    def delete(self, key: str) -> None:
        raise ConnectionError("down")

    def clear(self) -> None:
        raise ConnectionError("down")

    async def aget(self, key: str) -> bytes | None:
        raise ConnectionError("down")

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        raise ConnectionError("down")

    async def adelete(self, key: str) -> None:
        raise ConnectionError("down")


def test_backend_failures_never_reach_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    cache = ResponseCache(backend=_Broken())
    assert cache.lookup(req()) is None
    assert cache.store(req(), resp()) is False
    assert cache.errors == 2
    assert "cache backend" in caplog.text


@pytest.mark.anyio
async def test_async_backend_failures_never_reach_the_caller() -> None:
    cache = ResponseCache(backend=_Broken())
    assert await cache.alookup(req()) is None
    assert await cache.astore(req(), resp()) is False
    assert cache.errors == 2


def test_unserializable_extra_body_is_not_cached() -> None:
    cache, backend, _ = memory_cache()
    weird = req(extra_body={"x": object()})
    assert cache.lookup(weird) is None
    assert not cache.store(weird, resp())
    assert len(backend) == 0


# ---------------------------------------------------------------------------------- stream


def _reassemble(chunks: list[Any]) -> tuple[str, list[ToolCall]]:
    text = "".join(c.text for c in chunks)
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for d in chunk.tool_calls:
            call = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = d.id or call["id"]
            call["name"] = d.name or call["name"]
            call["arguments"] += d.arguments
    return text, [ToolCall(**calls[i]) for i in sorted(calls)]


def test_stream_chunks_reassemble_text() -> None:
    long_text = "The quick brown fox jumps over the lazy dog. " * 10
    original = resp(long_text)
    chunks = chunks_from_response(original, chunk_chars=32)
    assert len(chunks) > 3
    text, calls = _reassemble(chunks)
    assert text == long_text
    assert calls == []
    last = chunks[-1]
    assert (last.finish_reason, last.usage) == ("stop", original.usage)
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {original.id}


def test_stream_chunks_reassemble_tool_calls() -> None:
    calls = [
        ToolCall(id="c1", name="weather", arguments='{"city":"Oslo"}'),
        ToolCall(id="c2", name="weather", arguments='{"city":"Rome"}', metadata={"sig": "x"}),
    ]
    original = resp(
        message=Message(role="assistant", content=None, tool_calls=calls),
        finish_reason="tool_calls",
    )
    chunks = chunks_from_response(original)
    text, rebuilt = _reassemble(chunks)
    assert text == ""
    assert [(c.id, c.name, c.arguments) for c in rebuilt] == [
        (c.id, c.name, c.arguments) for c in calls
    ]
    assert chunks[-2].tool_calls[1].metadata == {"sig": "x"}
    assert chunks[-1].finish_reason == "tool_calls"


def test_stream_chunks_of_empty_answer() -> None:
    chunks = chunks_from_response(resp(""))
    assert len(chunks) == 1
    assert chunks[0].finish_reason == "stop"
    with pytest.raises(ValueError, match="chunk_chars"):
        chunks_from_response(resp(), chunk_chars=0)


def test_stream_from_cache_hit() -> None:
    cache, _, _ = memory_cache()
    cache.store(req(), resp("cached words here"))
    hit = cache.lookup(req())
    assert hit is not None
    assert _reassemble(chunks_from_response(hit, chunk_chars=4))[0] == "cached words here"


# ----------------------------------------------------------------------------------- async


@pytest.mark.anyio
async def test_async_twins() -> None:
    cache, backend, clock = memory_cache(ttl=10)
    assert await cache.alookup(req()) is None
    assert await cache.astore(req(), resp())
    hit = await cache.alookup(req())
    assert hit is not None
    assert (hit.text, hit.cached) == ("4", True)
    assert await cache.alookup(req(user="bob")) is None
    backend.set(cache.key_for(req(seed=3)), b"garbage", 10)
    assert await cache.alookup(req(seed=3)) is None
    assert await backend.aget(cache.key_for(req(seed=3))) is None
    clock.advance(11)
    assert await cache.alookup(req()) is None
    assert (cache.hits, cache.misses, cache.stores) == (1, 4, 1)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_import_does_not_load_redis() -> None:
    out = _run("import sys, multimodel.cache; print('redis' in sys.modules)")
    assert out.stdout.strip() == "False", out.stderr


def test_missing_redis_package_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import multimodel.cache as c\n"
        "try:\n    c.RedisCache\nexcept ImportError as e:\n    print(e)\n"
    )
    out = _run(code)
    assert "pip install 'multimodel[redis]'" in out.stdout, out.stderr
