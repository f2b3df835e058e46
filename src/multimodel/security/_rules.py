"""The :class:`Policy` model and its per-deployment rules (see :mod:`multimodel.security.policy`).

Split from :mod:`~multimodel.security.policy` to keep modules small; import from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..providers.base import Endpoint

__all__ = ["FIXES", "Policy", "estimated_cost", "exclusion"]

_MILLION = Decimal(1_000_000)


class Policy(BaseModel):
    """What one class of caller may do. Frozen; unknown fields are an error.

    Attributes:
        name: the policy's name (used in errors).
        allowed_models: model patterns that may be used; ``None`` = every model.
        denied_models: model patterns that may never be used (wins over ``allowed_models``).
        allowed_providers: provider names that may be used; ``None`` = every provider.
        denied_providers: provider names that may never be used.
        max_cost_per_request: USD a request may be expected to cost, estimated before sending
            from the catalog's prices (prompt estimate plus expected output).
        allow_unpriced: with a cost cap, whether deployments whose price is unknown may serve
            (default no: a cap that cannot be checked excludes them).
        max_tokens: the most output tokens a request may ask for.
        on_max_tokens: what to do with a request over ``max_tokens`` (or without
            ``max_tokens`` while a cap exists): ``"reject"`` it, or ``"clamp"`` it to the cap.
        max_input_tokens: the most (estimated) prompt tokens a request may carry.
        log_prompts: whether the request's prompt and answer may be stored in the usage
            ledger (``UsageLedger(store_content=True)``).

    Example::

        Policy(name="analyst", allowed_models={"gpt-4o*"}, denied_models={"gpt-4o-realtime*"},
               max_cost_per_request="0.05", max_tokens=2000, on_max_tokens="clamp")
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str = Field(min_length=1)
    allowed_models: frozenset[str] | None = None
    denied_models: frozenset[str] = frozenset()
    allowed_providers: frozenset[str] | None = None
    denied_providers: frozenset[str] = frozenset()
    max_cost_per_request: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    allow_unpriced: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    on_max_tokens: Literal["clamp", "reject"] = "reject"
    max_input_tokens: int | None = Field(default=None, ge=1)
    log_prompts: bool = False

    @field_validator(
        "allowed_models", "denied_models", "allowed_providers", "denied_providers", mode="before"
    )
    @classmethod
    def _not_one_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"must be a set of names, not one string (write {{{value!r}}})")  # noqa: TRY004
        return value

    @field_validator("allowed_models", "denied_models", "allowed_providers", "denied_providers")
    @classmethod
    def _no_blank(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None and any(not v.strip() for v in value):
            raise ValueError("names and patterns must not be blank")
        return value


def estimated_cost(endpoint: Endpoint, input_tokens: int, output_tokens: int) -> Decimal | None:
    """Exact USD estimate of a request on ``endpoint`` from its catalog prices (``None``: unknown).

    The same sum as :func:`multimodel.strategies.intelligent.estimated_cost`, kept in
    :class:`~decimal.Decimal`.

    Example::

        estimated_cost(endpoint, 1_000, 500)   # Decimal('0.0075') at $2.50 / $10 per M tokens
    """
    pricing = getattr(endpoint.spec, "pricing", None)
    if pricing is None:
        return None
    cost: Decimal = (pricing.input * input_tokens + pricing.output * output_tokens) / _MILLION
    return cost


def _names(endpoint: Endpoint) -> list[str]:
    names = [endpoint.model, endpoint.wire_model]
    spec = endpoint.spec
    if spec is not None:
        spec_id = getattr(spec, "id", None)
        if isinstance(spec_id, str):
            names.append(spec_id)
        names.extend(a for a in getattr(spec, "aliases", ()) if isinstance(a, str))
    return list(dict.fromkeys(n.lower() for n in names))


def _match(names: Iterable[str], patterns: Iterable[str]) -> str | None:
    """The first pattern (sorted, for stable messages) any name matches, else ``None``."""
    for pattern in sorted(patterns):
        low = pattern.lower()
        if any(fnmatchcase(n, low) for n in names):
            return pattern
    return None


def _in(value: str, names: frozenset[str]) -> bool:
    return value.lower() in {n.lower() for n in names}  # providers: exact, any case


def _show(values: Iterable[str]) -> str:
    return "{" + ", ".join(map(repr, sorted(values))) + "}"


def exclusion(
    policy: Policy, endpoint: Endpoint, input_tokens: int, output_tokens: int
) -> str | None:
    """Why ``policy`` excludes ``endpoint`` (``"<rule>: <detail>"``), or ``None``."""
    names = _names(endpoint)
    denied = _match(names, policy.denied_models)
    if denied is not None:
        return f"denied_models: model {endpoint.model!r} matches denied pattern {denied!r}"
    if policy.allowed_models is not None and _match(names, policy.allowed_models) is None:
        return (
            f"allowed_models: model {endpoint.model!r} matches none of "
            f"{_show(policy.allowed_models)}"
        )
    if _in(endpoint.provider, policy.denied_providers):
        return f"denied_providers: provider {endpoint.provider!r} is denied"
    if policy.allowed_providers is not None and not _in(
        endpoint.provider, policy.allowed_providers
    ):
        return (
            f"allowed_providers: provider {endpoint.provider!r} is not in "
            f"{_show(policy.allowed_providers)}"
        )
    cap = policy.max_cost_per_request
    if cap is not None:
        cost = estimated_cost(endpoint, input_tokens, output_tokens)
        if cost is None:
            if not policy.allow_unpriced:
                return (
                    "max_cost_per_request: price unknown, so the cap cannot be checked "
                    "(allow_unpriced=False)"
                )
        elif cost > cap:
            return (
                f"max_cost_per_request: estimated cost ${cost:.6f} exceeds ${cap} "
                f"(~{input_tokens} input + {output_tokens} output tokens)"
            )
    return None


FIXES = {
    "denied_models": "ask for a model the policy does not deny",
    "allowed_models": "ask for a model matching allowed_models",
    "denied_providers": "use a deployment on another provider",
    "allowed_providers": "use a deployment on an allowed provider",
    "max_cost_per_request": "lower max_tokens, shorten the prompt or pick a cheaper model",
}
