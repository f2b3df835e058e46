"""The positional fast constructor of a successful Outcome matches the keyword one."""

from __future__ import annotations

from decimal import Decimal

from multimodel.tracking.outcome import Outcome, success_outcome
from multimodel.types import Usage


def test_success_outcome_equals_the_keyword_construction() -> None:
    usage = Usage(input_tokens=3, output_tokens=2)
    fast = success_outcome(
        "d",
        "m",
        "p",
        0.25,
        100.0,
        200,
        0.1,
        usage,
        Decimal("0.5"),
        True,
        "u",
        ("t",),
        "m-1",
        "stop",
        "r1",
        2,
        "breakdown",
    )
    slow = Outcome(
        deployment="d",
        model="m",
        provider="p",
        ok=True,
        latency=0.25,
        started_at=100.0,
        status=200,
        ttft=0.1,
        usage=usage,
        cost=Decimal("0.5"),
        stream=True,
        user="u",
        tags=("t",),
        response_model="m-1",
        finish_reason="stop",
        request_id="r1",
        attempt=2,
        cost_breakdown="breakdown",
    )
    assert fast == slow
    assert type(fast) is Outcome
    assert fast._asdict() == slow._asdict()  # every field by name, not only by position
    assert fast.error is None and fast.retry_after is None and fast.cached is False
