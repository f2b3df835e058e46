"""Structured outputs and the response cache, at the HTTP boundary: only an answer that
validated (a repaired one included) is stored, so an identical call later never starts from an
invalid one; on both clients, for ``query`` and for ``stream``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import multimodel as mm
from multimodel import errors
from multimodel.cache import ResponseCache, decode_response, encode_response

KEY = "sk-test-structured-cache-0123456789"

pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")


class City(BaseModel):
    name: str
    population: int


GOOD = json.dumps({"name": "Paris", "population": 2_100_000})
BAD = json.dumps({"name": "Paris", "population": "many"})


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-c",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }


def stream_body(text: str) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": "chatcmpl-c",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    half = len(text) // 2
    parts = [chunk({"role": "assistant", "content": text[:half]}), chunk({"content": text[half:]})]
    return "".join([*parts, chunk({}, "stop"), "data: [DONE]\n\n"]).encode()


class Provider:
    """Answers in order (the last one repeats), as a JSON body or an SSE stream as asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = answers
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        text = self.answers[min(self.calls, len(self.answers)) - 1]
        if json.loads(request.content).get("stream"):
            headers = {"content-type": "text/event-stream"}
            return httpx.Response(200, headers=headers, content=stream_body(text))
        return httpx.Response(200, json=completion(text))


class DictBackend:
    """A cache backend the test can see into (the ``CacheBackend`` protocol over a dict)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def clear(self) -> None:
        self.data.clear()

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        self.set(key, value, ttl)

    async def adelete(self, key: str) -> None:
        self.delete(key)


def make(cls: Any, provider: Provider, backend: DictBackend | None = None) -> Any:
    return cls(
        deployments=[
            mm.Deployment(model="m", provider="openai", api_key=KEY, base_url="https://p.test/v1")
        ],
        transport=httpx.MockTransport(provider),
        cache=ResponseCache(backend=DictBackend() if backend is None else backend),
    )


ASK: dict[str, Any] = {"model": "m", "response_format": City, "temperature": 0}


def test_an_invalid_answer_is_not_cached() -> None:
    provider = Provider(BAD, GOOD)
    with make(mm.Client, provider) as c:
        with pytest.raises(errors.StructuredOutputError):
            c.query("Paris?", structured_retries=0, **ASK)
        # the identical call is sent again (the invalid answer was not kept) and validates
        second = c.query("Paris?", structured_retries=0, **ASK)
        assert provider.calls == 2 and not second.cached
        third = c.query("Paris?", structured_retries=0, **ASK)
        assert provider.calls == 2 and third.cached
        assert third.parsed == City(name="Paris", population=2_100_000)


def test_a_repaired_answer_is_cached_under_the_callers_request() -> None:
    provider = Provider(BAD, GOOD)
    with make(mm.Client, provider) as c:
        first = c.query("Paris?", **ASK)
        assert provider.calls == 2 and first.parsed == City(name="Paris", population=2_100_000)
        again = c.query("Paris?", **ASK)
        assert provider.calls == 2 and again.cached and again.parsed == first.parsed
        assert c.cache.stores == 1  # the repaired answer only, not the invalid one


def test_an_invalid_entry_already_in_the_cache_is_not_served() -> None:
    # An entry another writer (or an older version) stored: not served; the call asks afresh
    # and the validated answer replaces it.
    backend = DictBackend()
    provider = Provider(GOOD)
    with make(mm.Client, provider, backend) as c:
        c.query("Paris?", **ASK)
        ((key, value),) = backend.data.items()
        stored = decode_response(value)
        bad = stored.model_copy(update={"message": mm.Message(role="assistant", content=BAD)})
        backend.data[key] = encode_response(bad)
        again = c.query("Paris?", structured_retries=0, **ASK)
        assert provider.calls == 2 and not again.cached and again.parsed is not None
        assert c.query("Paris?", **ASK).cached


def test_a_stream_with_an_invalid_answer_is_not_cached() -> None:
    provider = Provider(BAD, GOOD)
    with make(mm.Client, provider) as c:
        pieces: list[str] = []
        with pytest.raises(errors.StructuredOutputError):
            with c.stream("Paris?", **ASK) as stream:
                pieces.extend(chunk.text for chunk in stream)
        assert "".join(pieces) == BAD  # every chunk came before the error
        with c.stream("Paris?", **ASK) as stream:
            final = stream.get_final_response()
        assert provider.calls == 2 and not final.cached
        assert final.parsed == City(name="Paris", population=2_100_000)
        with c.stream("Paris?", **ASK) as stream:
            final = stream.get_final_response()
        assert provider.calls == 2 and final.cached and final.parsed is not None
        # and a query is served the streamed, validated answer
        assert c.query("Paris?", **ASK).cached


@pytest.mark.anyio
async def test_async_an_invalid_answer_is_not_cached() -> None:
    provider = Provider(BAD, GOOD)
    async with make(mm.AsyncClient, provider) as c:
        with pytest.raises(errors.StructuredOutputError):
            await c.query("Paris?", structured_retries=0, **ASK)
        second = await c.query("Paris?", structured_retries=0, **ASK)
        assert provider.calls == 2 and not second.cached
        third = await c.query("Paris?", **ASK)
        assert provider.calls == 2 and third.cached and third.parsed == second.parsed


@pytest.mark.anyio
async def test_async_a_repaired_answer_is_cached_under_the_callers_request() -> None:
    provider = Provider(BAD, GOOD)
    async with make(mm.AsyncClient, provider) as c:
        first = await c.query("Paris?", **ASK)
        again = await c.query("Paris?", **ASK)
        assert provider.calls == 2 and again.cached and again.parsed == first.parsed
        assert c.cache.stores == 1


@pytest.mark.anyio
async def test_async_a_stream_with_an_invalid_answer_is_not_cached() -> None:
    provider = Provider(BAD, GOOD)
    async with make(mm.AsyncClient, provider) as c:
        with pytest.raises(errors.StructuredOutputError):
            async with c.stream("Paris?", **ASK) as stream:
                await stream.get_final_response()
        async with c.stream("Paris?", **ASK) as stream:
            final = await stream.get_final_response()
        assert provider.calls == 2 and not final.cached and final.parsed is not None
        async with c.stream("Paris?", **ASK) as stream:
            final = await stream.get_final_response()
        assert provider.calls == 2 and final.cached and final.parsed is not None
