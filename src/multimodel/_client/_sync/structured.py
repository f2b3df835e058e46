"""Generated from ``_async/structured.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/structured.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import InvalidRequestError, MultimodelError, StructuredOutputError
from ...types import ChatRequest, ChatResponse
from .._base import DEFAULT_DEADLINE_FACTOR, RequestInput
from ..structured import feedback, finish, for_call

if TYPE_CHECKING:
    from .client import Client

__all__ = ["query_structured"]


def query_structured(
    client: Client,
    prompt: RequestInput | ChatRequest,
    model: str | None,
    timeout: float | None,
    cache: bool | None,
    cache_ttl: float | None,
    policy: str | None,
    retries: int | None,
    params: Mapping[str, Any],
) -> ChatResponse:
    """One structured call: the routed call, then validation. An answer that does not validate
    is sent back with its errors (``retries`` times) to the deployment that gave it (another
    one, as usual, only if that one fails); then the model group's fallbacks are asked in
    turn, the same way; all within the deadline, then the last error is raised.

    The response cache holds only answers that validated (a repaired one included), under the
    caller's request: an invalid answer is never stored, so an identical call later does not
    start from it."""
    retries = client._structured_retries if retries is None else retries
    if retries < 0:
        raise InvalidRequestError(
            "structured_retries must be 0 or more", field="structured_retries"
        )
    clock = client._clock
    started = clock.monotonic()
    params, fmt, target = for_call(prompt, params)
    original, resolved = client._prepare(prompt, model, params, policy)
    limit = client._deadline
    if limit is None:
        limit = DEFAULT_DEADLINE_FACTOR * (timeout or client._timeout)
    store = client.cache
    hit = None if store is None else store.lookup(original, override=cache)
    if hit is not None:
        try:
            return client._from_cache(original, finish(hit, fmt, target), started)
        except StructuredOutputError:
            # An entry written by an older version or another writer: not served; ask afresh
            # and let the validated answer replace it.
            pass
    # The model group, then its fallbacks (the client's `fallbacks`), each asked again with
    # the errors fed back `retries` times; the deadline bounds the whole.
    chain = [original.model, *client._router.fallbacks.get(original.model, ())]
    invalid: StructuredOutputError | None = None  # the last answer that did not fit
    for position, group in enumerate(chain):
        request = original if position == 0 else original.model_copy(update={"model": group})
        repairs = retries
        pin: str | None = None  # the deployment whose answer is being repaired
        while True:
            # Each run gets what is left of the call's deadline, not a fresh one: the first
            # answer, its repairs and the fallbacks together end within it.
            spent = clock.monotonic() - started
            try:
                response = client._run(request, timeout, resolved, pin, left=limit - spent)
            except MultimodelError as exc:
                # A repair or fallback that failed (out of time, say): its own error, with the
                # answer that did not fit as its context.
                if invalid is not None and exc.__context__ is None:
                    exc.__context__ = invalid
                raise
            try:
                done = finish(response, fmt, target)
            except StructuredOutputError as exc:
                invalid = exc
                late = clock.monotonic() - started >= limit
                if repairs > 0 and not late:
                    repairs -= 1
                    request = feedback(request, exc)
                    pin = response.deployment
                    continue
                if late or position == len(chain) - 1:
                    raise
                break
            if store is not None:  # the raw answer: a hit is validated again on the way out
                store.store(original, response, ttl=cache_ttl, override=cache)
            return done
    raise AssertionError("unreachable")  # pragma: no cover
