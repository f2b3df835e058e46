"""The catalog's value types: :class:`Pricing` and :class:`ModelSpec`.

Both are frozen pydantic models. Prices are :class:`~decimal.Decimal` amounts in US dollars per
**one million** tokens, so that cost arithmetic is exact; give them as strings (``"0.075"``) in
data files. A float such as ``0.1`` is accepted and read through its shortest ``repr``, which is
exact for every price written by hand, but strings say what is meant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CAPABILITIES", "PRICE_FIELDS", "ModelSpec", "Pricing"]

CAPABILITIES: frozenset[str] = frozenset(
    {
        "chat",
        "completion",
        "analysis",
        "coding",
        "vision",
        "tools",
        "json",
        "structured_output",
        "embedding",
        "reasoning",
        "streaming",
        "long_context",
    }
)
"""The fixed vocabulary of :attr:`ModelSpec.capabilities`.

``long_context`` means a context window of at least 200,000 tokens in the bundled data;
``completion`` means the provider also offers plain-text (or fill-in-the-middle) completion.
``json`` is a JSON mode; ``structured_output`` is output held to a JSON Schema (OpenAI's strict
``json_schema``, Anthropic's forced tool call, Gemini's ``responseJsonSchema``), which
``model="auto"`` requires of a request with a schema. ``embedding`` marks an embedding model.
"""

PRICE_FIELDS: tuple[str, ...] = ("input", "output", "cached_input", "cache_write")
"""The :class:`Pricing` fields, which data files may also give flat on a model entry."""

_FROZEN = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Pricing(BaseModel):
    """List prices of one model, in USD per one million tokens.

    Attributes:
        input: uncached prompt tokens.
        output: generated tokens, reasoning ("thinking") tokens included.
        cached_input: prompt tokens read from a prompt cache; ``None`` = billed as ``input``.
        cache_write: prompt tokens written to a prompt cache (Anthropic's cache creation);
            ``None`` = billed as ``input``.
    """

    model_config = _FROZEN

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)

    @property
    def cache_read_price(self) -> Decimal:
        """The price of a cache-read token: ``cached_input``, else ``input``."""
        return self.input if self.cached_input is None else self.cached_input

    @property
    def cache_write_price(self) -> Decimal:
        """The price of a cache-write token: ``cache_write``, else ``input``."""
        return self.input if self.cache_write is None else self.cache_write


class ModelSpec(BaseModel):
    """One model as served by one provider: names, limits, prices, capabilities, quality.

    Attributes:
        id: the catalog name of the model (``"claude-3.5-sonnet"``).
        provider: the provider preset that serves it (``"anthropic"``); see
            :func:`multimodel.providers.presets.builtin_presets`.
        provider_model: the model id the provider's API expects, when it differs from ``id``
            (``"claude-3-5-sonnet-20241022"``); :attr:`api_model` gives the effective one.
        aliases: other names that resolve to this model (``"claude-3.5"``, dated ids).
        context_window: prompt plus output tokens the model accepts.
        max_output_tokens: the most tokens one response may generate.
        pricing: list prices, or ``None`` when no public price is known (cost is then
            reported as unknown rather than guessed).
        capabilities: a subset of :data:`CAPABILITIES`.
        quality: a coarse 0-100 quality score, for ordering only (see ``quality_source``).
        quality_source: where the score comes from, and how approximate it is.
        reasoning: whether the model spends hidden reasoning tokens (billed as output).
        deprecated: whether the provider has retired or deprecated the model.
        notes: caveats (tiered prices, legacy aliases, ...).

    Data files may give the prices flat on the entry (``input = "3"``, ``output = "15"``)
    instead of a nested ``pricing`` table.
    """

    model_config = _FROZEN

    id: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    provider_model: str | None = None
    aliases: tuple[str, ...] = ()
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    pricing: Pricing | None = None
    capabilities: frozenset[str] = frozenset({"chat"})
    quality: int = Field(default=50, ge=0, le=100)
    quality_source: str = ""
    reasoning: bool = False
    deprecated: bool = False
    notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _flat_prices(cls, data: Any) -> Any:
        """Gather flat ``input``/``output``/... keys into ``pricing``."""
        if not isinstance(data, dict):
            return data
        flat = {k: data[k] for k in PRICE_FIELDS if k in data}
        if not flat:
            return data
        if data.get("pricing") is not None:
            raise ValueError(
                f"give prices either flat ({', '.join(sorted(flat))}) or in `pricing`, not both"
            )
        rest = {k: v for k, v in data.items() if k not in PRICE_FIELDS}
        rest["pricing"] = flat
        return rest

    @field_validator("id", "provider", "provider_model")
    @classmethod
    def _no_blank(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value != value.strip()):
            raise ValueError("must be non-empty and have no surrounding whitespace")
        return value

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases_sequence(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of names, not one string")  # noqa: TRY004 (pydantic)
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases_clean(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for alias in value:
            if not alias.strip() or alias != alias.strip():
                raise ValueError(f"alias {alias!r} is blank or has surrounding whitespace")
            if alias in seen:
                raise ValueError(f"alias {alias!r} is listed twice")
            seen.add(alias)
        return value

    @field_validator("capabilities", mode="before")
    @classmethod
    def _capabilities_sequence(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of capabilities, not one string")  # noqa: TRY004
        return value

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - CAPABILITIES)
        if unknown:
            raise ValueError(
                f"unknown capabilit{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(map(repr, unknown))}; valid: {', '.join(sorted(CAPABILITIES))}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.id in self.aliases:
            raise ValueError(f"alias {self.id!r} repeats the model's own id")
        if self.max_output_tokens > self.context_window:
            raise ValueError(
                f"max_output_tokens ({self.max_output_tokens}) exceeds context_window "
                f"({self.context_window})"
            )
        return self

    @property
    def key(self) -> str:
        """The unique catalog key, ``"provider/id"``."""
        return f"{self.provider}/{self.id}"

    @property
    def api_model(self) -> str:
        """The model id to send to the provider: ``provider_model``, else ``id``."""
        return self.provider_model or self.id

    @property
    def names(self) -> tuple[str, ...]:
        """``id`` followed by the aliases: every bare name this model answers to."""
        return (self.id, *self.aliases)

    def has(self, *capabilities: str) -> bool:
        """Whether the model has every one of ``capabilities``."""
        return self.capabilities.issuperset(capabilities)
