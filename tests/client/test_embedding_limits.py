"""Embedding inputs under the client's input limits and the caller's policies, as chat inputs
are: a typed error before anything is sent, batches cut to a policy's token cap, deployments
filtered by the policy, and no secret in an error's text. Both clients, at the HTTP boundary."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import multimodel as mm
from multimodel import errors
from multimodel.security import InputLimits, Policy, PolicySet, check_inputs

KEY = "sk-test-embed-limits-0123456789"

pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")


class Provider:
    """An OpenAI embeddings endpoint; records each request's inputs. ``echo_key`` answers 401
    with the caller's key in the message, as some providers do."""

    def __init__(self, *, echo_key: bool = False) -> None:
        self.echo_key = echo_key
        self.sent: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.sent.append(body["input"])
        if self.echo_key:
            key = request.headers["authorization"].removeprefix("Bearer ")
            message = f"Incorrect API key provided: {key}"
            return httpx.Response(401, json={"error": {"message": message, "type": "auth"}})
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t))]}
            for i, t in enumerate(body["input"])
        ]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return httpx.Response(
            200, json={"object": "list", "data": data, "model": body["model"], "usage": usage}
        )


def make(cls: Any, provider: Provider, **kw: Any) -> Any:
    deployments = [
        mm.Deployment(model="emb", provider="openai", api_key=KEY, provider_model=m, name=m)
        for m in ("text-embedding-3-small", "text-embedding-3-large")
    ]
    return cls(deployments=deployments, transport=httpx.MockTransport(provider), **kw)


LIMITS = InputLimits(max_message_chars=100, max_batch_size=5, max_request_bytes=300)
POLICIES = PolicySet(
    {
        "small-only": Policy(name="small-only", denied_models={"text-embedding-3-large"}),
        "nothing": Policy(name="nothing", allowed_providers={"anthropic"}),
        "short": Policy(name="short", max_input_tokens=10),
    },
    default="small-only",
    roles={"bob": "short"},
)

# (inputs, keywords, error type, what the message says, error.field)
REFUSED: list[tuple[list[str], dict[str, Any], type[Exception], str, str | None]] = [
    (["ok", "x" * 101], {}, errors.InvalidRequestError, "max_message_chars", "input[1]"),
    (["ok"] * 6, {}, errors.InvalidRequestError, "max_batch_size", "input"),
    # 100 characters of four UTF-8 bytes each: under the character limit, over the byte one
    (["\U0001f600" * 80], {}, errors.InvalidRequestError, "max_request_bytes", "input[0]"),
    (["ok", "bad \ud800"], {}, errors.InvalidRequestError, "lone surrogate", "input[1]"),
    (["ok"], {"policy": "nothing"}, errors.PolicyViolation, "nothing", None),
    (["ok", "y" * 60], {"user": "bob"}, errors.PolicyViolation, "input[1]", None),
]
IDS = ["chars", "count", "bytes", "surrogate", "policy-denies-all", "policy-max-input-tokens"]


def check_refused(exc: Exception, kind: type[Exception], says: str, field: str | None) -> None:
    assert type(exc) is kind
    assert says in str(exc)
    if field is not None:
        assert isinstance(exc, errors.InvalidRequestError) and exc.field == field


@pytest.mark.parametrize(("inputs", "kw", "kind", "says", "field"), REFUSED, ids=IDS)
def test_refused_before_anything_is_sent(
    inputs: list[str], kw: dict[str, Any], kind: type[Exception], says: str, field: str | None
) -> None:
    provider = Provider()
    with make(mm.Client, provider, limits=LIMITS, policies=POLICIES) as c:
        with pytest.raises(kind) as info:
            c.embed(inputs, model="emb", **kw)
        with pytest.raises(kind):  # the OpenAI-shaped surface too
            c.embeddings.create(input=inputs, model="emb", **kw)
    check_refused(info.value, kind, says, field)
    assert provider.sent == []


@pytest.mark.anyio
@pytest.mark.parametrize(("inputs", "kw", "kind", "says", "field"), REFUSED, ids=IDS)
async def test_async_refused_before_anything_is_sent(
    inputs: list[str], kw: dict[str, Any], kind: type[Exception], says: str, field: str | None
) -> None:
    provider = Provider()
    async with make(mm.AsyncClient, provider, limits=LIMITS, policies=POLICIES) as c:
        with pytest.raises(kind) as info:
            await c.embed(inputs, model="emb", **kw)
        with pytest.raises(kind):
            await c.embeddings.create(input=inputs, model="emb", **kw)
    check_refused(info.value, kind, says, field)
    assert provider.sent == []


def check_policy_routing(c: Any, provider: Provider, r: Any, short: Any) -> None:
    # the default policy denies the large model: every batch went to the small one
    assert set(r.deployments) == {"text-embedding-3-small"}
    # "short" caps a request at 10 estimated tokens (about four characters a token): each
    # batch was cut to fit it, so no request breaks the policy
    assert short.vectors == [[12.0]] * 4
    assert short.batches == 2
    assert provider.sent[-2:] == [["a" * 12] * 2, ["a" * 12] * 2]


def test_the_policy_filters_deployments_and_cuts_batches() -> None:
    provider = Provider()
    with make(mm.Client, provider, policies=POLICIES, strategy="round_robin") as c:
        r = c.embed(["a", "b", "c"], model="emb")
        r = c.embed(["d", "e", "f"], model="emb")
        short = c.embeddings.create(input=["a" * 12] * 4, model="emb", user="bob").multimodel
        check_policy_routing(c, provider, r, short)
        with pytest.raises(errors.InvalidRequestError, match="unknown policy|nope"):
            c.embed("x", model="emb", policy="nope")
    with make(mm.Client, Provider()) as c, pytest.raises(errors.InvalidRequestError) as info:
        c.embed("x", model="emb", policy="short")
    assert info.value.field == "policy"


@pytest.mark.anyio
async def test_async_the_policy_filters_deployments_and_cuts_batches() -> None:
    provider = Provider()
    async with make(mm.AsyncClient, provider, policies=POLICIES, strategy="round_robin") as c:
        await c.embed(["a", "b", "c"], model="emb")
        r = await c.embed(["d", "e", "f"], model="emb")
        out = await c.embeddings.create(input=["a" * 12] * 4, model="emb", user="bob")
        check_policy_routing(c, provider, r, out.multimodel)


def test_a_key_echoed_in_an_error_is_redacted() -> None:
    with make(mm.Client, Provider(echo_key=True)) as c:
        with pytest.raises(errors.MultimodelError) as info:
            c.embed("x", model="emb")
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in str(info.value.trace)


@pytest.mark.anyio
async def test_async_a_key_echoed_in_an_error_is_redacted() -> None:
    async with make(mm.AsyncClient, Provider(echo_key=True)) as c:
        with pytest.raises(errors.MultimodelError) as info:
            await c.embed("x", model="emb")
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_check_inputs_defaults_are_generous() -> None:
    check_inputs(["x" * 1_000_000] * 3)
    with pytest.raises(errors.InvalidRequestError, match="input"):
        check_inputs(["x"] * 10_001)


def test_an_empty_input_is_refused_before_sending() -> None:
    provider = Provider()
    with make(mm.Client, provider) as c, pytest.raises(errors.InvalidRequestError) as info:
        c.embed(["a", ""], model="emb")
    assert (info.value.field, provider.sent) == ("input[1]", [])


@pytest.mark.anyio
async def test_async_an_empty_input_is_refused_before_sending() -> None:
    provider = Provider()
    async with make(mm.AsyncClient, provider) as c:
        with pytest.raises(errors.InvalidRequestError, match="empty"):
            await c.embeddings.create(input=[""], model="emb")
    assert provider.sent == []


def test_cjk_text_is_cut_to_the_tokens_per_request() -> None:
    # OpenAI: 300,000 tokens per request. A CJK character is about a token: 2,048 inputs of
    # 200 characters (~409,600 tokens) need two requests, though they are only 409,600 chars.
    provider = Provider()
    texts = ["語" * 200] * 2048
    with make(mm.Client, provider) as c:
        r = c.embed(texts, model="emb")
    assert len(r.vectors) == 2048
    assert len(provider.sent) == 2
    assert all(sum(len(t) for t in batch) <= 300_000 for batch in provider.sent)
