"""Generated from ``_async/admission.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/admission.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..._core.dispatch import DispatchPlan, Send
    from ...resilience.shared import RedisState

__all__ = ["admitted"]


def admitted(plan: DispatchPlan, shared: RedisState, send: Send) -> bool:
    """Whether the shared state admits ``send`` (one Redis round trip); a refusal is reported
    to ``plan``, and the driver asks it for its next action.

    A failure or a cancellation while asking cancels the attempt on ``plan``, and is re-raised.
    """
    shared.listen()  # the fleet's status changes are pushed from the first request on
    try:
        refusal = shared.admit(send)
    except BaseException:
        plan.cancelled(send)
        raise
    if refusal is None:
        return True
    plan.refused(send, refusal)
    return False
