"""OpenAI parameters a wire format cannot express: one :class:`DroppedParameterWarning` naming
them, once per provider and parameter (the request is sent without them)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

__all__ = ["drop_params"]

_DROPPED: set[tuple[str, str]] = set()


def drop_params(provider: str, names: Iterable[str]) -> None:
    """Warn that OpenAI parameters were not sent: one warning naming them, once per provider
    and parameter."""
    from ..errors import DroppedParameterWarning

    new = [name for name in names if (provider, name) not in _DROPPED]
    if not new:
        return
    _DROPPED.update((provider, name) for name in new)
    listed = ", ".join(map(repr, new))
    warnings.warn(
        DroppedParameterWarning(
            f"{listed} {'has' if len(new) == 1 else 'have'} no equivalent on {provider}: not "
            f"sent to {provider} deployments (extra_body={{...}} sends a provider's own fields)"
        ),
        stacklevel=2,
    )
