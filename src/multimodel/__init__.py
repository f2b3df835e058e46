"""multimodel: one in-process client for many LLM providers.

It chooses the deployment that serves each request (a registry of balancing strategies), keeps
requests alive when providers fail (retries, fallbacks, back-off), and accounts for what each
request cost and how long it took.

Example::

    import multimodel as mm

    client = mm.Client(deployments=[
        mm.Deployment(model="gpt-4o-mini", provider="openai"),
        mm.Deployment(model="claude-3.5-haiku", provider="anthropic",
                      provider_model="claude-3-5-haiku-latest"),
    ])
    print(client.query("Hello!", model="gpt-4o-mini").text)

Importing this package does no I/O and loads no provider module; those load on first use.
"""

import typing as _typing

# Names load on first use (PEP 562), so ``import multimodel`` costs little; type checkers see
# the real imports below.
_LAZY = {
    "AllAttemptsFailed": ".errors",
    "AsyncClient": ".async_client",
    "AsyncStream": ".streaming",
    "Budget": ".resilience.budget",
    "BudgetAlert": ".resilience.budget",
    "BudgetExceeded": ".errors",
    "CachePolicy": ".cache",
    "ChatChunk": ".types",
    "ChatRequest": ".types",
    "ChatResponse": ".types",
    "CircuitPolicy": ".resilience.circuit",
    "Client": ".client",
    "ClientConfig": ".config",
    "ConfigError": ".errors",
    "Deployment": ".config",
    "HedgePolicy": ".resilience.hedge",
    "ImagePart": ".types",
    "InputLimits": ".security.limits",
    "InvalidRequestError": ".errors",
    "ManualClock": "._core.clock",
    "Message": ".types",
    "MissingAPIKeyError": ".errors",
    "ModelStatusEvent": ".events",
    "MultimodelError": ".errors",
    "NoDeploymentAvailable": ".errors",
    "Policy": ".security._rules",
    "PolicySet": ".security.policy",
    "PolicyViolation": ".errors",
    "ProviderAdapter": ".providers.base",
    "ProviderError": ".errors",
    "ProviderPreset": ".providers.presets",
    "RateLimited": ".errors",
    "ResponseCache": ".cache",
    "ResponseFormat": ".types",
    "RetryBudget": ".resilience.retry",
    "RetryPolicy": ".resilience.retry",
    "RouteContext": ".strategies.base",
    "Strategy": ".strategies.base",
    "Stream": ".streaming",
    "StreamInterrupted": ".errors",
    "SystemClock": "._core.clock",
    "TextPart": ".types",
    "Tool": ".types",
    "ToolCall": ".types",
    "ToolCallDelta": ".types",
    "ToolChoice": ".types",
    "UnknownModelError": ".errors",
    "Usage": ".types",
    "load_config": ".config",
    "register_adapter": ".providers.registry",
    "register_provider": ".providers.registry",
    "register_strategy": ".strategies.base",
}

if _typing.TYPE_CHECKING:
    from . import errors
    from ._core.clock import ManualClock, SystemClock
    from .async_client import AsyncClient
    from .cache import CachePolicy, ResponseCache
    from .client import Client
    from .config import ClientConfig, Deployment, load_config
    from .errors import (
        AllAttemptsFailed,
        BudgetExceeded,
        ConfigError,
        InvalidRequestError,
        MissingAPIKeyError,
        MultimodelError,
        NoDeploymentAvailable,
        PolicyViolation,
        ProviderError,
        RateLimited,
        StreamInterrupted,
        UnknownModelError,
    )
    from .events import ModelStatusEvent
    from .providers.base import ProviderAdapter
    from .providers.presets import ProviderPreset
    from .providers.registry import register_adapter, register_provider
    from .resilience.budget import Budget, BudgetAlert
    from .resilience.circuit import CircuitPolicy
    from .resilience.hedge import HedgePolicy
    from .resilience.retry import RetryBudget, RetryPolicy
    from .security._rules import Policy
    from .security.limits import InputLimits
    from .security.policy import PolicySet
    from .strategies.base import RouteContext, Strategy, register_strategy
    from .streaming import AsyncStream, Stream
    from .types import (
        ChatChunk,
        ChatRequest,
        ChatResponse,
        ImagePart,
        Message,
        ResponseFormat,
        TextPart,
        Tool,
        ToolCall,
        ToolCallDelta,
        ToolChoice,
        Usage,
    )

__all__ = [
    "AllAttemptsFailed",
    "AsyncClient",
    "AsyncStream",
    "Budget",
    "BudgetAlert",
    "BudgetExceeded",
    "CachePolicy",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "CircuitPolicy",
    "Client",
    "ClientConfig",
    "ConfigError",
    "Deployment",
    "HedgePolicy",
    "ImagePart",
    "InputLimits",
    "InvalidRequestError",
    "ManualClock",
    "Message",
    "MissingAPIKeyError",
    "ModelStatusEvent",
    "MultimodelError",
    "NoDeploymentAvailable",
    "Policy",
    "PolicySet",
    "PolicyViolation",
    "ProviderAdapter",
    "ProviderError",
    "ProviderPreset",
    "RateLimited",
    "ResponseCache",
    "ResponseFormat",
    "RetryBudget",
    "RetryPolicy",
    "RouteContext",
    "Strategy",
    "Stream",
    "StreamInterrupted",
    "SystemClock",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "UnknownModelError",
    "Usage",
    "errors",
    "load_config",
    "register_adapter",
    "register_provider",
    "register_strategy",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    if name == "errors":
        import importlib

        return importlib.import_module(".errors", __name__)
    if name == "__version__":
        from importlib.metadata import version

        return version("multimodel")
    raise AttributeError(f"module 'multimodel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
