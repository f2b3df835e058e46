"""``intelligent``'s group scores (``PricedGroups.rests``: cost terms, then the additions in
C) are, bit for bit, the formula worked out term by term, whatever the prices, weights, token
counts and quality terms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from multimodel.strategies._groups import PricedGroups, Weights
from multimodel.strategies._speeds import Speeds

_price = st.floats(min_value=1e-9, max_value=1e-3, allow_nan=False)
_weight = st.sampled_from([0.0, 0.1, 0.3, 0.4, 1.0])
_term = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def fresh(
    groups: PricedGroups,
    weights: Weights,
    terms: list[float],
    tin: int,
    tout: int,
    qterms: list[float] | None,
) -> list[float]:
    """The scores as the formula gives them, one group at a time."""
    f_cost, _, _, f_avail = weights
    costs = [p_in * tin + p_out * tout for p_in, p_out in groups.prices]
    fc = f_cost * min(costs)
    if qterms is not None:
        return [
            fc / cost + f_avail + term + q
            for cost, term, q in zip(costs, terms, qterms, strict=True)
        ]
    if f_avail:
        return [fc / cost + f_avail + term for cost, term in zip(costs, terms, strict=True)]
    return [fc / cost + term for cost, term in zip(costs, terms, strict=True)]


@settings(max_examples=100, deadline=None)
@given(
    prices=st.lists(st.tuples(_price, _price), min_size=1, max_size=6),
    weights=st.tuples(_weight, _weight, _weight, _weight),
    counts=st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 500)), min_size=1, max_size=40),
    terms=st.lists(_term, min_size=6, max_size=6),
    qterms=st.one_of(st.none(), st.lists(_term, min_size=6, max_size=6)),
)
def test_group_scores_are_the_formula_bit_for_bit(
    prices: list[tuple[float, float]],
    weights: Weights,
    counts: list[tuple[int, int]],
    terms: list[float],
    qterms: list[float] | None,
) -> None:
    n = len(prices)
    terms = terms[:n]  # each group's performance term, and quality term (None: learned)
    qterms = None if qterms is None else qterms[:n]
    groups = PricedGroups(
        models=[f"m{g}" for g in range(n)],
        prices=prices,
        qualities=[50.0] * n,
        members=[[g] for g in range(n)],
        unique=[f"m{g}" for g in range(n)],
        slots=list(range(n)),
        group_of=list(range(n)),
    )
    for tin, tout in counts:
        speeds: Speeds = (0, [], [], [], [], 0.0, terms)
        got = groups.rests(weights, speeds, tin, tout, qterms)
        assert got == fresh(groups, weights, terms, tin, tout, qterms)
