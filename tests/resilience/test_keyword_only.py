"""Policy objects take keyword arguments only, so adding a field never shifts a caller's values."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import multimodel as mm

POLICIES: list[tuple[type, dict[str, Any]]] = [
    (mm.RetryPolicy, {}),
    (mm.CircuitPolicy, {}),
    (mm.HedgePolicy, {}),
    (mm.RetryBudget, {}),
    (mm.Budget, {"name": "daily", "limit": Decimal(1)}),
    (mm.CachePolicy, {}),
    (mm.InputLimits, {}),
]


@pytest.mark.parametrize(("cls", "kwargs"), POLICIES, ids=lambda x: getattr(x, "__name__", ""))
def test_keyword_only(cls: type, kwargs: dict[str, Any]) -> None:
    cls(**kwargs)
    with pytest.raises(TypeError, match="positional"):
        cls(1, **kwargs)
