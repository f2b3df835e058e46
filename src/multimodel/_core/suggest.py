"""Closest valid names for a misspelled one (the "did you mean …?" in error messages).

``difflib`` is imported on the first misspelling, not at import: it costs about 1 ms at
startup, and a correct configuration never needs it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["close_matches"]


def close_matches(name: str, valid: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` names of ``valid`` that look like ``name``, best first."""
    import difflib

    return difflib.get_close_matches(name, list(valid), n=n, cutoff=cutoff)
