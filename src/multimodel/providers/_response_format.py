"""How an OpenAI-wire deployment takes a JSON schema (no I/O).

Two ways: natively, ``response_format={"type": "json_schema", ...}`` (the schema adjusted to
strict mode's rules), or JSON mode, ``{"type": "json_object"}`` with the schema in a system
message, for a provider or model that has no ``json_schema`` mode and would refuse it with a
400. :func:`structured_output_mode` decides per deployment, in this order:

1. the deployment's own ``structured_output`` setting (``Deployment(structured_output=...)``);
2. for a provider that holds only some of its models to a schema (preset option
   ``json_schema: "per_model"``: Groq, Together, Qwen, OpenRouter), the catalog's entry for
   that model *on that provider*: ``structured_output`` among its capabilities or not;
3. the preset's default: ``json_schema`` unless the preset says ``json_schema: False``
   (DeepSeek).

Either way the answer is validated against the schema afterwards.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ._schema import openai_strict_expressible, openai_strict_schema

if TYPE_CHECKING:
    from ..types import ResponseFormat
    from .base import Endpoint

__all__ = ["PER_MODEL", "StructuredOutputMode", "schema_prompt", "structured_output_mode"]

StructuredOutputMode = Literal["json_schema", "json_mode"]
PER_MODEL = "per_model"
"""The preset value of ``json_schema`` for providers whose support differs by model."""


def structured_output_mode(endpoint: Endpoint) -> StructuredOutputMode | None:
    """How a deployment of the OpenAI wire format is sent a schema: ``"json_schema"`` or
    ``"json_mode"`` (JSON mode, the schema in a system message); ``None`` for a deployment of
    another wire format, which enforces a schema its own way (Anthropic a forced tool call,
    Gemini ``responseJsonSchema``). See the module docs for the order of the decision.

    Example::

        from multimodel.providers import structured_output_mode

        for endpoint in client.deployments:
            print(endpoint.name, structured_output_mode(endpoint))
    """
    if endpoint.adapter != "openai":
        return None
    explicit = endpoint.option("structured_output")
    if explicit is not None:
        return explicit  # type: ignore[no-any-return]  # validated by Deployment
    native = endpoint.option("json_schema", True)
    if native == PER_MODEL:
        spec = endpoint.spec
        # Only the entry for this model on this provider says what this provider supports: the
        # same model elsewhere (the catalog's lookup may fall back to any provider) does not.
        if spec is not None and _same_provider(spec.provider, endpoint.provider):
            return "json_schema" if "structured_output" in spec.capabilities else "json_mode"
        return "json_schema"
    return "json_mode" if native is False else "json_schema"


def _same_provider(catalog_provider: str, provider: str) -> bool:
    """Whether a catalog entry's provider is the deployment's (``dashscope`` is ``qwen``)."""
    if catalog_provider == provider:
        return True
    from .registry import get_preset

    try:
        return get_preset(provider).name == catalog_provider
    except ConfigError:  # an Endpoint built by hand for a provider nobody registered
        return False


def schema_prompt(fmt: ResponseFormat) -> str:
    """The instruction that carries a schema when the provider has no ``json_schema`` mode."""
    return (
        "Respond with a single JSON object and nothing else. It must conform to this JSON "
        f"Schema (named {fmt.name!r}):\n{json.dumps(fmt.schema_, separators=(',', ':'))}"
    )


def openai_response_format(
    fmt: ResponseFormat, endpoint: Endpoint, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """The body's ``response_format`` for ``fmt`` on ``endpoint``; in JSON mode, the schema's
    system message is put first in ``messages`` (the body's own list, changed in place)."""
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    if structured_output_mode(endpoint) == "json_mode":
        messages.insert(0, {"role": "system", "content": schema_prompt(fmt)})
        return {"type": "json_object"}
    assert fmt.schema_ is not None
    strict = fmt.strict
    if strict and not openai_strict_expressible(fmt.schema_):
        strict = False  # free-form objects: strict mode would only allow {}
    schema: dict[str, Any] = {
        "name": fmt.name,
        "schema": openai_strict_schema(fmt.schema_) if strict else fmt.schema_,
    }
    if strict is not None:
        schema["strict"] = strict
    return {"type": "json_schema", "json_schema": schema}
