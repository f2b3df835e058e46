"""Import a LiteLLM Router configuration: ``Client.from_litellm(model_list=..., router_settings=...)``.

:func:`convert_litellm` turns LiteLLM's ``model_list`` and router settings (or a LiteLLM proxy
``config.yaml``, with PyYAML installed) into multimodel deployments and client options, and
says what it could not map: every key it does not carry over is listed in
:attr:`LiteLLMImport.unmapped` (and warned about once, as a :class:`LiteLLMImportWarning`),
never silently dropped. Where the nearest multimodel behaviour differs from LiteLLM's, a line
in :attr:`LiteLLMImport.notes` says how.

=========================================  ==================================================
LiteLLM                                    multimodel
=========================================  ==================================================
``model_name``                             ``Deployment.model`` (the model group)
``litellm_params.model="azure/x"``         ``provider="azure", provider_model="x"``
``api_base`` / ``api_key`` / ``api_version``  ``base_url`` / ``api_key`` / ``api_version``
``api_key: "os.environ/NAME"``             read from the environment now (``env=``)
``rpm`` / ``tpm`` / ``weight`` / ``timeout``  the deployment's ``rpm`` / ``tpm`` / ``weight`` / ``timeout``
``order``                                  higher orders become fallback groups ``{model}#order{n}``
``model_info.id``                          ``Deployment.name``
``num_retries`` / ``timeout``              ``max_retries`` / ``timeout``
``fallbacks`` / ``context_window_fallbacks``  ``fallbacks`` / ``context_fallbacks``
``allowed_fails`` / ``cooldown_time``      ``circuit=CircuitPolicy(failure_threshold, cooldown)``
``routing_strategy``                       the nearest strategy (see ``STRATEGIES``)
``litellm_settings.drop_params``           ``unsupported_params="drop"`` (true) / ``"error"``
=========================================  ==================================================
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError

__all__ = ["STRATEGIES", "LiteLLMImport", "LiteLLMImportWarning", "convert_litellm"]

_N = TypeVar("_N", int, float)


class LiteLLMImportWarning(UserWarning):
    """Parts of a LiteLLM configuration have no multimodel equivalent and were not imported
    (the message lists them; ``client.litellm_import.unmapped`` has them too)."""


# LiteLLM provider prefix -> multimodel provider preset
_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "xai": "xai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "dashscope": "qwen",
    "meta_llama": "meta",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "hosted_vllm": "vllm",
    "vllm": "vllm",
}
# Bare model names LiteLLM recognizes without a prefix.
_BARE = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
         ("chatgpt-", "openai"), ("claude", "anthropic"), ("gemini", "gemini"))  # fmt: skip
# Providers whose LiteLLM api_base leaves out the /v1 that multimodel's base_url includes.
_ADD_V1 = {"anthropic", "ollama"}

STRATEGIES: dict[str, tuple[str, str | None]] = {
    "simple-shuffle": ("weighted", None),
    "least-busy": ("least_connections", None),
    "latency-based-routing": ("response_time", None),
    "usage-based-routing": (
        "adaptive",
        (
            "usage-based-routing: rpm/tpm limits are enforced per deployment (client-side, "
            "sliding 60 s window) with the adaptive strategy, not by picking the least-used"
        ),
    ),
    "usage-based-routing-v2": (
        "adaptive",
        (
            "usage-based-routing-v2: rpm/tpm limits are enforced per deployment with the adaptive "
            "strategy; no Redis-shared usage counters"
        ),
    ),
    "cost-based-routing": (
        "intelligent",
        (
            "cost-based-routing: the intelligent strategy weighs cost (from the catalog) with "
            "performance and quality, not cost alone"
        ),
    ),
}
"""LiteLLM ``routing_strategy`` -> (multimodel strategy, note when it behaves differently)."""

_PARAMS_MAPPED = {"model", "api_base", "api_key", "api_version", "rpm", "tpm", "weight",
                  "order", "timeout", "extra_headers", "custom_llm_provider"}  # fmt: skip
_SETTINGS = {"routing_strategy", "num_retries", "timeout", "request_timeout", "fallbacks",
             "context_window_fallbacks", "allowed_fails", "cooldown_time"}  # fmt: skip


@dataclass
class LiteLLMImport:
    """The result of :func:`convert_litellm`.

    Attributes:
        deployments: the deployments, as ``Deployment`` keyword dicts.
        options: client options (``strategy``, ``max_retries``, ``fallbacks`` ...).
        notes: where the nearest multimodel behaviour differs from LiteLLM's.
        unmapped: ``{"model_list[1].litellm_params.vertex_project": reason, ...}``: what was
            not imported.
    """

    deployments: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unmapped: dict[str, str] = field(default_factory=dict)


def load_litellm_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a LiteLLM proxy ``config.yaml`` (needs PyYAML).

    Raises:
        ConfigError: PyYAML is not installed, or the file is not a YAML mapping.
    """
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - PyYAML is installed in the tests
        raise ConfigError(
            "reading a LiteLLM config.yaml needs PyYAML: pip install pyyaml"
        ) from None
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping with model_list")
    return data


def convert_litellm(
    model_list: Sequence[Mapping[str, Any]] | None = None,
    router_settings: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> LiteLLMImport:
    """Convert a LiteLLM configuration: ``model_list`` and ``router_settings`` (the ``Router``
    keywords), or a proxy ``config_file`` (its ``model_list``, ``router_settings`` and the
    routing keys of ``litellm_settings``; ``general_settings`` is reported as unmapped).

    Raises:
        ConfigError: an entry without ``model_name`` or ``litellm_params.model``, a provider
            prefix multimodel has no preset for, an ``os.environ/NAME`` key that is not set.
    """
    env = os.environ if env is None else env
    out = LiteLLMImport()
    settings: dict[str, Any] = {}
    if isinstance(model_list, str | bytes | os.PathLike):
        raise ConfigError(
            f"model_list is LiteLLM's list of entries, not a file ({model_list!r}): pass a "
            "proxy configuration file as config_file=..."
        )
    if router_settings is not None and not isinstance(router_settings, Mapping):
        raise ConfigError(
            f"router_settings must be a mapping, got {type(router_settings).__name__}"
        )
    if config_file is not None:
        data = load_litellm_yaml(config_file)
        if model_list is None:
            model_list = data.get("model_list") or []
        for section in ("litellm_settings", "router_settings"):
            block = data.get(section) or {}
            if not isinstance(block, Mapping):
                raise ConfigError(f"{config_file}: {section} must be a mapping")
            for key, value in block.items():
                if key in _SETTINGS:
                    settings[key] = value
                elif key == "drop_params":
                    # LiteLLM's switch is ours: drop (with one warning) or refuse.
                    out.options["unsupported_params"] = "drop" if value else "error"
                else:
                    out.unmapped[f"{section}.{key}"] = "no multimodel equivalent"
        for key, value in data.items():
            if key in ("model_list", "litellm_settings", "router_settings"):
                continue
            why = "proxy settings: multimodel is a library, not a proxy"
            if isinstance(value, Mapping) and value:
                for inner in value:
                    out.unmapped[f"{key}.{inner}"] = why
            else:
                out.unmapped[key] = why
    for key, value in (router_settings or {}).items():
        if key in _SETTINGS:
            settings[key] = value
        elif key != "model_list":
            out.unmapped[f"router_settings.{key}"] = "no multimodel equivalent"
    if not model_list:
        raise ConfigError("a LiteLLM configuration needs a non-empty model_list")
    if not isinstance(model_list, Sequence) or isinstance(model_list, str | bytes):
        raise ConfigError(f"model_list must be a list of entries, got {type(model_list).__name__}")

    orders: list[int | None] = []
    for i, entry in enumerate(model_list):
        out.deployments.append(_deployment(entry, i, env, out))
        orders.append(out.deployments[-1].pop("_order", None))
    _orders(out, orders)
    _settings(out, settings)
    if out.unmapped:
        listed = "; ".join(f"{k} ({v})" for k, v in out.unmapped.items())
        warnings.warn(
            LiteLLMImportWarning(f"not imported from the LiteLLM configuration: {listed}"),
            stacklevel=3,
        )
    return out


def _deployment(
    entry: Mapping[str, Any], i: int, env: Mapping[str, str], out: LiteLLMImport
) -> dict[str, Any]:
    where = f"model_list[{i}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"{where}: an entry is a mapping with model_name and litellm_params, got "
            f"{type(entry).__name__}"
        )
    name = entry.get("model_name")
    params = entry.get("litellm_params")
    if not isinstance(name, str) or not isinstance(params, Mapping) or "model" not in params:
        raise ConfigError(f"{where} needs model_name and litellm_params.model")
    for key in entry:
        if key not in ("model_name", "litellm_params", "model_info"):
            out.unmapped[f"{where}.{key}"] = "unknown model_list key"
    info = entry.get("model_info") or {}
    dep: dict[str, Any] = {"model": name}
    model = str(params["model"])
    prefix, _, rest = model.partition("/")
    provider_name = params.get("custom_llm_provider")
    if provider_name is None and rest and prefix in _PROVIDERS:
        provider_name = prefix
    elif provider_name is None:
        rest = model
        provider_name = next((p for start, p in _BARE if model.startswith(start)), None)
        if provider_name is None:
            raise ConfigError(
                f"{where}.litellm_params.model {model!r}: give a provider prefix multimodel "
                f"knows ({', '.join(sorted(_PROVIDERS))}), e.g. 'openai/{model}'"
            )
    if provider_name not in _PROVIDERS:
        raise ConfigError(
            f"{where}: LiteLLM provider {provider_name!r} has no multimodel preset "
            f"(known: {', '.join(sorted(_PROVIDERS))})"
        )
    provider = _PROVIDERS[provider_name]
    dep["provider"] = provider
    dep["provider_model"] = rest
    if params.get("api_base"):
        base = str(params["api_base"]).rstrip("/")
        if provider in _ADD_V1 and not base.endswith("/v1"):
            base += "/v1"
        dep["base_url"] = base
    secret: Any = params.get("api_key")
    if isinstance(secret, str) and secret.startswith("os.environ/"):
        var = secret.removeprefix("os.environ/")
        if var not in env:
            raise ConfigError(f"{where}.litellm_params.api_key: {var} is not set")
        secret = env[var]
    if secret:
        dep["api_key"] = secret
    version = params.get("api_version", entry.get("api_version"))
    if version is not None:
        dep["api_version"] = version
    for name, cast in (("rpm", int), ("tpm", int), ("weight", float), ("timeout", float)):
        value = params.get(name, entry.get(name))
        if value is not None:
            dep[name] = _number(cast, value, f"{where}.litellm_params.{name}")
    headers = params.get("extra_headers")
    if headers:
        if not isinstance(headers, Mapping):
            raise ConfigError(f"{where}.litellm_params.extra_headers must be a mapping")
        dep["headers"] = {str(k): str(v) for k, v in headers.items()}
    if info.get("id"):
        dep["name"] = str(info["id"])
    for key in info:
        if key != "id":
            out.unmapped[f"{where}.model_info.{key}"] = "the catalog holds model data"
    for key in params:
        if key not in _PARAMS_MAPPED:
            out.unmapped[f"{where}.litellm_params.{key}"] = "no deployment option"
    if params.get("order") is not None:
        dep["_order"] = _number(int, params["order"], f"{where}.litellm_params.order")
    return dep


def _number(cast: Callable[[Any], _N], value: Any, where: str) -> _N:
    """``value`` as ``cast`` makes it (``int("3")`` is 3, as LiteLLM reads YAML strings), or a
    :class:`ConfigError` naming ``where``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return cast(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None


def _chains(item: Any, setting: str) -> list[tuple[str, list[str]]]:
    """One ``fallbacks`` item, ``{group: [fallback, ...]}``, as (group, chain) pairs."""
    if not isinstance(item, Mapping):
        raise ConfigError(
            f"{setting}: each item maps a model group to a list of groups, got {item!r}"
        )
    out = []
    for model, chain in item.items():
        if isinstance(chain, str) or not isinstance(chain, Sequence):
            raise ConfigError(
                f"{setting}[{model!r}]: expected a list of model groups, got {chain!r}"
            )
        out.append((str(model), [str(c) for c in chain]))
    return out


def _orders(out: LiteLLMImport, orders: list[int | None]) -> None:
    """LiteLLM's ``order``: deployments of a higher order serve only when the lower ones fail.
    Each higher order becomes a group ``{model}#order{n}`` in the group's fallback chain."""
    levels: dict[str, set[int]] = {}
    for dep, order in zip(out.deployments, orders, strict=True):
        if order is not None:
            levels.setdefault(dep["model"], set()).add(order)
    chains: dict[str, list[str]] = {}
    for model, found in levels.items():
        if len(found) < 2:
            continue
        first, *others = sorted(found)
        groups = {level: f"{model}#order{level}" for level in others}
        for dep, order in zip(out.deployments, orders, strict=True):
            if dep["model"] == model and order in groups:
                dep["model"] = groups[order]
        chains[model] = list(groups.values())
        out.notes.append(
            f"{model}: the deployments of order {', '.join(map(str, others))} form the fallback "
            f"groups {', '.join(groups.values())}, tried after order {first} fails"
        )
    if chains:
        out.options["fallbacks"] = chains


def _settings(out: LiteLLMImport, settings: Mapping[str, Any]) -> None:
    opts = out.options
    strategy = settings.get("routing_strategy")
    if strategy is not None:
        if strategy not in STRATEGIES:
            out.unmapped["routing_strategy"] = f"unknown strategy {strategy!r}"
        else:
            ours, note = STRATEGIES[strategy]
            opts["strategy"] = ours
            if note:
                out.notes.append(note)
    if settings.get("num_retries") is not None:
        opts["max_retries"] = _number(int, settings["num_retries"], "num_retries")
    timeout = settings.get("timeout", settings.get("request_timeout"))
    if timeout is not None:
        opts["timeout"] = _number(float, timeout, "timeout")
    fallbacks = dict(opts.get("fallbacks", {}))
    for item in settings.get("fallbacks") or []:
        for model, chain in _chains(item, "fallbacks"):
            fallbacks[model] = [*fallbacks.get(model, []), *chain]
    if fallbacks:
        opts["fallbacks"] = fallbacks
        longest = max(len(chain) for chain in fallbacks.values())
        retries = int(opts.get("max_retries", 2))
        opts["max_retries"] = retries + longest
        out.notes.append(
            f"fallbacks: multimodel counts fallback attempts within max_retries, so max_retries "
            f"is {retries} + {longest} (the longest fallback chain); LiteLLM retries each "
            "group num_retries times before its fallbacks"
        )
    context: dict[str, str] = {}
    for item in settings.get("context_window_fallbacks") or []:
        for model, chain in _chains(item, "context_window_fallbacks"):
            if chain:
                context[model] = chain[0]
            if len(chain) > 1:
                out.notes.append(
                    f"context_window_fallbacks[{model!r}]: multimodel takes one larger group; "
                    f"{chain[0]!r} is used, {chain[1:]} are not"
                )
    if context:
        opts["context_fallbacks"] = context
    circuit: dict[str, Any] = {}
    if settings.get("allowed_fails") is not None:
        circuit["failure_threshold"] = _number(int, settings["allowed_fails"], "allowed_fails")
    if settings.get("cooldown_time") is not None:
        circuit["cooldown"] = _number(float, settings["cooldown_time"], "cooldown_time")
    if circuit:
        from ..resilience.circuit import CircuitPolicy

        opts["circuit"] = CircuitPolicy(**circuit)
        out.notes.append(
            "allowed_fails / cooldown_time: a circuit breaker with half-open probes and "
            "doubling cooldowns"
        )
