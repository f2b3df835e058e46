"""Token counts to money: exact :class:`~decimal.Decimal` cost maths from catalog prices.

A :class:`~multimodel.types.Usage` is already normalized by the adapters (``input_tokens``
includes cache reads and writes; ``output_tokens`` includes reasoning tokens), so one formula
serves every provider::

    uncached_input = input_tokens - cache_read_tokens - cache_write_tokens
    cost = (uncached_input * input + cache_read * cached_input + cache_write * cache_write
            + (output_tokens - reasoning) * output + reasoning * output) / 1_000_000

Every step runs in a private decimal context with enough precision that nothing is ever rounded
(an inexact step would raise), so ``total`` is exactly the sum of the parts, whatever decimal
context the application has set. No floats are involved.
"""

from __future__ import annotations

import threading
import warnings
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import NamedTuple

from ..catalog.models import ModelSpec, Pricing
from ..errors import PricingWarning
from ..types import Usage

__all__ = ["CostBreakdown", "WarnOnce", "compute_cost", "cost_for"]

# Precision far beyond any token count times any price; Inexact is trapped, so a rounding
# would be a loud bug rather than a silent cent.
_EXACT = Context(prec=200, traps=[Inexact, InvalidOperation])
_PER = -6  # prices are per 10**6 tokens


class CostBreakdown(NamedTuple):
    """What one response cost, in USD, split by kind of token (immutable; built per response,
    so a named tuple rather than a frozen dataclass, which costs several times as much).

    Fields (named tuple, so autodoc lists them below):
        uncached_input: prompt tokens neither read from nor written to a cache.
        cache_read: prompt tokens read from a prompt cache.
        cache_write: prompt tokens written to a prompt cache.
        output: generated tokens other than reasoning.
        reasoning: reasoning ("thinking") tokens, billed at the output price.
        total: the exact sum of the five parts.
        price_version: the catalog version whose prices were used.
    """

    uncached_input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal
    total: Decimal
    price_version: str

    @property
    def input(self) -> Decimal:
        """Everything paid for the prompt: uncached input plus cache reads and writes."""
        return _EXACT.add(_EXACT.add(self.uncached_input, self.cache_read), self.cache_write)


def _price(tokens: int, per_million: Decimal) -> Decimal:
    if not tokens:
        return _ZERO  # most answers have no cache or reasoning tokens: skip the arithmetic
    per_token = _PER_TOKEN.get(per_million)
    if per_token is None:
        if len(_PER_TOKEN) >= _PER_TOKEN_MAX:
            _PER_TOKEN.clear()  # bounded: a process sees a few dozen distinct prices at most
        per_token = _PER_TOKEN[per_million] = per_million.scaleb(_PER, _EXACT)
    # Same digits and exponent as (tokens * per_million) scaled by 10**-6, in one operation.
    return _EXACT.multiply(tokens, per_token)


_ZERO = Decimal(0)
_PER_TOKEN: dict[Decimal, Decimal] = {}  # price per million -> price per token (exact)
_PER_TOKEN_MAX = 4096


_new_tuple = tuple.__new__
# The exact context's operations, bound once: looking a method up on a Context costs about as
# much as the operation itself.
_multiply = _EXACT.multiply
_add = _EXACT.add
# id(Pricing) -> (the Pricing, input and output price per token); the Pricing is kept, so its
# id is not reused while the entry lives. Bounded like _PER_TOKEN.
_PER_PRICING: dict[int, tuple[Pricing, Decimal, Decimal]] = {}


def _per_token_prices(pricing: Pricing) -> tuple[Pricing, Decimal, Decimal]:
    if len(_PER_PRICING) >= _PER_TOKEN_MAX:
        _PER_PRICING.clear()
    entry = _PER_PRICING[id(pricing)] = (
        pricing,
        pricing.input.scaleb(_PER, _EXACT),
        pricing.output.scaleb(_PER, _EXACT),
    )
    return entry


def compute_cost(usage: Usage, pricing: Pricing, *, price_version: str) -> CostBreakdown:
    """The exact cost of ``usage`` at ``pricing`` (USD per million tokens).

    Cache reads are billed at ``cached_input`` and cache writes at ``cache_write``, each falling
    back to the ``input`` price when the model has none; reasoning and other output tokens at
    ``output``.

    Inconsistent counts are clamped so that no more prompt tokens are billed than
    ``input_tokens`` reports: negative counts count as zero, cache reads are capped at the
    input, cache writes at what remains, and reasoning at the output. ``total`` is still the
    exact sum of the parts.
    """
    # The fields read from the model's __dict__: each pydantic attribute read passes through
    # BaseModel's __getattr__ hook, about three times a dict lookup (once per answer).
    counts = usage.__dict__
    if not (
        counts["cache_read_tokens"] or counts["cache_write_tokens"] or counts["reasoning_tokens"]
    ):
        # The common answer: plain input and output tokens (counts are never negative here,
        # the adapters clamp them; max() keeps the general path's guarantee all the same).
        # Per-token prices are kept per (frozen) Pricing object: hashing two Decimals per call
        # cost more than the multiplications.
        per_token = _PER_PRICING.get(id(pricing))
        if per_token is None or per_token[0] is not pricing:
            per_token = _per_token_prices(pricing)
        tokens = counts["input_tokens"]
        uncached_cost = _multiply(tokens, per_token[1]) if tokens > 0 else _ZERO
        tokens = counts["output_tokens"]
        output_cost = _multiply(tokens, per_token[2]) if tokens > 0 else _ZERO
        # tuple.__new__ directly: a named tuple's generated __new__ is a Python function.
        return _new_tuple(
            CostBreakdown,
            (
                uncached_cost,
                _ZERO,
                _ZERO,
                output_cost,
                _ZERO,
                _add(uncached_cost, output_cost) if output_cost else uncached_cost,
                price_version,
            ),
        )
    input_tokens = max(0, usage.input_tokens)
    cache_read = min(max(0, usage.cache_read_tokens), input_tokens)
    cache_write = min(max(0, usage.cache_write_tokens), input_tokens - cache_read)
    uncached = input_tokens - cache_read - cache_write
    output_tokens = max(0, usage.output_tokens)
    reasoning = min(max(0, usage.reasoning_tokens), output_tokens)

    parts = (
        _price(uncached, pricing.input),
        _price(cache_read, pricing.cache_read_price),
        _price(cache_write, pricing.cache_write_price),
        _price(output_tokens - reasoning, pricing.output),
        _price(reasoning, pricing.output),
    )
    total = _ZERO
    for part in parts:
        if part:
            total = _EXACT.add(total, part)
    return CostBreakdown(*parts, total=total, price_version=price_version)


class WarnOnce:
    """Issues each warning once per key for as long as this object lives; thread-safe.

    The caller owns it (one per client or tracker, say), so "once" never leaks across
    unrelated users in one process and tests start fresh.
    """

    __slots__ = ("_lock", "_seen")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._seen

    def warn(
        self,
        key: str,
        message: str,
        category: type[Warning] = PricingWarning,
        *,
        stacklevel: int = 2,
    ) -> bool:
        """Warn with ``message`` unless ``key`` was warned before; return whether it warned."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        warnings.warn(message, category, stacklevel=stacklevel + 1)
        return True

    def reset(self) -> None:
        """Forget every key, so each warning may be issued again."""
        with self._lock:
            self._seen.clear()


def cost_for(
    usage: Usage,
    spec: ModelSpec | None,
    *,
    version: str,
    model: str | None = None,
    warn_once: WarnOnce | None = None,
) -> CostBreakdown | None:
    """The cost of ``usage`` on ``spec``, or ``None`` when its price is unknown.

    An unknown price (no catalog entry, or an entry without prices) is not an error: the cost
    is reported as ``None`` and a :class:`~multimodel.errors.PricingWarning` is issued, once per
    model when a ``warn_once`` registry is given, else on every call.

    Args:
        usage: normalized token counts.
        spec: the model's catalog entry, or ``None`` when the catalog does not know it.
        version: the catalog version the prices come from (recorded in the breakdown).
        model: the name to report when ``spec`` is ``None``.
        warn_once: the caller's registry of warnings already issued.
    """
    if spec is not None and spec.pricing is not None:
        return compute_cost(usage, spec.pricing, price_version=version)
    name = spec.key if spec is not None else (model or "<unnamed model>")
    why = "has no price in" if spec is not None else "is not in"
    message = (
        f"model {name!r} {why} the catalog (version {version}); its cost is reported as None. "
        "Set a price with Catalog.override_price or Catalog.add."
    )
    if warn_once is None:
        warnings.warn(message, PricingWarning, stacklevel=2)
    else:
        warn_once.warn(name, message, PricingWarning, stacklevel=2)
    return None
