"""How each OpenAI-wire deployment is sent a schema, at the HTTP boundary, on ``Client`` and
``AsyncClient`` (asyncio and trio): natively (``response_format`` type ``json_schema``) or JSON
mode with the schema in a system message, decided per deployment: its own
``structured_output``, else (Groq, Together, Qwen, OpenRouter: support differs by model) the
catalog's entry for that model on that provider, else the preset. The fake provider below
answers ``json_schema`` for a model without it with the 400 Groq and others send, so a
deployment sent the wrong shape fails; either way the answer is validated."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import multimodel as mm
from multimodel import errors
from multimodel.catalog import default_catalog
from multimodel.providers import Endpoint, structured_output_mode
from multimodel.providers.presets import builtin_presets
from multimodel.testing import Behavior, MockDeployment, MockProviderServer

pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")

KEY = "sk-test-modes-0123456789"


class City(BaseModel):
    name: str
    population: int


GOOD = {"name": "Paris", "population": 2_100_000}
BAD = {"name": "Paris", "population": "many"}
NO_JSON_SCHEMA = "This model does not support response format `json_schema`."


class PerModelProvider:
    """An OpenAI-compatible provider that holds only the models in ``native`` to a schema:
    ``json_schema`` for another model is a 400. Answers in order (the last one repeats);
    request bodies recorded."""

    def __init__(self, native: set[str], *answers: Any) -> None:
        self.native = native
        self.answers = list(answers) or [GOOD]
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        kind = (body.get("response_format") or {}).get("type")
        if kind == "json_schema" and body["model"] not in self.native:
            error = {"message": NO_JSON_SCHEMA, "type": "invalid_request_error"}
            return httpx.Response(400, json={"error": error})
        answer = self.answers[min(len(self.bodies), len(self.answers)) - 1]
        message = {"role": "assistant", "content": json.dumps(answer)}
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-m",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            },
        )


def make(cls: Any, provider: PerModelProvider, *deployments: mm.Deployment, **kw: Any) -> Any:
    return cls(deployments=list(deployments), transport=httpx.MockTransport(provider), **kw)


def deployment(provider: str, wire: str, **kw: Any) -> mm.Deployment:
    kw.setdefault("model", "m")
    return mm.Deployment(
        provider=provider, provider_model=wire, api_key=KEY, base_url="https://p.test/v1", **kw
    )


def assert_json_mode(body: dict[str, Any]) -> None:
    """JSON mode, the schema in a system message put first."""
    assert body["response_format"] == {"type": "json_object"}
    first = body["messages"][0]
    assert first["role"] == "system"
    schema = json.loads(first["content"].split("\n", 1)[1])
    assert schema == City.model_json_schema()
    assert body["messages"][-1] == {"role": "user", "content": "capital?"}


def assert_json_schema(body: dict[str, Any]) -> None:
    """The schema natively, adjusted to strict mode, and no schema in the prompt."""
    fmt = body["response_format"]
    assert (fmt["type"], fmt["json_schema"]["name"], fmt["json_schema"]["strict"]) == (
        "json_schema",
        "City",
        True,
    )
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert [m["role"] for m in body["messages"]] == ["user"]


def catalog_with(**entry: Any) -> Any:
    """The bundled catalog plus one model."""
    catalog = default_catalog().copy()
    catalog.add({"context_window": 131072, "max_output_tokens": 8192, **entry})
    return catalog


GROQ_KIMI = {
    "id": "moonshotai/kimi-k2-instruct",
    "provider": "groq",
    "capabilities": ["chat", "json", "structured_output"],
}

# (deployment, the models the provider holds to a schema, client options, expected shape)
CASES: dict[str, tuple[mm.Deployment, set[str], dict[str, Any], str]] = {
    # Groq, a model the bundled catalog knows without structured_output: JSON mode.
    "groq-catalog-lacks": (
        deployment("groq", "llama-3.3-70b-versatile"),
        {"moonshotai/kimi-k2-instruct"},
        {},
        "json_mode",
    ),
    # Groq, a model the catalog (here: the user's addition) knows with it: natively.
    "groq-catalog-has": (
        deployment("groq", "moonshotai/kimi-k2-instruct"),
        {"moonshotai/kimi-k2-instruct"},
        {"catalog": catalog_with(**GROQ_KIMI)},
        "json_schema",
    ),
    # Groq, a model the catalog does not know: the preset's default, natively.
    "groq-unknown": (
        deployment("groq", "openai/gpt-oss-120b"),
        {"openai/gpt-oss-120b"},
        {},
        "json_schema",
    ),
    # Together and Qwen (under its alias) likewise, from the bundled catalog.
    "together-catalog-lacks": (
        deployment("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        set(),
        {},
        "json_mode",
    ),
    "dashscope-catalog-lacks": (deployment("dashscope", "qwen-turbo"), set(), {}, "json_mode"),
    # The catalog knows the model only on another provider (meta): not this provider's say.
    "together-other-providers-entry": (
        deployment("together", "my-llama", model="llama-3.3-70b"),
        {"my-llama"},
        {},
        "json_schema",
    ),
    # The deployment's own setting wins over the catalog and over the preset.
    "qwen-explicit-json-schema": (
        deployment("qwen", "qwen-plus", structured_output="json_schema"),
        {"qwen-plus"},
        {},
        "json_schema",
    ),
    "deepseek-explicit-json-schema": (
        deployment("deepseek", "deepseek-chat", structured_output="json_schema"),
        {"deepseek-chat"},
        {},
        "json_schema",
    ),
    "openai-explicit-json-mode": (
        deployment("openai", "gpt-4o-mini", structured_output="json_mode"),
        set(),
        {},
        "json_mode",
    ),
    # DeepSeek's preset: JSON mode. OpenAI, Azure and xAI: natively, catalog or not.
    "deepseek-preset": (deployment("deepseek", "deepseek-chat"), set(), {}, "json_mode"),
    "openai": (deployment("openai", "gpt-4o-mini"), {"gpt-4o-mini"}, {}, "json_schema"),
    "azure": (deployment("azure", "my-4o", model="gpt-4o"), {"my-4o"}, {}, "json_schema"),
    "xai": (deployment("xai", "grok-3"), {"grok-3"}, {}, "json_schema"),
}


def check(case: str, provider: PerModelProvider, dep: Any, response: Any) -> None:
    expected = CASES[case][3]
    assert structured_output_mode(dep) == expected
    (body,) = provider.bodies
    (assert_json_mode if expected == "json_mode" else assert_json_schema)(body)
    assert response.parsed == City.model_validate(GOOD)


@pytest.mark.parametrize("case", CASES)
def test_each_deployment_gets_the_shape_its_model_takes(case: str) -> None:
    dep, native, options, _ = CASES[case]
    provider = PerModelProvider(native)
    with make(mm.Client, provider, dep, **options) as c:
        r = c.query("capital?", model=dep.model, response_format=City)
        check(case, provider, c.deployments[0], r)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES)
async def test_async_each_deployment_gets_the_shape_its_model_takes(case: str) -> None:
    dep, native, options, _ = CASES[case]
    provider = PerModelProvider(native)
    async with make(mm.AsyncClient, provider, dep, **options) as c:
        r = await c.query("capital?", model=dep.model, response_format=City)
        check(case, provider, c.deployments[0], r)


def test_the_fake_provider_refuses_json_schema_for_a_model_without_it() -> None:
    # What a Groq model without json_schema answers (and what the catalog spares it): a 400,
    # not retried. Forcing the native shape on it shows the refusal is real.
    dep = deployment("groq", "llama-3.3-70b-versatile", structured_output="json_schema")
    provider = PerModelProvider(set())
    with make(mm.Client, provider, dep) as c, pytest.raises(errors.BadRequestError) as info:
        c.query("capital?", model="m", response_format=City)
    assert NO_JSON_SCHEMA in str(info.value)
    assert len(provider.bodies) == 1


# -- validated either way ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json_mode", "json_schema"])
def test_an_answer_that_does_not_fit_is_repaired_then_raised_in_either_mode(mode: str) -> None:
    wire = "moonshotai/kimi-k2-instruct" if mode == "json_schema" else "llama-3.1-8b-instant"
    dep = deployment("groq", wire)
    catalog = catalog_with(**GROQ_KIMI)
    provider = PerModelProvider({"moonshotai/kimi-k2-instruct"}, BAD, GOOD)
    with make(mm.Client, provider, dep, catalog=catalog) as c:
        r = c.query("capital?", model="m", response_format=City)
    assert r.parsed == City.model_validate(GOOD)
    first, repair = provider.bodies
    assert (first["response_format"]["type"], repair["response_format"]["type"]) == (
        ("json_object",) * 2 if mode == "json_mode" else ("json_schema",) * 2
    )
    assert repair["messages"][-2]["content"] == json.dumps(BAD)  # the answer, sent back

    provider = PerModelProvider({"moonshotai/kimi-k2-instruct"}, BAD)
    with (
        make(mm.Client, provider, dep, catalog=catalog) as c,
        pytest.raises(errors.StructuredOutputError) as info,
    ):
        c.query("capital?", model="m", response_format=City)
    assert json.loads(info.value.raw_text) == BAD
    assert [e["loc"] for e in info.value.errors] == [("population",)]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["json_mode", "json_schema"])
async def test_async_an_answer_that_does_not_fit_raises_in_either_mode(mode: str) -> None:
    wire = "moonshotai/kimi-k2-instruct" if mode == "json_schema" else "llama-3.1-8b-instant"
    dep = deployment("groq", wire)
    provider = PerModelProvider({"moonshotai/kimi-k2-instruct"}, BAD)
    async with make(mm.AsyncClient, provider, dep, catalog=catalog_with(**GROQ_KIMI)) as c:
        with pytest.raises(errors.StructuredOutputError) as info:
            await c.query("capital?", model="m", response_format=City, structured_retries=0)
    (body,) = provider.bodies
    assert body["response_format"]["type"] == ("json_object" if mode == "json_mode" else mode)
    assert json.loads(info.value.raw_text) == BAD


# -- a group that mixes both, and a stream over real sockets ----------------------------------


def test_one_group_sends_each_deployment_its_own_shape() -> None:
    deps = [
        deployment("groq", "llama-3.3-70b-versatile", name="groq"),
        deployment("openai", "gpt-4o-mini", name="openai"),
    ]
    provider = PerModelProvider({"gpt-4o-mini"})
    with make(mm.Client, provider, *deps, strategy="round_robin") as c:
        served = {c.query("capital?", model="m", response_format=City).deployment for _ in "ab"}
    assert served == {"groq", "openai"}
    shapes = {b["model"]: b["response_format"]["type"] for b in provider.bodies}
    assert shapes == {"llama-3.3-70b-versatile": "json_object", "gpt-4o-mini": "json_schema"}


def stream_server() -> MockProviderServer:
    behavior = Behavior(text=json.dumps(GOOD), chunks=5)
    return MockProviderServer({"groq": MockDeployment(format="openai", behavior=behavior)})


def stream_deployment(server: MockProviderServer) -> mm.Deployment:
    return mm.Deployment(
        model="llama-3.3-70b", provider="groq", provider_model="llama-3.3-70b-versatile",
        api_key=KEY, base_url=server.base_url("groq"),
    )  # fmt: skip


def test_a_stream_in_json_mode_ends_with_the_validated_object() -> None:
    with stream_server() as server, mm.Client(deployments=[stream_deployment(server)]) as c:
        with c.stream("capital?", response_format=City) as stream:
            text = "".join(chunk.text for chunk in stream)
        (request,) = server.requests("groq")
    assert stream.response is not None and json.loads(text) == GOOD
    assert stream.response.parsed == City.model_validate(GOOD)
    assert isinstance(request.body, dict)
    assert_json_mode(request.body)


@pytest.mark.anyio
async def test_async_a_stream_in_json_mode_ends_with_the_validated_object() -> None:
    with stream_server() as server:
        async with mm.AsyncClient(deployments=[stream_deployment(server)]) as c:
            async with c.stream("capital?", response_format=City) as stream:
                text = "".join([chunk.text async for chunk in stream])
        (request,) = server.requests("groq")
    assert stream.response is not None and json.loads(text) == GOOD
    assert stream.response.parsed == City.model_validate(GOOD)
    assert isinstance(request.body, dict)
    assert_json_mode(request.body)


# -- the setting ------------------------------------------------------------------------------


def test_a_mistyped_mode_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(errors.ConfigError, match="did you mean 'json_mode'"):
        mm.Deployment(model="m", provider="groq", structured_output="json-mode")
    with pytest.raises(
        errors.ConfigError, match=r"deployments\.0\.structured_output.*'json_schema'"
    ):
        mm.Client(
            deployments=[{"model": "m", "provider": "groq", "structured_output": "jsonschema"}],
            env={"GROQ_API_KEY": KEY},
        )
    with pytest.raises(errors.ConfigError, match="valid: json_mode, json_schema"):
        mm.Deployment(model="m", provider="groq", structured_output=True)


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_the_setting_is_refused_where_the_wire_format_has_its_own_way(provider: str) -> None:
    dep = mm.Deployment(model="m", provider=provider, api_key=KEY, structured_output="json_mode")
    with pytest.raises(errors.ConfigError, match="applies to the OpenAI wire format"):
        mm.Client(deployments=[dep])


def test_the_setting_reads_from_a_config_file(tmp_path: Any) -> None:
    path = tmp_path / "multimodel.json"
    entry = {"model": "m", "provider": "groq", "structured_output": "json_mode"}
    path.write_text(json.dumps({"deployments": [entry]}))
    with mm.Client(config=path, env={"GROQ_API_KEY": KEY}) as c:
        (endpoint,) = c.deployments
    assert structured_output_mode(endpoint) == "json_mode"
    anthropic = mm.Deployment(model="claude-haiku-4.5", provider="anthropic", api_key=KEY)
    with mm.Client(deployments=[anthropic]) as c:
        assert structured_output_mode(c.deployments[0]) is None


def test_the_presets_say_what_the_docs_table_says() -> None:
    # docs/concepts/structured-outputs.md: what a schema gets from each preset when the
    # deployment says nothing and the catalog does not know its model.
    per_model = {"groq", "together", "qwen", "openrouter"}
    json_mode = {"deepseek"}
    for name, preset in builtin_presets().items():
        endpoint = Endpoint(
            name=name, model="unknown-model", wire_model="unknown-model", provider=name,
            base_url="https://p.test/v1", options=tuple(preset.options.items()),
            adapter=preset.adapter,
        )  # fmt: skip
        expected = (
            None
            if preset.adapter != "openai"
            else "json_mode"
            if preset.name in json_mode
            else "json_schema"
        )
        assert structured_output_mode(endpoint) == expected, name
        assert (preset.options.get("json_schema") == "per_model") == (preset.name in per_model)
