"""Deployments and client configuration.

A :class:`Deployment` is one model served by one provider account: the unit the router chooses
between. Several deployments may serve the same ``model`` (a *model group*), e.g. ``gpt-4o`` on
OpenAI and on Azure. Keys are :class:`pydantic.SecretStr`; when none is given, the provider's
environment variable is read when the client is built (not at import).

A client can also be built from a plain dict or a TOML file::

    # multimodel.toml
    strategy = "round_robin"
    timeout = 30

    [[deployments]]
    model = "gpt-4o-mini"
    provider = "openai"          # key from OPENAI_API_KEY

    [[deployments]]
    model = "claude-3.5-sonnet"
    provider = "anthropic"
    provider_model = "claude-3-5-sonnet-20241022"
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ConfigError, MissingAPIKeyError
from .providers.base import Endpoint
from .providers.registry import get_preset

__all__ = ["ClientConfig", "Deployment", "load_config", "resolve_endpoints"]


class Deployment(BaseModel):
    """One model on one provider account.

    Args:
        model: the model group name callers ask for (``client.query(..., model=...)``).
        provider: a provider preset (``openai``, ``anthropic``, ``gemini``, ``azure``, ``groq``,
            ``deepseek``, ``mistral``, ``xai``, ``together``, ``fireworks``, ``openrouter``,
            ``qwen``, ``meta``, ``ollama``, ``vllm``) or one registered at run time.
        name: unique name for this deployment (default ``"{provider}/{model}"``).
        provider_model: the model id the provider expects (default: ``model``). For Azure,
            the Azure deployment name.
        api_key: the key; default: the provider's environment variable.
        base_url: override the preset's base URL (required for Azure).
        api_version: ``anthropic-version`` or Azure ``api-version``.
        headers: extra HTTP headers for every request.
        extra_body: extra JSON fields for every request body.
        weight: relative share for weighted strategies.
        rpm, tpm: client-side request / token rate limits per minute.
        timeout: per-attempt timeout in seconds (default: the client's).
        tags: free-form labels (tracking and budgets can group by them).

    .. versionadded:: 0.1
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    model: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    name: str | None = None
    provider_model: str | None = None
    api_key: SecretStr | None = None
    base_url: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(default=1.0, gt=0)
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    timeout: float | None = Field(default=None, gt=0)
    tags: tuple[str, ...] = ()

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    @property
    def display_name(self) -> str:
        """``name``, or the default ``"{provider}/{model}"``."""
        return self.name or f"{self.provider}/{self.model}"


class ClientConfig(BaseModel):
    """Everything a client is built from; ``Client(**config)`` and ``Client(config=...)`` agree.

    Args:
        deployments: at least one deployment.
        strategy: a registered strategy name (default ``"adaptive"``), a
            ``{"name": ..., **params}`` dict, or a strategy object.
        timeout: per-attempt timeout in seconds.
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts at most).
        deadline: overall seconds for one call, every attempt and back-off included.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True
    )

    deployments: list[Deployment] = Field(min_length=1)
    strategy: Any = None
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    deadline: float | None = Field(default=None, gt=0)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> ClientConfig:
    """Build a :class:`ClientConfig` from a dict or a TOML file path.

    Raises:
        ConfigError: the file is missing or not TOML, or an entry is invalid (the message names
            the entry and field).
    """
    if isinstance(source, Mapping):
        data: Mapping[str, Any] = source
    else:
        path = Path(source)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
        try:
            import tomllib  # type: ignore[import-not-found,unused-ignore]
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10
            raise ConfigError(
                "reading TOML needs Python 3.11+; pass a dict on Python 3.10"
            ) from None
        try:
            data = tomllib.loads(raw.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{str(path)!r} is not valid TOML: {exc}") from exc
    try:
        return ClientConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        lines.append(f"{loc}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def resolve_endpoints(
    deployments: Sequence[Deployment], env: Mapping[str, str] | None = None
) -> list[Endpoint]:
    """Resolve presets, keys and names into :class:`Endpoint` objects, one per deployment.

    Raises:
        MissingAPIKeyError: a provider that needs a key has none (names the variable to set).
        ConfigError: unknown provider, duplicate name, or a missing required ``base_url``.
    """
    env = os.environ if env is None else env
    endpoints: list[Endpoint] = []
    seen: dict[str, int] = {}
    for dep in deployments:
        preset = get_preset(dep.provider)
        name = dep.display_name
        if name in seen:
            if dep.name is not None:
                raise ConfigError(f"two deployments are named {name!r}; names must be unique")
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        seen.setdefault(name, 1)
        key = dep.api_key
        if key is not None and not key.get_secret_value().strip():
            key = None  # `api_key = ""` (an unset template value) is no key, as an empty env var
        if key is None:
            for var in preset.env_vars:
                value = env.get(var)
                if value:
                    key = SecretStr(value)
                    break
        if key is None and preset.key_required:
            raise MissingAPIKeyError(
                name, dep.provider, preset.env_vars[0] if preset.env_vars else None
            )
        base_url = dep.base_url or preset.base_url
        if base_url is None:
            raise ConfigError(
                f"deployment {name!r} ({dep.provider}) needs base_url, e.g. "
                "https://YOUR-RESOURCE.openai.azure.com"
            )
        options = dict(preset.options)
        endpoints.append(
            Endpoint(
                name=name,
                model=dep.model,
                wire_model=dep.provider_model or dep.model,
                provider=dep.provider,
                base_url=base_url,
                api_key=key,
                auth=preset.auth,
                api_version=dep.api_version or preset.api_version,
                headers=tuple(dep.headers.items()),
                extra_body=tuple(dep.extra_body.items()),
                options=tuple(options.items()),
                adapter=preset.adapter,
                weight=dep.weight,
                rpm=dep.rpm,
                tpm=dep.tpm,
                timeout=dep.timeout,
                tags=dep.tags,
            )
        )
    return endpoints
