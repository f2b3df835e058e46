"""Embeddings helpers shared by the adapters: reading one vector from an embeddings answer."""

from __future__ import annotations

from typing import Any

__all__ = ["embedding_vector"]


def embedding_vector(value: Any) -> list[float] | None:
    """A JSON array of numbers as a list of floats (``None`` when it is anything else)."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        return None
    return [float(x) for x in value]
