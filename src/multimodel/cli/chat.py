"""``multimodel chat``: send one prompt to real providers and show what the router did.

Examples::

    export OPENAI_API_KEY=... ANTHROPIC_API_KEY=...
    multimodel chat "Explain quantum computing in two sentences"          # model auto
    multimodel chat "Write a haiku about routers" --model claude-3.5-haiku --stream
    multimodel chat "Hello" --model openai/gpt-4.1-nano --max-tokens 50 --json

Deployments are built for every provider whose API-key environment variable is set, with one
default model each:

=========  ===========================  ===========================
provider   key variable                 default model
=========  ===========================  ===========================
openai     OPENAI_API_KEY               gpt-4o-mini
anthropic  ANTHROPIC_API_KEY            claude-3.5-haiku
gemini     GEMINI_API_KEY (GOOGLE_...)  gemini-2.0-flash
deepseek   DEEPSEEK_API_KEY             deepseek-chat
groq       GROQ_API_KEY                 llama-3.3-70b-versatile
mistral    MISTRAL_API_KEY              mistral-small
xai        XAI_API_KEY                  grok-3-mini
together   TOGETHER_API_KEY             llama-3.3-70b-instruct-turbo
qwen       DASHSCOPE_API_KEY            qwen-turbo
meta       LLAMA_API_KEY                llama-3.3-70b
=========  ===========================  ===========================

(A default missing from the catalog is replaced by the provider's cheapest current model.)

``--model`` chooses what to call:

* ``auto`` (default): every deployment above competes; the ``intelligent`` strategy weighs
  cost, speed and quality and the answer says which one served.
* a catalog name or alias (``gpt-4.1``, ``claude-3.5``, ``gemini-pro``; see
  ``multimodel models``): the providers that serve it and whose key is set.
* ``PROVIDER/MODEL`` (``openai/gpt-4.1-nano``, ``openrouter/meta-llama/llama-3.3-70b-instruct``):
  that model id on that provider, catalogued or not (cost is unknown when it is not).

Environment override, for OpenAI-compatible gateways and proxies (and for tests, which point
it at :class:`~multimodel.testing.MockProviderServer`):

``MULTIMODEL_CHAT_BASE_URL_<PROVIDER>``
    replaces that provider's base URL, e.g.
    ``MULTIMODEL_CHAT_BASE_URL_OPENAI=https://gateway.example.com/v1``. The key still comes from
    the provider's usual variable (``OPENAI_API_KEY``).

Azure OpenAI is not covered (it needs a resource URL and a deployment name: use the library).
The answer is printed (as it arrives with ``--stream``), then the chosen deployment, tokens,
cost and latency; ``--json`` prints one JSON object instead (with ``--stream`` the request is
still streamed, so the time to first token is measured). Exit codes: 0 answered, 1 no key set
or the call failed, 2 usage error (bad option, unknown model).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._output import EXIT_OK, EXIT_USAGE, error, print_json

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..config import Deployment
    from ..types import ChatResponse

__all__ = [
    "BASE_URL_ENV_PREFIX",
    "DEFAULT_MODELS",
    "NoKeysError",
    "add_parser",
    "available_providers",
    "build_deployments",
    "default_model",
    "run",
    "run_chat",
]

BASE_URL_ENV_PREFIX = "MULTIMODEL_CHAT_BASE_URL_"
"""``MULTIMODEL_CHAT_BASE_URL_OPENAI`` etc. override a provider's base URL."""

DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3.5-haiku",
    "gemini": "gemini-2.0-flash",
    "deepseek": "deepseek-chat",
    "groq": "llama-3.3-70b-versatile",
    "mistral": "mistral-small",
    "xai": "grok-3-mini",
    "together": "llama-3.3-70b-instruct-turbo",
    "qwen": "qwen-turbo",
    "meta": "llama-3.3-70b",
}
"""The model ``multimodel chat`` uses on each provider (catalog names), in preference order."""


class NoKeysError(Exception):
    """No usable provider key is set; the message lists the variables to set."""


class _UsageError(Exception):
    """A bad ``--model`` value (exit code 2)."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``chat`` subcommand to the ``multimodel`` subparsers."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "chat",
        help="send a prompt to the providers whose API keys are set (a real call)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prompt", help="the prompt to send")
    parser.add_argument(
        "--model",
        default="auto",
        help="auto (default: the router chooses), a catalog model name, or PROVIDER/MODEL",
    )
    parser.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    parser.add_argument(
        "--max-tokens",
        type=_positive_int,
        default=1024,
        metavar="N",
        help="most tokens to generate (default 1024)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="per-attempt timeout (default 60)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    """Run ``multimodel chat`` from parsed arguments."""
    if args.timeout <= 0:
        return error("chat", "--timeout must be > 0", EXIT_USAGE)
    return run_chat(
        args.prompt,
        model=args.model,
        stream=args.stream,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        as_json=args.json,
    )


def _key_vars(env_vars: tuple[str, ...]) -> str:
    first, *rest = env_vars
    return f"{first} (or {', '.join(rest)})" if rest else first


def available_providers(env: Mapping[str, str]) -> list[str]:
    """The providers of :data:`DEFAULT_MODELS` whose API-key variable is set, in that order."""
    from ..providers.presets import builtin_presets

    presets = builtin_presets()
    return [p for p in DEFAULT_MODELS if any(env.get(v) for v in presets[p].env_vars)]


def default_model(catalog: Catalog, provider: str) -> str | None:
    """The chat model for ``provider``: its :data:`DEFAULT_MODELS` entry if the catalog has it
    (and it is current), else the cheapest current priced model of that provider."""
    preferred = DEFAULT_MODELS.get(provider)
    if preferred is not None:
        spec = catalog.find(preferred, provider=provider)
        if spec is not None and not spec.deprecated:
            return spec.id
    current = catalog.list(provider, "chat", sort_by="input_price", include_deprecated=False)
    priced = [s for s in current if s.pricing is not None]
    return priced[0].id if priced else None


def _no_keys_message() -> str:
    from ..providers.presets import builtin_presets

    presets = builtin_presets()
    names = ", ".join(_key_vars(presets[p].env_vars) for p in DEFAULT_MODELS)
    return f"no provider API key is set; set at least one of {names} (see `multimodel chat --help`)"


def build_deployments(
    model: str, env: Mapping[str, str], catalog: Catalog
) -> tuple[list[Deployment], str]:
    """The deployments for ``--model`` and the model name to ask for.

    Raises:
        NoKeysError: no provider key is set, or none for the providers that serve ``model``.
        _UsageError: ``model`` is neither ``auto``, a catalog name, nor ``PROVIDER/MODEL``.
    """
    from ..config import Deployment
    from ..providers.presets import builtin_presets

    presets = builtin_presets()

    def deployment(provider: str, name: str, wire: str | None = None) -> Deployment:
        base_url = env.get(BASE_URL_ENV_PREFIX + provider.upper()) or None
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise NoKeysError(
                f"{BASE_URL_ENV_PREFIX}{provider.upper()} must start with http:// or https://"
            )
        spec = catalog.find(name, provider=provider)
        return Deployment(
            model=name,
            provider=provider,
            base_url=base_url,
            provider_model=wire or (spec.api_model if spec is not None else None),
        )

    head, sep, rest = model.partition("/")
    if sep and head in presets and rest:
        preset = presets[head]
        if preset.key_required and not any(env.get(v) for v in preset.env_vars):
            raise NoKeysError(f"model {model!r} needs {_key_vars(preset.env_vars)} to be set")
        spec = catalog.find(rest, provider=head)
        return [deployment(head, spec.id if spec else rest, spec.api_model if spec else rest)], (
            spec.id if spec else rest
        )

    available = available_providers(env)
    if model == "auto":
        if not available:
            raise NoKeysError(_no_keys_message())
        deployments = []
        for provider in available:
            name = default_model(catalog, provider)
            if name is not None:
                deployments.append(deployment(provider, name))
        return deployments, "auto"

    serving = [s for s in catalog if model in s.names]
    if not serving:
        raise _UsageError(
            f"unknown model {model!r}: not in the catalog (see `multimodel models`); "
            "use PROVIDER/MODEL for a model outside it"
        )
    usable = [s for s in serving if s.provider in available]
    if not usable:
        needed = sorted(
            {_key_vars(presets[s.provider].env_vars) for s in serving if s.provider in presets}
        )
        raise NoKeysError(
            f"model {model!r} is served by "
            f"{', '.join(sorted({s.provider for s in serving}))}; set "
            f"{' or '.join(needed) or 'its provider key'}"
        )
    canonical = usable[0].id
    return [deployment(s.provider, canonical, s.api_model) for s in usable], canonical


def _summary(response: ChatResponse, candidates: list[str]) -> list[tuple[str, str]]:
    usage = response.usage
    cost = (
        "unknown (model not priced in the catalog)"
        if response.cost is None
        else (f"${float(response.cost):.6f}")
    )
    latency = f"{response.latency:.2f} s"
    if response.ttft is not None:
        latency += f" (first token {response.ttft:.2f} s)"
    where = f"{response.deployment} (provider {response.provider}, model {response.model})"
    rows = [("deployment", where)]
    if len(candidates) > 1:
        rows.append(("candidates", ", ".join(candidates)))
    return [
        *rows,
        (
            "tokens",
            f"{usage.input_tokens} in, {usage.output_tokens} out ({usage.total_tokens} total)",
        ),
        ("cost", cost),
        ("latency", latency),
    ]


def run_chat(
    prompt: str,
    *,
    model: str = "auto",
    stream: bool = False,
    max_tokens: int = 1024,
    timeout: float = 60.0,
    as_json: bool = False,
    env: Mapping[str, str] | None = None,
) -> int:
    """Send ``prompt``; returns the exit code (1: no key set or the call failed)."""
    from .. import Client, MultimodelError
    from ..catalog import default_catalog
    from ..errors import PricingWarning

    env = dict(os.environ) if env is None else env
    catalog = default_catalog()
    try:
        deployments, ask = build_deployments(model, env, catalog)
    except _UsageError as exc:
        return error("chat", str(exc), EXIT_USAGE)
    except NoKeysError as exc:
        return error("chat", str(exc))
    names = [d.display_name for d in deployments]
    streamed = False
    try:
        with (
            warnings.catch_warnings(),
            Client(deployments=deployments, timeout=timeout, env=env, catalog=catalog) as client,
        ):
            # an uncatalogued PROVIDER/MODEL: the summary already says its cost is unknown
            warnings.simplefilter("ignore", PricingWarning)
            if stream:
                with client.stream(prompt, model=ask, max_tokens=max_tokens) as s:
                    for chunk in s:
                        if chunk.text and not as_json:
                            streamed = True
                            sys.stdout.write(chunk.text)
                            sys.stdout.flush()
                    response = s.get_final_response()
            else:
                response = client.query(prompt, model=ask, max_tokens=max_tokens)
    except MultimodelError as exc:
        if streamed:
            print()
        return error("chat", f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        print()
        return 130
    if as_json:
        usage = response.usage
        print_json(
            {
                "text": response.text,
                "model": response.model,
                "provider": response.provider,
                "deployment": response.deployment,
                "candidates": names,
                "finish_reason": response.finish_reason,
                "usage": {
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "total_tokens": usage.total_tokens,
                },
                "cost": None if response.cost is None else float(response.cost),
                "latency": response.latency,
                "ttft": response.ttft,
                "stream": stream,
            }
        )
        return EXIT_OK
    if streamed:
        print()
    else:
        print(response.text)
    print()
    for label, value in _summary(response, names):
        print(f"{label:<12}{value}")
    return EXIT_OK
