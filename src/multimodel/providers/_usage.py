"""Token usage as adapters read it from provider bodies: counts, and the shared :class:`Usage`
objects built from them (``NO_USAGE`` when a provider sent none)."""

from __future__ import annotations

import functools
from typing import Any

from ..types import Usage
from ..types._response import _USAGE_SET, _trusted, _trusted_works

__all__ = ["NO_USAGE", "token_count", "usage_of"]


def token_count(value: Any) -> int:
    """A token count from a provider body: a non-negative int, else 0 (``null``, strings...)."""
    return value if type(value) is int and value >= 0 else 0


# Constructed, not validated (the values are the defaults and one literal): validating would
# build Usage's schema, and with it pydantic's schema machinery, when multimodel is imported.
NO_USAGE = Usage.model_construct(estimated=True)
"""What an adapter returns when the provider sent no usage: the client replaces it with an
estimate (prompt and answer at about four characters a token), marked ``estimated``."""


@functools.lru_cache(maxsize=1024)
def usage_of(
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Usage:
    """The :class:`Usage` with these counts; equal counts share one (frozen) object.

    Validating a ``Usage`` costs about 11 k instructions, a cache hit a tenth of that, and
    answers to similar prompts report the same few counts over and over. Exact ``int`` counts
    (what :func:`token_count` gives) are set without validation, which gives the same object and
    leaves ``Usage``'s schema unbuilt until something validates or dumps one.
    """
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "reasoning_tokens": reasoning_tokens,
        "estimated": False,
    }
    if (
        type(input_tokens) is int
        and type(output_tokens) is int
        and type(cache_read_tokens) is int
        and type(cache_write_tokens) is int
        and type(reasoning_tokens) is int
        and _trusted_works()
    ):
        return _trusted(Usage, counts, _USAGE_SET)
    return Usage(**counts)
