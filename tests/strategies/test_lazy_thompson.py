"""``lazy_thompson`` draws only the models that can change a Thompson-sampled choice: whatever
the draws, its winner is the one scoring every group with every model drawn would give."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from multimodel.strategies._groups import lazy_thompson
from multimodel.strategies._util import SCORE_TIE

_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[float], list[int], float, list[float]]:
    models = draw(st.integers(min_value=1, max_value=5))
    groups = draw(st.integers(min_value=models, max_value=7))
    slots = list(range(models)) + draw(
        st.lists(st.integers(0, models - 1), min_size=groups - models, max_size=groups - models)
    )
    slots = draw(st.permutations(slots))
    # Rests near each other (ties and near-ties happen) or spread out.
    grid = draw(st.booleans())
    rest = st.sampled_from([0.1, 0.3, 0.5, 0.5 + SCORE_TIE / 4]) if grid else _unit
    rests = draw(st.lists(rest, min_size=groups, max_size=groups))
    f_qual = draw(st.sampled_from([0.0, 0.3, 0.8, 1.0]))
    values = draw(st.lists(_unit, min_size=models, max_size=models))
    return rests, slots, f_qual, values


def _full(rests: list[float], slots: list[int], f_qual: float, values: list[float]) -> list[int]:
    """The groups tied at the top when every model is drawn (the definition)."""
    top = max(values) or 1.0
    # f_qual * v / top, not (f_qual / top) * v: a subnormal top would overflow the quotient.
    scores = [r + f_qual * values[s] / top for r, s in zip(rests, slots, strict=True)]
    floor = max(scores) - SCORE_TIE
    return [g for g, score in enumerate(scores) if score >= floor]


@settings(max_examples=600, deadline=None)
@given(_cases())
@example(([0.0, 1.0], [0, 1], 0.3, [0.0, 5e-324]))  # a subnormal highest draw
@example(([0.0, 0.5, 0.25], [1, 2, 0], 0.3, [2.225073858507e-311, 0.0, 0.0]))  # and a 0 draw
def test_the_lazy_winner_is_the_winner_with_every_draw(
    case: tuple[list[float], list[int], float, list[float]],
) -> None:
    rests, slots, f_qual, values = case
    draws: list[float | None] = [None] * len(values)
    asked: list[int] = []

    def draw(s: int) -> float:
        asked.append(s)
        return values[s]

    winner = lazy_thompson(rests, slots, f_qual, draws, draw)
    assert len(asked) == len(set(asked))  # each model at most once
    assert all((d is None) == (s not in asked) for s, d in enumerate(draws))
    tied = _full(rests, slots, f_qual, values)
    if winner is None:
        assert sorted(asked) == list(range(len(values)))  # undecided only once all are drawn
    else:
        assert tied == [winner]  # decided: alone at the top whatever the undrawn models draw


def test_a_clear_leader_needs_one_draw() -> None:
    # A cheap model far ahead on cost: the dear ones cannot catch up even at the best draw.
    draws: list[float | None] = [None, None, None]
    winner = lazy_thompson([0.7, 0.1, 0.15], [0, 1, 2], 0.3, draws, lambda s: 0.9)
    assert winner == 0 and draws == [0.9, None, None]
