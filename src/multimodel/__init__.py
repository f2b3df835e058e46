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

from . import errors
from ._core.clock import ManualClock, SystemClock
from .async_client import AsyncClient
from .client import Client
from .config import ClientConfig, Deployment, load_config
from .errors import (
    AllAttemptsFailed,
    ConfigError,
    InvalidRequestError,
    MissingAPIKeyError,
    MultimodelError,
    NoDeploymentAvailable,
    ProviderError,
    RateLimited,
    StreamInterrupted,
    UnknownModelError,
)
from .providers import ProviderAdapter, ProviderPreset, register_adapter, register_provider
from .resilience.retry import RetryPolicy
from .strategies import Strategy, register_strategy
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
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Client",
    "ClientConfig",
    "ConfigError",
    "Deployment",
    "ImagePart",
    "InvalidRequestError",
    "ManualClock",
    "Message",
    "MissingAPIKeyError",
    "MultimodelError",
    "NoDeploymentAvailable",
    "ProviderAdapter",
    "ProviderError",
    "ProviderPreset",
    "RateLimited",
    "ResponseFormat",
    "RetryPolicy",
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


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("multimodel")
    raise AttributeError(f"module 'multimodel' has no attribute {name!r}")
