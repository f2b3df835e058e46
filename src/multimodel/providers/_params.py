"""OpenAI parameters a wire format cannot express: one :class:`DroppedParameterWarning` naming
them, once per provider and parameter (the request is sent without them), or, for a client with
``unsupported_params="error"``, an :class:`InvalidRequestError` before anything is sent."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..types import ChatRequest
    from .base import Endpoint, ProviderAdapter

__all__ = ["drop_params", "refuse_unsupported"]

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


def refuse_unsupported(
    request: ChatRequest, reachable: Sequence[tuple[Endpoint, ProviderAdapter]]
) -> None:
    """Raise :class:`InvalidRequestError` when one of ``request``'s OpenAI parameters has no
    equivalent on a deployment the call could reach (``unsupported_params="error"``).

    Every reachable deployment is checked, not the one routing picks: the same request is
    refused or sent whatever the strategy chooses and whichever fallback a failure leads to.
    """
    from ..errors import InvalidRequestError

    params = request.openai_params or {}
    for endpoint, adapter in reachable:
        known = adapter.openai_equivalents
        missing = [name for name in params if known is not None and name not in known]
        missing += adapter.unsupported_fields(request, endpoint)
        if missing:
            listed = ", ".join(map(repr, missing))
            raise InvalidRequestError(
                f"{listed} {'has' if len(missing) == 1 else 'have'} no equivalent on "
                f"{endpoint.provider} (deployment {endpoint.name!r}, model group "
                f"{endpoint.model!r}), which this call may reach, and the client has "
                f'unsupported_params="error": remove {listed}, send the provider\'s own '
                f'field with extra_body, or use unsupported_params="drop"',
                field=missing[0],
            )
