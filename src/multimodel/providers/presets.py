"""Provider presets: where each provider lives and how it wants its key. Data, not code.

Most providers speak the OpenAI Chat Completions wire format; a preset names the adapter (wire
format), the default base URL, the header that carries the key, the environment variable the
key comes from, and adapter options such as which field carries the token limit. Adding an
OpenAI-compatible provider is one row here (or one :func:`register_provider` call at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProviderPreset", "builtin_presets"]


@dataclass(frozen=True, slots=True)
class ProviderPreset:
    """How to reach one provider.

    Attributes:
        name: the provider name used in ``Deployment(provider=...)``.
        adapter: the wire format (``openai``, ``anthropic``, ``gemini`` or a registered one).
        base_url: default base URL; ``None`` means the deployment must give one.
        env_vars: environment variables that may hold the key, in order of preference.
        auth: ``bearer``, or the header name that carries the key.
        key_required: whether a call without a key is a configuration error.
        api_version: default ``anthropic-version`` / Azure ``api-version``.
        options: adapter switches (``max_tokens_field``, ``stream_usage``, ``azure``,
            ``json_schema`` (how a schema is sent: ``True``, the default, natively as
            ``response_format`` type ``json_schema``; ``False``: JSON mode and the schema in
            the prompt; ``"per_model"``: as the catalog says of the deployment's model on this
            provider, natively when it does not know the model; a deployment's own
            ``structured_output`` wins over all three),
            ``embeddings`` (``False``: no embeddings API), ``embedding_batch_size``,
            ``embedding_base64`` (ask for base64 vectors, decoded to floats)).
        docs: one line on the provider's quirks, shown by ``multimodel providers``.
    """

    name: str
    adapter: str
    base_url: str | None
    env_vars: tuple[str, ...] = ()
    auth: str = "bearer"
    key_required: bool = True
    api_version: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    docs: str = ""


_COMPAT = {"max_tokens_field": "max_tokens", "stream_usage": True}
# Providers that hold only some of their models to a JSON schema (each documents it per model)
# and answer the others' `json_schema` with a 400: the catalog's `structured_output` decides.
_PER_MODEL = {**_COMPAT, "json_schema": "per_model"}


def builtin_presets() -> dict[str, ProviderPreset]:
    """The presets shipped with multimodel, keyed by name (built on first use, not at import)."""
    rows = [
        ProviderPreset(
            "openai",
            "openai",
            "https://api.openai.com/v1",
            ("OPENAI_API_KEY",),
            options={
                "max_tokens_field": "max_completion_tokens",
                "stream_usage": True,
                "send_user": True,
                "send_metadata": True,  # stored completions' metadata (with store=True)
                "embedding_base64": True,
            },
            docs="OpenAI Chat Completions; max_completion_tokens (reasoning models reject max_tokens)",
        ),
        ProviderPreset(
            "azure",
            "openai",
            None,
            ("AZURE_OPENAI_API_KEY",),
            auth="api-key",
            api_version="2024-10-21",
            options={
                "max_tokens_field": "max_completion_tokens",
                "stream_usage": True,
                "azure": True,
                "send_user": True,
                "send_metadata": True,  # stored completions' metadata (with store=True)
                "embedding_base64": True,
            },
            docs="Azure OpenAI: base_url https://{resource}.openai.azure.com, wire model = "
            "Azure deployment name, api-version query parameter, api-key header",
        ),
        ProviderPreset(
            "deepseek",
            "openai",
            "https://api.deepseek.com/v1",
            ("DEEPSEEK_API_KEY",),
            # DeepSeek documents JSON mode only: a schema goes into the prompt.
            options={**_COMPAT, "json_schema": False, "embeddings": False},
            docs="cache hits in prompt_cache_hit_tokens; reasoning_content deltas; JSON mode only",
        ),
        ProviderPreset(
            "xai",
            "openai",
            "https://api.x.ai/v1",
            ("XAI_API_KEY",),
            options=dict(_COMPAT),
            docs="xAI Grok, OpenAI-compatible",
        ),
        ProviderPreset(
            "mistral",
            "openai",
            "https://api.mistral.ai/v1",
            ("MISTRAL_API_KEY",),
            options={"max_tokens_field": "max_tokens", "stream_usage": False},
            docs="finish_reason model_length / error; usage arrives on the last chunk",
        ),
        ProviderPreset(
            "groq",
            "openai",
            "https://api.groq.com/openai/v1",
            ("GROQ_API_KEY",),
            options={**_PER_MODEL, "embeddings": False},
            docs="usage may also arrive under x_groq.usage",
        ),
        ProviderPreset(
            "together",
            "openai",
            "https://api.together.xyz/v1",
            ("TOGETHER_API_KEY",),
            options=dict(_PER_MODEL),
            docs="usage-only final chunk with empty choices",
        ),
        ProviderPreset(
            "fireworks",
            "openai",
            "https://api.fireworks.ai/inference/v1",
            ("FIREWORKS_API_KEY",),
            options=dict(_COMPAT),
        ),
        ProviderPreset(
            "openrouter",
            "openai",
            "https://openrouter.ai/api/v1",
            ("OPENROUTER_API_KEY",),
            options=dict(_PER_MODEL),
            docs="sends ': OPENROUTER PROCESSING' comments while queued",
        ),
        ProviderPreset(
            "qwen",
            "openai",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            ("DASHSCOPE_API_KEY",),
            options=dict(_PER_MODEL),
            docs="DashScope compatible mode (international endpoint by default; "
            "mainland China: https://dashscope.aliyuncs.com/compatible-mode/v1); "
            "enable_thinking via extra_body",
        ),
        ProviderPreset(
            "meta",
            "openai",
            "https://api.llama.com/compat/v1",
            ("LLAMA_API_KEY",),
            options=dict(_COMPAT),
            docs="Meta Llama API, OpenAI-compatible endpoint",
        ),
        ProviderPreset(
            "ollama",
            "openai",
            "http://localhost:11434/v1",
            ("OLLAMA_API_KEY",),
            key_required=False,
            options=dict(_COMPAT),
            docs="local Ollama's OpenAI layer; no key needed locally",
        ),
        ProviderPreset(
            "vllm",
            "openai",
            "http://localhost:8000/v1",
            ("VLLM_API_KEY",),
            key_required=False,
            options=dict(_COMPAT),
            docs="vLLM's OpenAI server; older builds send top-level error bodies",
        ),
        ProviderPreset(
            "anthropic",
            "anthropic",
            "https://api.anthropic.com/v1",
            ("ANTHROPIC_API_KEY",),
            auth="x-api-key",
            api_version="2023-06-01",
            docs="Anthropic Messages: system outside messages, max_tokens required, "
            "named SSE events, usage split across message_start and message_delta",
        ),
        ProviderPreset(
            "gemini",
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            auth="x-goog-api-key",
            docs="Gemini generateContent / streamGenerateContent?alt=sse; thoughts billed as "
            "output; retryDelay inside 429 bodies",
        ),
    ]
    presets = {p.name: p for p in rows}
    presets["google"] = presets["gemini"]
    presets["grok"] = presets["xai"]
    presets["dashscope"] = presets["qwen"]
    presets["azure_openai"] = presets["azure"]
    return presets
