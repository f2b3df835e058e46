"""Embeddings at the HTTP boundary: request and response bodies (OpenAI and its compatibles,
Azure, Gemini), batching and reassembly (hypothesis), failover mid-batch, cost, both clients
and the OpenAI-shaped ``client.embeddings.create``."""

from __future__ import annotations

import base64
import json
import struct
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multimodel as mm
from multimodel import errors
from multimodel.embeddings import estimate_tokens, split_batches
from multimodel.providers import register_provider
from multimodel.providers.presets import ProviderPreset
from multimodel.testing import MockDeployment, MockProviderServer

KEY = "sk-test-embeddings-0123456789"
LIMITS = (1, 2, 3, 7)
for _n in LIMITS:
    register_provider(
        ProviderPreset(
            f"test-embed-{_n}",
            "openai",
            None,
            ("TEST_EMBED_KEY",),
            options={"embedding_batch_size": _n},
        )
    )


def vector(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 997), 0.5]


def b64_vector(values: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


class Provider:
    """Answers embeddings requests of the OpenAI and Gemini wire formats; records them.
    ``fail`` lists hosts that answer 500."""

    def __init__(self, fail: set[str] = frozenset(), usage: bool = True) -> None:  # type: ignore[assignment]
        self.fail = set(fail)
        self.usage = usage
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.url.host, request.url.path, body))
        if request.url.host in self.fail:
            return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})
        if request.url.path.endswith(":batchEmbedContents"):
            texts = [r["content"]["parts"][0]["text"] for r in body["requests"]]
            return httpx.Response(200, json={"embeddings": [{"values": vector(t)} for t in texts]})
        texts = body["input"]
        encode: Any = b64_vector if body.get("encoding_format") == "base64" else list
        data = [
            {"object": "embedding", "index": i, "embedding": encode(vector(t))}
            for i, t in enumerate(texts)
        ]
        data.reverse()  # the index says where each belongs, not the order
        answer: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if self.usage:
            tokens = sum(len(t) for t in texts)
            answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return httpx.Response(200, json=answer)


def make(cls: Any, provider: Provider, *deployments: mm.Deployment, **kw: Any) -> Any:
    return cls(
        deployments=list(deployments),
        transport=httpx.MockTransport(provider),
        retry=mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.002),
        **kw,
    )


def openai_deployment(
    model: str = "text-embedding-3-small", host: str = "a.test", **kw: Any
) -> mm.Deployment:
    return mm.Deployment(
        model=model, provider=kw.pop("provider", "openai"), api_key=KEY,
        base_url=f"https://{host}/v1", name=host, **kw,
    )  # fmt: skip


def test_openai_request_and_response() -> None:
    provider = Provider()
    with make(mm.Client, provider, openai_deployment()) as c:
        r = c.embed(["hello", "world!"], dimensions=3)
    assert r.vectors == [vector("hello"), vector("world!")]
    ((host, path, body),) = provider.requests
    assert (host, path) == ("a.test", "/v1/embeddings")
    assert body == {
        "model": "text-embedding-3-small",
        "input": ["hello", "world!"],
        "encoding_format": "base64",  # decoded to floats (compared above)
        "dimensions": 3,
    }
    assert r.usage.input_tokens == 11 and not r.usage.estimated
    # text-embedding-3-small: $0.02 per million input tokens
    assert r.cost == Decimal("0.02") * 11 / 1_000_000
    assert (r.batches, r.deployments) == (1, ["a.test"])


def test_one_string_is_one_input_and_the_openai_shape() -> None:
    provider = Provider()
    with make(mm.Client, provider, openai_deployment()) as c:
        out = c.embeddings.create(input="hello", model="text-embedding-3-small")
        with pytest.raises(errors.InvalidRequestError, match="encoding_format"):
            c.embeddings.create(input="x", model="text-embedding-3-small", encoding_format="int8")
        with pytest.raises(errors.InvalidRequestError, match="no inputs"):
            c.embed([])
    assert out.object == "list"
    assert [d.embedding for d in out.data] == [vector("hello")]
    assert out.data[0].index == 0
    assert out.usage.prompt_tokens == 5
    assert out.multimodel.vectors == [vector("hello")]


def test_azure_url() -> None:
    provider = Provider()
    deployment = mm.Deployment(
        model="emb", provider="azure", api_key=KEY, base_url="https://res.test",
        provider_model="my-embedder",
    )  # fmt: skip
    with make(mm.Client, provider, deployment) as c:
        c.embed("hi")
    ((_, path, _),) = provider.requests
    assert path == "/openai/deployments/my-embedder/embeddings"


def test_gemini_batch_embed_contents() -> None:
    provider = Provider()
    deployment = mm.Deployment(
        model="gemini-embedding-001", provider="gemini", api_key="AIza-test-0123456789",
        base_url="https://g.test/v1beta",
    )  # fmt: skip
    with make(mm.Client, provider, deployment) as c:
        r = c.embed(["a", "bb", "ccc"], dimensions=8)
    assert r.vectors == [vector(t) for t in ["a", "bb", "ccc"]]
    ((_, path, body),) = provider.requests
    assert path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert body["requests"][1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "bb"}]},
        "outputDimensionality": 8,
    }
    assert r.usage.estimated  # Gemini sends no counts
    assert r.cost is not None and r.cost > 0


def test_gemini_splits_at_100_inputs() -> None:
    provider = Provider()
    deployment = mm.Deployment(
        model="gemini-embedding-001", provider="gemini", api_key="AIza-test-0123456789",
        base_url="https://g.test/v1beta",
    )  # fmt: skip
    texts = [f"t{i}" for i in range(250)]
    with make(mm.Client, provider, deployment) as c:
        r = c.embed(texts)
    # batches run concurrently: their requests arrive in any order
    assert sorted(len(b["requests"]) for _, _, b in provider.requests) == [50, 100, 100]
    assert r.vectors == [vector(t) for t in texts]
    assert r.batches == 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30),
    limit=st.sampled_from(LIMITS),
)
def test_any_inputs_any_limit_same_vectors_same_order(texts: list[str], limit: int) -> None:
    provider = Provider()
    deployment = openai_deployment(model="emb", provider=f"test-embed-{limit}")
    with make(mm.Client, provider, deployment) as c:
        r = c.embed(texts)
    assert r.vectors == [vector(t) for t in texts]
    sent = [t for _, _, body in provider.requests for t in body["input"]]
    assert sorted(sent) == sorted(texts)
    assert all(len(body["input"]) <= limit for _, _, body in provider.requests)
    assert r.batches == len(provider.requests) == -(-len(texts) // limit)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30),
    limits=st.lists(st.sampled_from(LIMITS), min_size=1, max_size=3),
    data=st.data(),
)
def test_cache_hits_and_mixed_limits_same_vectors_same_order(
    texts: list[str], limits: list[int], data: st.DataObject
) -> None:
    """Some inputs already cached, a group whose deployments take different batch sizes: only
    the misses are sent, in batches every deployment takes, and every input still gets its
    own vector in its place."""
    warm = data.draw(st.lists(st.sampled_from(texts), max_size=len(texts)), label="warm")
    provider = Provider()
    group = [
        openai_deployment(model="emb", host=f"h{i}.test", provider=f"test-embed-{limit}")
        for i, limit in enumerate(limits)
    ]
    with make(mm.Client, provider, *group, cache=True, strategy="round_robin") as c:
        if warm:
            c.embed(warm)
        provider.requests.clear()
        r = c.embed(texts)
    assert r.vectors == [vector(t) for t in texts]
    misses = [t for t in texts if t not in set(warm)]
    sent = [t for _, _, body in provider.requests for t in body["input"]]
    assert sorted(sent) == sorted(misses)
    assert all(len(body["input"]) <= min(limits) for _, _, body in provider.requests)
    assert (r.cached, r.batches) == (len(texts) - len(misses), len(provider.requests))


@given(
    texts=st.lists(st.text(max_size=40), max_size=60),
    items=st.integers(1, 10),
    tokens=st.none() | st.integers(1, 30),
)
def test_split_batches_covers_the_input_in_order(
    texts: list[str], items: int, tokens: int | None
) -> None:
    batches = split_batches(texts, items, tokens)
    flat = [i for start, end in batches for i in range(start, end)]
    assert flat == list(range(len(texts)))
    for start, end in batches:
        assert 1 <= end - start <= items
        if tokens is not None and end - start > 1:
            assert sum(estimate_tokens(t) for t in texts[start:end]) <= tokens


def test_failover_mid_batch_keeps_the_order() -> None:
    provider = Provider()
    a = openai_deployment(model="emb", host="a.test", provider="test-embed-2")
    b = openai_deployment(model="emb", host="b.test", provider="test-embed-2")
    texts = [f"text {i}" for i in range(8)]
    with make(mm.Client, provider, a, b, strategy="round_robin") as c:
        provider.fail = {"a.test"}
        r = c.embed(texts)
    assert r.vectors == [vector(t) for t in texts]
    assert r.deployments == ["b.test"] * 4
    assert {h for h, _, _ in provider.requests} == {"a.test", "b.test"}


def test_a_batch_that_fails_everywhere_raises() -> None:
    provider = Provider(fail={"a.test"})
    with make(mm.Client, provider, openai_deployment(), max_retries=1) as c:
        with pytest.raises(errors.AllAttemptsFailed):
            c.embed(["x"])


def test_a_group_without_embeddings_is_refused() -> None:
    provider = Provider()
    claude = mm.Deployment(model="claude", provider="anthropic", api_key="sk-ant-test-0123456789")
    deepseek = mm.Deployment(model="ds", provider="deepseek", api_key=KEY)
    with make(mm.Client, provider, claude, deepseek) as c:
        with pytest.raises(errors.InvalidRequestError, match="offers no embeddings"):
            c.embed("x", model="claude")
        with pytest.raises(errors.InvalidRequestError, match="offers no embeddings"):
            c.embed("x", model="ds")
        with pytest.raises(errors.UnknownModelError):
            c.embed("x", model="nope")
    assert provider.requests == []


@pytest.mark.parametrize("dimensions", [0, -3, "3", 2.5, True])
def test_dimensions_that_are_not_a_whole_number_above_zero_are_refused(dimensions: Any) -> None:
    provider = Provider()
    with make(mm.Client, provider, openai_deployment()) as c:
        with pytest.raises(errors.InvalidRequestError, match="dimensions must be a whole") as exc:
            c.embed("x", dimensions=dimensions)
        assert exc.value.field == "dimensions"
        with pytest.raises(errors.InvalidRequestError, match="dimensions must be a whole"):
            c.embeddings.create(model="text-embedding-3-small", input="x", dimensions=dimensions)
    assert provider.requests == []


def test_usage_is_tracked() -> None:
    provider = Provider()
    with make(mm.Client, provider, openai_deployment()) as c:
        c.embed(["abcd"] * 3)
        stats = c.stats()
    group = stats.models["text-embedding-3-small"]
    assert (group.requests, group.failures, group.input_tokens, group.output_tokens) == (
        1,
        0,
        12,
        0,
    )
    assert group.cost == Decimal("0.02") * 12 / 1_000_000


@pytest.mark.anyio
async def test_async_embed_and_create() -> None:
    provider = Provider()
    a = openai_deployment(model="emb", host="a.test", provider="test-embed-3")
    texts = [f"t{i}" for i in range(10)]
    async with make(mm.AsyncClient, provider, a) as c:
        r = await c.embed(texts)
        out = await c.embeddings.create(input=texts[:2], model="emb")
    assert r.vectors == [vector(t) for t in texts]
    assert r.batches == 4
    assert [d.embedding for d in out.data] == [vector(t) for t in texts[:2]]


@pytest.mark.anyio
async def test_async_failover_mid_batch() -> None:
    provider = Provider(fail={"a.test"})
    a = openai_deployment(model="emb", host="a.test", provider="test-embed-1")
    b = openai_deployment(model="emb", host="b.test", provider="test-embed-1")
    texts = ["x", "yy", "zzz"]
    async with make(mm.AsyncClient, provider, a, b) as c:
        r = await c.embed(texts)
    assert r.vectors == [vector(t) for t in texts]
    assert r.deployments == ["b.test"] * 3


# -- over the mock server ---------------------------------------------------------------------


def server_deployments(server: MockProviderServer) -> list[mm.Deployment]:
    return [
        mm.Deployment(
            model="emb", provider="openai", api_key=KEY, base_url=server.base_url("o"), name="o"
        ),
        mm.Deployment(
            model="gem", provider="gemini", api_key="AIza-test-0123456789",
            base_url=server.base_url("g"), name="g", provider_model="gemini-embedding-001",
        ),
    ]  # fmt: skip


MOCKS = {"o": MockDeployment(format="openai"), "g": MockDeployment(format="gemini")}


def test_the_mock_server_answers_embeddings() -> None:
    texts = ["alpha", "beta", "alpha"]
    with MockProviderServer(MOCKS) as server, mm.Client(server_deployments(server)) as c:
        o = c.embed(texts, model="emb", dimensions=4)
        g = c.embed(texts, model="gem")
        assert server.requests("g")[0].path.endswith(
            "/models/gemini-embedding-001:batchEmbedContents"
        )
    assert [len(v) for v in o.vectors] == [4, 4, 4]
    assert o.vectors[0] == o.vectors[2] != o.vectors[1]
    assert g.vectors[0] == g.vectors[2] and len(g.vectors[0]) == 8
    assert g.usage.estimated and not o.usage.estimated


@pytest.mark.anyio
async def test_async_over_the_mock_server() -> None:
    with MockProviderServer(MOCKS) as server:
        async with mm.AsyncClient(server_deployments(server)) as c:
            o = await c.embed(["a", "b"], model="emb")
            g = await c.embeddings.create(input=["a", "b"], model="gem")
    assert len(o.vectors) == len(g.data) == 2


# -- the response cache -----------------------------------------------------------------------


def test_cache_hits_skip_the_provider() -> None:
    provider = Provider()
    with make(mm.Client, provider, openai_deployment(), cache=True) as c:
        first = c.embed(["a", "bb"])
        second = c.embed(["bb", "ccc", "a"])
        third = c.embed(["a"], cache=False)
        other = c.embed(["a"], dimensions=2)  # another dimension count: another entry
        assert c.cache is not None and c.cache.hits == 2
    assert [b["input"] for _, _, b in provider.requests] == [["a", "bb"], ["ccc"], ["a"], ["a"]]
    assert second.vectors == [vector("bb"), vector("ccc"), vector("a")]
    assert (first.cached, second.cached, third.cached, other.cached) == (0, 2, 0, 0)
    assert second.usage.input_tokens == 3  # only "ccc" was sent and billed
    assert second.batches == 1


@pytest.mark.anyio
async def test_async_cache_serves_everything() -> None:
    provider = Provider()
    async with make(mm.AsyncClient, provider, openai_deployment(), cache=True) as c:
        await c.embed(["a", "b"])
        again = await c.embed(["b", "a"])
    assert len(provider.requests) == 1
    assert again.vectors == [vector("b"), vector("a")]
    assert (again.cached, again.batches, again.cost, again.usage.input_tokens) == (2, 0, 0, 0)


def test_an_embeddings_answer_larger_than_a_chat_answer_may_be_is_read() -> None:
    """A full batch of large vectors is over the 32 MiB chat-answer limit (as JSON numbers)
    and is still read: embeddings answers have their own, higher limit; a chat answer that
    large is refused as malformed."""
    dims, count = 3072, 600
    number = "0.0123456789012345"
    row = "[" + ",".join([number] * dims) + "]"
    items = ",".join(
        f'{{"object":"embedding","index":{i},"embedding":{row}}}' for i in range(count)
    )
    body = f'{{"object":"list","data":[{items}],"usage":{{"prompt_tokens":1,"total_tokens":1}}}}'
    assert len(body) > 32 * 1024 * 1024

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/embeddings"):
            return httpx.Response(200, content=body, headers={"content-type": "application/json"})
        big = '{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"'
        return httpx.Response(200, content=big + "a" * (33 * 1024 * 1024) + '"}}]}')

    dep = mm.Deployment(
        model="text-embedding-3-large", provider="openai", api_key=KEY, base_url="https://e.test/v1"
    )
    with mm.Client([dep], transport=httpx.MockTransport(handle), max_retries=0) as client:
        answer = client.embed([f"text {i}" for i in range(count)], model="text-embedding-3-large")
        assert len(answer.vectors) == count and len(answer.vectors[0]) == dims
        with pytest.raises(errors.MalformedResponse, match="byte limit"):
            client.query("hi", model="text-embedding-3-large")
