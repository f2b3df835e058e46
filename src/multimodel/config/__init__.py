"""Deployments and client configuration.

A :class:`Deployment` is one model served by one provider account: the unit the router chooses
between. Several deployments may serve the same ``model`` (a *model group*), e.g. ``gpt-4o`` on
OpenAI and on Azure. Keys are :class:`pydantic.SecretStr`; when none is given, the provider's
environment variable is read when the client is built (not at import).

A :class:`ClientConfig` holds every option of a client. A client can be built from one, from a
plain dict, or from a TOML or JSON file with the same names (chosen by the file's extension)::

    # multimodel.toml
    strategy = "round_robin"
    timeout = 30
    cache = true

    [[deployments]]
    model = "gpt-4o-mini"
    provider = "openai"          # key from OPENAI_API_KEY

    [[deployments]]
    model = "claude-3.5-sonnet"
    provider = "anthropic"
    provider_model = "claude-3-5-sonnet-20241022"

    [retry]
    backoff_initial = 1.0

``Client(config="multimodel.toml", timeout=10)``: keywords given to the client override the
file, and ``client.config`` is the merged configuration, the one in effect.
"""

from ._load import load_config, resolve_endpoints
from ._models import ClientConfig, Deployment

__all__ = ["ClientConfig", "Deployment", "load_config", "resolve_endpoints"]
