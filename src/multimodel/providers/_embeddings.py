"""Embeddings helpers shared by the adapters: reading one vector from an embeddings answer, in
either of OpenAI's encodings (a JSON array of numbers, or base64 of little-endian float32s)."""

from __future__ import annotations

import sys
from array import array
from base64 import b64decode, b64encode
from binascii import Error as Base64Error
from collections.abc import Sequence
from typing import Any

__all__ = ["embedding_vector", "vector_base64"]


def embedding_vector(value: Any) -> list[float] | None:
    """A JSON array of numbers, or OpenAI's base64 string of little-endian float32s, as a list of
    floats (``None`` when it is anything else)."""
    if isinstance(value, str):
        return _from_base64(value)
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        return None
    return [float(x) for x in value]


def _from_base64(text: str) -> list[float] | None:
    # About ten times faster to decode than the same vector as JSON numbers, and a third of the
    # bytes (benchmarks/embeddings_base64.py): why OpenAI deployments are asked for it.
    try:
        raw = b64decode(text, validate=True)
    except (Base64Error, ValueError):
        return None
    if not raw or len(raw) % 4:
        return None
    values = array("f")
    values.frombytes(raw)
    if sys.byteorder != "little":  # pragma: no cover - the wire order is little-endian
        values.byteswap()
    return values.tolist()


def vector_base64(vector: Sequence[float]) -> str:
    """``vector`` as OpenAI's ``encoding_format="base64"`` gives it: little-endian float32s,
    base64-encoded (values are rounded to float32)."""
    values = array("f", vector)
    if sys.byteorder != "little":  # pragma: no cover
        values.byteswap()
    return b64encode(values.tobytes()).decode("ascii")
