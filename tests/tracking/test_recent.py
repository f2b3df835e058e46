"""The bounded map of recent keys behind feedback ids and shared scores (two generations)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multimodel.tracking._recent import Recent


@given(
    size=st.integers(1, 8),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 20), st.integers()), max_size=200),
)
def test_the_last_size_keys_are_kept_and_at_most_twice_as_many(
    size: int, ops: list[tuple[bool, int, int]]
) -> None:
    recent: Recent[int, int] = Recent(size)
    model: dict[int, int] = {}  # every key put and not popped since, with its last value
    puts: dict[int, None] = {}  # every key put, in order of its last put (pops ignored)
    for put, key, value in ops:
        if put:
            recent.put(key, value)
            model[key] = value
            puts.pop(key, None)
            puts[key] = None
        else:
            was = key in recent
            assert recent.pop(key) == was
            model.pop(key, None)
            assert key not in recent
        assert len(recent) <= 2 * size
        # The last `size` distinct keys put are there with their last value, unless popped.
        for k in list(puts)[-size:]:
            if k in model:
                assert k in recent
                assert recent.get(k) == model[k]
        for k in range(21):
            if k in recent:
                assert recent.get(k) == model[k]  # nothing popped comes back, no stale value


def test_keys_older_than_two_generations_are_forgotten() -> None:
    recent: Recent[str, int] = Recent(3)
    for i in range(10):
        recent.put(f"k{i}", i)
    assert [recent.get(f"k{i}") for i in range(6)] == [None] * 6
    assert [recent.get(f"k{i}") for i in range(6, 10)] == [6, 7, 8, 9]
    assert len(recent) == 4


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size"):
        Recent(0)
