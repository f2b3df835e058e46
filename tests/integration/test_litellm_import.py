"""LiteLLM configurations load into working clients: ``Client.from_litellm``.

Three real-world ``model_list`` shapes (Azure + OpenAI with fallbacks, several Anthropic keys
with rpm/tpm, a local Ollama + vLLM pair, also as a proxy ``config.yaml``) are imported and
answer through the mock server; what cannot be mapped is reported, not dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import multimodel as mm
from multimodel.config.litellm import LiteLLMImportWarning, convert_litellm
from multimodel.testing import Behavior, MockDeployment

from .conftest import FAST_RETRY, KEY, Mock, async_transport, sync_transport

ENV = {
    "AZURE_API_KEY": KEY,
    "OPENAI_API_KEY": KEY,
    "ANTHROPIC_KEY_1": KEY + "1",
    "ANTHROPIC_KEY_2": KEY + "2",
    "ANTHROPIC_KEY_3": KEY + "3",
}


def azure_openai_fallbacks(mock: Mock) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    model_list = [
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "azure/prod-gpt4o",
                "api_base": mock.server.url + "/az",
                "api_key": "os.environ/AZURE_API_KEY",
                "api_version": "2024-10-21",
                "rpm": 600,
            },
            "model_info": {"id": "azure-eastus"},
        },
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_base": mock.server.base_url("oa"),
                "api_key": "os.environ/OPENAI_API_KEY",
                "tpm": 200000,
            },
        },
        {
            "model_name": "claude-sonnet",
            "litellm_params": {
                "model": "anthropic/claude-sonnet-4-5",
                "api_base": mock.server.url + "/claude",  # LiteLLM's form: no /v1
                "api_key": "os.environ/ANTHROPIC_KEY_1",
            },
        },
    ]
    settings = {
        "routing_strategy": "simple-shuffle",
        "num_retries": 1,
        "timeout": 30,
        "fallbacks": [{"gpt-4o": ["claude-sonnet"]}],
        "allowed_fails": 3,
        "cooldown_time": 30,
    }
    return model_list, settings


def test_azure_and_openai_with_fallbacks(serve: Callable[..., Mock]) -> None:
    failing = Behavior(fail_rate=1.0, fail_status=500)
    mock = serve(
        az=MockDeployment("openai", failing),
        oa=MockDeployment("openai", failing),
        claude=MockDeployment("anthropic", Behavior(text="from claude")),
    )
    model_list, settings = azure_openai_fallbacks(mock)
    with mm.Client.from_litellm(
        model_list, settings, env=ENV, retry=FAST_RETRY, transport=sync_transport()
    ) as client:
        assert client.models == ["gpt-4o", "claude-sonnet"]
        names = [d.name for d in client.deployments]
        assert names[0] == "azure-eastus"
        assert client.config.fallbacks == {"gpt-4o": ["claude-sonnet"]}
        assert client.config.max_retries == 2 and client.config.timeout == 30  # 1 + 1 fallback
        azure = client.deployments[0]
        assert azure.provider == "azure" and azure.wire_model == "prod-gpt4o"
        assert azure.rpm == 600
        response = client.query("hi", model="gpt-4o")  # both gpt-4o fail: claude answers
        assert response.text == "from claude" and response.deployment == "anthropic/claude-sonnet"
        # The Azure deployment was called the Azure way, with its key from the environment.
        request = mock.server.requests("az")[-1]
        assert "/openai/deployments/prod-gpt4o/chat/completions" in request.path
        assert request.headers.get("api-key") == KEY
        assert client.litellm_import is not None
        assert client.litellm_import.unmapped == {}
        assert any("circuit breaker" in n for n in client.litellm_import.notes)


def test_several_anthropic_keys_with_limits(serve: Callable[..., Mock]) -> None:
    mock = serve(
        k1=MockDeployment("anthropic"),
        k2=MockDeployment("anthropic"),
        k3=MockDeployment("anthropic"),
    )
    model_list = [
        {
            "model_name": "claude",
            "litellm_params": {
                "model": "anthropic/claude-3-5-sonnet-20241022",
                "api_base": mock.server.url + f"/k{i}",
                "api_key": f"os.environ/ANTHROPIC_KEY_{i}",
                "rpm": 50 * i,
                "tpm": 40000 * i,
            },
            "model_info": {"id": f"claude-key-{i}"},
        }
        for i in (1, 2, 3)
    ]

    async def go() -> None:
        async with mm.AsyncClient.from_litellm(
            model_list,
            {"routing_strategy": "usage-based-routing-v2", "num_retries": 2},
            env=ENV,
            retry=FAST_RETRY,
            transport=async_transport(),
        ) as client:
            assert [(d.name, d.rpm, d.tpm) for d in client.deployments] == [
                ("claude-key-1", 50, 40000),
                ("claude-key-2", 100, 80000),
                ("claude-key-3", 150, 120000),
            ]
            assert client.config.strategy == "adaptive"
            assert client.litellm_import is not None
            assert any("usage-based-routing-v2" in n for n in client.litellm_import.notes)
            for _ in range(6):
                await client.query("hi", model="claude")

    anyio.run(go, backend="asyncio")
    served = 0
    for i in (1, 2, 3):  # each deployment sends its own key
        for request in mock.server.requests(f"k{i}"):
            assert request.headers.get("x-api-key") == f"{KEY}{i}"
            served += 1
    assert served == 6


OLLAMA_VLLM_YAML = """
model_list:
  - model_name: llama
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3.1-8B-Instruct
      api_base: {vllm}
      order: 1
  - model_name: llama
    litellm_params:
      model: ollama_chat/llama3.1
      api_base: {ollama}
      order: 2
      keep_alive: 5m
litellm_settings:
  num_retries: 0
  request_timeout: 20
  drop_params: true
router_settings:
  routing_strategy: least-busy
general_settings:
  master_key: sk-proxy-master
"""


def test_local_ollama_and_vllm_from_a_proxy_config_file(
    serve: Callable[..., Mock], tmp_path: Path
) -> None:
    pytest.importorskip("yaml", reason="reading a LiteLLM config.yaml needs PyYAML")
    mock = serve(
        vllm=MockDeployment("openai", Behavior(fail_rate=1.0, fail_status=503)),
        ollama=MockDeployment("openai", Behavior(text="from ollama")),
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        OLLAMA_VLLM_YAML.format(
            vllm=mock.server.base_url("vllm"), ollama=mock.server.url + "/ollama"
        )
    )
    with pytest.warns(LiteLLMImportWarning) as record:
        client = mm.Client.from_litellm(config_file=path, retry=FAST_RETRY)
    message = str(record[0].message)
    for part in ("keep_alive", "general_settings.master_key"):
        assert part in message
    with client:
        assert client.config.strategy == "least_connections"
        # num_retries 0, plus one attempt for the order-2 fallback group
        assert client.config.timeout == 20 and client.config.max_retries == 1
        assert client.litellm_import is not None
        assert client.config.unsupported_params == "drop"  # litellm_settings.drop_params
        # order 2 serves only when order 1 fails: a fallback group
        assert client.models == ["llama", "llama#order2"]
        assert client.config.fallbacks == {"llama": ["llama#order2"]}
        ollama = client.deployments[1]
        assert (ollama.provider, ollama.wire_model) == ("ollama", "llama3.1")
        response = client.query("hi", model="llama")
        assert response.text == "from ollama"
    assert mock.count("vllm") == 1 and mock.count("ollama") == 1


def test_what_cannot_be_imported_is_an_error_or_reported() -> None:
    with pytest.raises(mm.ConfigError, match="AZURE_API_KEY is not set"):
        convert_litellm(
            [
                {
                    "model_name": "m",
                    "litellm_params": {"model": "azure/x", "api_key": "os.environ/AZURE_API_KEY"},
                }
            ],
            env={},
        )
    with pytest.raises(mm.ConfigError, match="no multimodel preset"):
        convert_litellm(
            [
                {
                    "model_name": "m",
                    "litellm_params": {"model": "bedrock/x", "custom_llm_provider": "bedrock"},
                }
            ]
        )
    with pytest.raises(mm.ConfigError, match="provider prefix"):
        convert_litellm([{"model_name": "m", "litellm_params": {"model": "mystery-model"}}])
    with pytest.warns(LiteLLMImportWarning, match="redis_host"):
        result = convert_litellm(
            [{"model_name": "m", "litellm_params": {"model": "gpt-4o-mini"}}],
            {"redis_host": "localhost", "routing_strategy": "cost-based-routing"},
            env={},
        )
    assert result.deployments == [
        {"model": "m", "provider": "openai", "provider_model": "gpt-4o-mini"}
    ]
    assert result.options["strategy"] == "intelligent"
    assert "router_settings.redis_host" in result.unmapped


ENTRY = {"model_name": "m", "litellm_params": {"model": "gpt-4o-mini", "api_key": "k"}}


def _with(**params: Any) -> list[dict[str, Any]]:
    return [{"model_name": "m", "litellm_params": {"model": "gpt-4o-mini", **params}}]


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        (("config.yaml",), {}, "pass a proxy configuration file as config_file"),
        ((["m"],), {}, r"model_list\[0\]: an entry is a mapping"),
        (({"m": 1},), {}, "model_list must be a list of entries, got dict"),
        (([ENTRY], ["x"]), {}, "router_settings must be a mapping, got list"),
        ((_with(rpm="abc"),), {}, r"model_list\[0\].litellm_params.rpm: expected a number"),
        ((_with(timeout=True),), {}, "litellm_params.timeout: expected a number"),
        ((_with(extra_headers="x"),), {}, "extra_headers must be a mapping"),
        (([ENTRY], {"num_retries": "two"}), {}, "num_retries: expected a number"),
        (([ENTRY], {"fallbacks": ["m2"]}), {}, "fallbacks: each item maps a model group"),
        (([ENTRY], {"fallbacks": [{"m": "m2"}]}), {}, r"fallbacks\['m'\]: expected a list"),
        (([ENTRY], {"context_window_fallbacks": [{"m": 3}]}), {}, "expected a list of model"),
        (([ENTRY], {"cooldown_time": "soon"}), {}, "cooldown_time: expected a number"),
    ],
)
def test_a_configuration_of_the_wrong_shape_is_a_config_error_naming_the_field(
    args: tuple[Any, ...], kwargs: dict[str, Any], named: str
) -> None:
    # Each of these raised TypeError, ValueError or AttributeError from inside the importer
    # (a path passed as model_list was read one character at a time).
    with pytest.raises(mm.ConfigError, match=named):
        convert_litellm(*args, env={}, **kwargs)


def test_numbers_written_as_strings_import_as_numbers() -> None:
    result = convert_litellm(_with(rpm="60", tpm="1000", weight="2", timeout="30"), env={})
    assert {k: result.deployments[0][k] for k in ("rpm", "tpm", "weight", "timeout")} == {
        "rpm": 60,
        "tpm": 1000,
        "weight": 2.0,
        "timeout": 30.0,
    }
