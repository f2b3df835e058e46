"""The successful Outcome a plan builds positionally matches the keyword construction."""

from __future__ import annotations

from decimal import Decimal

import httpx

import multimodel as mm
from multimodel._core.trace import Send
from multimodel.tracking.outcome import Outcome
from multimodel.types import ChatRequest, Usage


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        self.now += 0.25
        return self.now

    def time(self) -> float:
        return 1_000.0


def test_a_plans_success_outcome_equals_the_keyword_construction() -> None:
    def handler(request: httpx.Request) -> httpx.Response:  # never sent: the plan is sans-I/O
        raise AssertionError(request)

    client = mm.Client(
        deployments=[
            mm.Deployment(model="gpt-4o-mini", provider="openai", api_key="sk-t", name="d")
        ],
        transport=httpx.MockTransport(handler),
        clock=_Clock(),
    )
    request = ChatRequest(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        user="u",
        tags=["t"],
        max_tokens=7,
    )
    plan = client._router.plan(request, timeout=5.0, stream=True)
    send = plan.next_action()
    assert isinstance(send, Send)
    usage = Usage(input_tokens=3, output_tokens=2)
    fast = plan.succeeded(
        send,
        usage=usage,
        ttft=0.1,
        status=200,
        response_model="m-1",
        finish_reason="stop",
        request_id="r1",
        response_id="a1",
    )
    breakdown = client._cost(send.endpoint, usage)
    assert breakdown is not None and breakdown.total > Decimal(0)
    slow = Outcome(
        deployment="d",
        model="gpt-4o-mini",
        provider="openai",
        ok=True,
        latency=0.25,
        started_at=1_000.0 - 0.25,
        status=200,
        ttft=0.1,
        usage=usage,
        cost=breakdown.total,
        stream=True,
        user="u",
        tags=("t",),
        response_model="m-1",
        finish_reason="stop",
        request_id="r1",
        attempt=1,
        cost_breakdown=breakdown,
        response_id="a1",
        requested_tokens=7,
        operation="chat",
    )
    assert fast == slow
    assert type(fast) is Outcome
    assert fast._asdict() == slow._asdict()  # every field by name, not only by position
    assert fast.error is None and fast.retry_after is None and fast.cached is False
    assert fast.sent_load is None
    client.close()
