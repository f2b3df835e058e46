"""Exact cost maths: every provider's usage shape, clamping, properties, unknown prices."""

from __future__ import annotations

import decimal
import warnings
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multimodel.catalog import Catalog, ModelSpec, Pricing, default_catalog
from multimodel.errors import PricingWarning
from multimodel.tracking.cost import CostBreakdown, WarnOnce, compute_cost, cost_for
from multimodel.types import Usage

V = "test-prices"


D = Decimal


def parts(b: CostBreakdown) -> Decimal:
    return b.uncached_input + b.cache_read + b.cache_write + b.output + b.reasoning


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


def test_plain_usage() -> None:
    pricing = Pricing(input=D("2.50"), output=D("10.00"))
    b = compute_cost(Usage(input_tokens=1000, output_tokens=500), pricing, price_version=V)
    assert b.uncached_input == D("0.0025")
    assert b.output == D("0.005")
    assert b.cache_read == b.cache_write == b.reasoning == 0
    assert b.total == D("0.0075") == parts(b)
    assert b.price_version == V
    assert b.input == D("0.0025")


def test_openai_prompt_includes_cached(catalog: Catalog) -> None:
    # OpenAI: prompt_tokens=2000 of which cached_tokens=1500; completion 300 incl. 100 reasoning
    usage = Usage(
        input_tokens=2000, cache_read_tokens=1500, output_tokens=300, reasoning_tokens=100
    )
    b = compute_cost(
        usage,
        catalog.get("o4-mini").pricing or Pricing(input=0, output=0),
        price_version=catalog.version,
    )
    assert b.uncached_input == D("500") * D("1.10") / 10**6
    assert b.cache_read == D("1500") * D("0.275") / 10**6
    assert b.output == D("200") * D("4.40") / 10**6
    assert b.reasoning == D("100") * D("4.40") / 10**6
    assert b.total == parts(b) == D("0.00055") + D("0.0004125") + D("0.00088") + D("0.00044")
    assert b.price_version == "2026-11-01"


def test_anthropic_cache_write_priced_higher(catalog: Catalog) -> None:
    # wire: input_tokens=100, cache_read_input_tokens=3000, cache_creation_input_tokens=1000
    # normalized input = 100 + 3000 + 1000
    usage = Usage(
        input_tokens=4100, cache_read_tokens=3000, cache_write_tokens=1000, output_tokens=250
    )
    pricing = catalog.get("claude-sonnet-4").pricing
    assert pricing is not None
    b = compute_cost(usage, pricing, price_version=V)
    assert b.uncached_input == D("0.0003")  # 100 * $3
    assert b.cache_read == D("0.0009")  # 3000 * $0.30
    assert b.cache_write == D("0.00375")  # 1000 * $3.75
    assert b.cache_write > D(1000) * pricing.input / 10**6
    assert b.output == D("0.00375")  # 250 * $15
    assert b.total == D("0.0087") == parts(b)


def test_gemini_thoughts_are_output(catalog: Catalog) -> None:
    # wire: promptTokenCount=1200 (cachedContentTokenCount=200), candidates=300, thoughts=700
    usage = Usage(
        input_tokens=1200, cache_read_tokens=200, output_tokens=1000, reasoning_tokens=700
    )
    pricing = catalog.get("gemini-2.5-flash").pricing
    assert pricing is not None
    b = compute_cost(usage, pricing, price_version=V)
    assert b.uncached_input == D("0.0003")  # 1000 * $0.30
    assert b.cache_read == D("0.000015")  # 200 * $0.075
    assert b.output == D("0.00075")  # 300 * $2.50
    assert b.reasoning == D("0.00175")  # 700 * $2.50
    assert b.total == parts(b) == D("0.002815")


def test_deepseek_cache_hits(catalog: Catalog) -> None:
    # wire: prompt_tokens=10000, prompt_cache_hit_tokens=8000, prompt_cache_miss_tokens=2000
    usage = Usage(input_tokens=10_000, cache_read_tokens=8000, output_tokens=1000)
    pricing = catalog.get("deepseek-chat").pricing
    assert pricing is not None
    b = compute_cost(usage, pricing, price_version=V)
    assert b.uncached_input == D("0.00056")  # 2000 * $0.28
    assert b.cache_read == D("0.000224")  # 8000 * $0.028
    assert b.output == D("0.00042")
    assert b.total == D("0.001204")


def test_cache_prices_fall_back_to_input() -> None:
    pricing = Pricing(input=D("1"), output=D("2"))
    usage = Usage(input_tokens=300, cache_read_tokens=100, cache_write_tokens=100)
    b = compute_cost(usage, pricing, price_version=V)
    assert b.cache_read == b.cache_write == b.uncached_input == D("0.0001")


def test_inconsistent_counts_are_clamped() -> None:
    pricing = Pricing(input=D("1"), output=D("2"), cached_input=D("0.5"), cache_write=D("3"))
    # cache counts larger than the input: never bill more prompt tokens than input_tokens
    b = compute_cost(
        Usage(
            input_tokens=100,
            cache_read_tokens=80,
            cache_write_tokens=50,
            output_tokens=10,
            reasoning_tokens=25,
        ),
        pricing,
        price_version=V,
    )
    assert b.uncached_input == 0
    assert b.cache_read == D(80) * D("0.5") / 10**6
    assert b.cache_write == D(20) * D(3) / 10**6
    assert b.output == 0 and b.reasoning == D(10) * D(2) / 10**6
    assert b.total == parts(b)
    negative = compute_cost(
        Usage(input_tokens=-5, output_tokens=-1, cache_read_tokens=-3), pricing, price_version=V
    )
    assert negative.total == 0 == parts(negative)


def test_exact_under_a_hostile_decimal_context() -> None:
    pricing = Pricing(input=D("0.123456789"), output=D("7.000000001"))
    usage = Usage(input_tokens=987_654_321_123, output_tokens=123_456_789_987)
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        b = compute_cost(usage, pricing, price_version=V)
    assert b.uncached_input * 10**6 == D(987_654_321_123) * D("0.123456789")
    assert b.total == parts(b)


def test_breakdown_is_frozen() -> None:
    b = compute_cost(Usage(input_tokens=1), Pricing(input=D(1), output=D(1)), price_version=V)
    with pytest.raises(AttributeError):
        b.total = D(0)  # type: ignore[misc]


# --- properties --------------------------------------------------------------------------------

tokens = st.integers(min_value=0, max_value=10**9)
prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    cache_read = draw(tokens)
    cache_write = draw(tokens)
    uncached = draw(tokens)
    reasoning = draw(tokens)
    output = reasoning + draw(tokens)
    return Usage(
        input_tokens=uncached + cache_read + cache_write,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=reasoning,
    )


@st.composite
def pricings(draw: st.DrawFn) -> Pricing:
    return Pricing(
        input=draw(prices),
        output=draw(prices),
        cached_input=draw(st.none() | prices),
        cache_write=draw(st.none() | prices),
    )


raw_usages = st.builds(
    Usage,
    input_tokens=st.integers(-10, 10**7),
    output_tokens=st.integers(-10, 10**7),
    cache_read_tokens=st.integers(-10, 10**7),
    cache_write_tokens=st.integers(-10, 10**7),
    reasoning_tokens=st.integers(-10, 10**7),
)


@given(usage=usages() | raw_usages, pricing=pricings())
def test_parts_sum_exactly_to_total(usage: Usage, pricing: Pricing) -> None:
    b = compute_cost(usage, pricing, price_version=V)
    assert b.total == parts(b)
    assert all(
        x >= 0 for x in (b.uncached_input, b.cache_read, b.cache_write, b.output, b.reasoning)
    )


@given(usage=usages(), pricing=pricings())
def test_matches_the_textbook_formula(usage: Usage, pricing: Pricing) -> None:
    b = compute_cost(usage, pricing, price_version=V)
    with decimal.localcontext() as ctx:
        ctx.prec = 100
        expected = (
            usage.uncached_input_tokens * pricing.input
            + usage.cache_read_tokens
            * (pricing.cached_input if pricing.cached_input is not None else pricing.input)
            + usage.cache_write_tokens
            * (pricing.cache_write if pricing.cache_write is not None else pricing.input)
            + usage.output_tokens * pricing.output
        ) / 10**6
    assert b.total == expected


@given(
    usage=usages(),
    pricing=pricings(),
    field=st.sampled_from(["input_tokens", "output_tokens"]),
    extra=st.integers(1, 10**6),
)
def test_cost_is_monotone_in_tokens(usage: Usage, pricing: Pricing, field: str, extra: int) -> None:
    more = usage.model_copy(update={field: getattr(usage, field) + extra})
    assert (
        compute_cost(more, pricing, price_version=V).total
        >= compute_cost(usage, pricing, price_version=V).total
    )


@given(usage=usages(), pricing=pricings())
def test_same_usage_same_cost(usage: Usage, pricing: Pricing) -> None:
    # a streamed response and a complete one end in equal Usage values: equal costs
    twin = Usage.model_validate(usage.model_dump())
    assert compute_cost(usage, pricing, price_version=V) == compute_cost(
        twin, pricing, price_version=V
    )


# --- unknown prices --------------------------------------------------------------------------


def test_cost_for_priced_model(catalog: Catalog) -> None:
    spec = catalog.get("gpt-4o")
    b = cost_for(Usage(input_tokens=10, output_tokens=10), spec, version=catalog.version)
    assert b is not None and b.total == D("0.000125") and b.price_version == "2026-11-01"


def test_unknown_price_warns_once_per_model(catalog: Catalog) -> None:
    registry = WarnOnce()
    unpriced = catalog.get("llama-3.3-70b")
    usage = Usage(input_tokens=5, output_tokens=5)

    def five_calls() -> list[CostBreakdown | None]:
        return [cost_for(usage, unpriced, version=V, warn_once=registry) for _ in range(5)]

    with pytest.warns(PricingWarning, match="'meta/llama-3.3-70b' has no price") as record:
        results = five_calls()
    assert results == [None] * 5
    assert len(record) == 1
    assert record[0].filename == __file__  # points at cost_for's caller

    def three_calls() -> list[CostBreakdown | None]:
        return [
            cost_for(usage, None, version=V, model="mystery-model", warn_once=registry)
            for _ in range(3)
        ]

    with pytest.warns(PricingWarning, match="'mystery-model' is not in the catalog") as record:
        results = three_calls()
    assert results == [None] * 3
    assert len(record) == 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # already warned: silent
        assert cost_for(usage, unpriced, version=V, warn_once=registry) is None

    # another registry (another client) warns again
    with pytest.warns(PricingWarning):
        cost_for(usage, unpriced, version=V, warn_once=WarnOnce())


def test_without_registry_every_call_warns() -> None:
    spec = ModelSpec(id="x", provider="vllm", context_window=10, max_output_tokens=5)
    with pytest.warns(PricingWarning) as record:
        results = [cost_for(Usage(), spec, version=V) for _ in range(2)]
    assert results == [None, None]
    assert len(record) == 2


def test_warn_once_registry() -> None:
    registry = WarnOnce()
    with pytest.warns(UserWarning, match="hello"):
        assert registry.warn("k", "hello", UserWarning)
    assert "k" in registry
    assert not registry.warn("k", "hello", UserWarning)
    registry.reset()
    assert "k" not in registry
    with pytest.warns(PricingWarning):
        assert registry.warn("k", "again")


@given(
    input_tokens=st.integers(-10, 10**9), output_tokens=st.integers(-10, 10**9), pricing=pricings()
)
def test_plain_answers_take_the_short_path_to_the_same_result(
    input_tokens: int, output_tokens: int, pricing: Pricing
) -> None:
    # No cache or reasoning tokens: compute_cost skips three of its five parts.
    b = compute_cost(
        Usage(input_tokens=input_tokens, output_tokens=output_tokens), pricing, price_version=V
    )
    with decimal.localcontext() as ctx:
        ctx.prec = 100
        expected = (
            max(0, input_tokens) * pricing.input + max(0, output_tokens) * pricing.output
        ) / 10**6
    assert b.total == expected == parts(b)
    assert b.cache_read == b.cache_write == b.reasoning == 0
