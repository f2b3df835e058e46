"""One scenario table, run on the sync client and on the async client (asyncio and trio).

Each scenario scripts the statuses two deployments of one model return, and states the
deployments attempted in order, the back-offs waited and the final result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import multimodel as mm
from multimodel import errors
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-scenario-0123456789"


def deployments() -> list[mm.Deployment]:
    return [
        mm.Deployment(
            model="m", provider="openai", name="a", base_url="https://a.test/v1", api_key=KEY
        ),
        mm.Deployment(
            model="m", provider="openai", name="b", base_url="https://b.test/v1", api_key=KEY
        ),
    ]


@dataclass
class Scenario:
    name: str
    script: dict[str, list[FakeReply | int]]
    order: list[str]
    outcome: type[BaseException] | None
    sleeps: int = 0
    max_retries: int = 2
    sleep_values: list[float] = field(default_factory=list)


RA = {"retry-after-ms": "10"}
SCENARIOS = [
    Scenario("ok first try", {}, ["a"], None),
    Scenario("500 then other deployment", {"a": [500]}, ["a", "b"], None),
    Scenario(
        "429 on both then back-off honours Retry-After",
        {"a": [FakeReply(429, headers=RA)], "b": [FakeReply(429, headers=RA)]},
        ["a", "b", "a"],
        None,
        sleeps=1,
        sleep_values=[0.01],
    ),
    Scenario("400 is not retried", {"a": [400]}, ["a"], errors.BadRequestError),
    Scenario(
        "context length is not retried",
        {"a": [FakeReply(400, error_code="context_length_exceeded")]},
        ["a"],
        errors.ContextLengthExceeded,
    ),
    Scenario("401 excludes the deployment, the other serves", {"a": [401]}, ["a", "b"], None),
    Scenario(
        "insufficient_quota is never retried on the same deployment",
        {
            "a": [FakeReply(429, error_code="insufficient_quota")] * 3,
            "b": [FakeReply(429, error_code="insufficient_quota")] * 3,
        },
        ["a", "b"],
        errors.AllAttemptsFailed,
    ),
    Scenario(
        "every attempt fails",
        {"a": [503] * 3, "b": [503] * 3},
        ["a", "b", "a"],
        errors.AllAttemptsFailed,
        sleeps=1,
    ),
    Scenario("no retries", {"a": [500]}, ["a"], errors.ServerError, max_retries=0),
]


def make_client(fake: FakeProvider, scenario: Scenario, cls: type, **kw: object) -> object:
    return cls(
        **kw,
        deployments=deployments(),
        transport=fake,
        strategy="round_robin",
        max_retries=scenario.max_retries,
        retry=mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.002),
    )


def scripted(scenario: Scenario) -> FakeProvider:
    fake = FakeProvider()
    for host, replies in scenario.script.items():
        fake.script(f"{host}.test", replies)
    return fake


def check(fake: FakeProvider, scenario: Scenario, result: object, trace: object) -> None:
    assert [h.split(".")[0] for h in fake.hosts()] == scenario.order
    assert trace is not None
    assert trace.deployments() == scenario.order  # type: ignore[attr-defined]
    assert len(trace.sleeps) == scenario.sleeps  # type: ignore[attr-defined]
    if scenario.sleep_values:
        assert trace.sleeps == pytest.approx(scenario.sleep_values)  # type: ignore[attr-defined]
    if scenario.outcome is None:
        assert isinstance(result, mm.ChatResponse)
        assert result.deployment == scenario.order[-1]
        assert result.text == "ok"
    else:
        assert isinstance(result, scenario.outcome)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_sync(scenario: Scenario) -> None:
    fake = scripted(scenario)
    with make_client(fake, scenario, mm.Client) as client:  # type: ignore[attr-defined]
        try:
            result: object = client.query("hi", model="m")
            trace = result.trace  # type: ignore[attr-defined]
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(fake, scenario, result, trace)


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_async(scenario: Scenario) -> None:
    fake = scripted(scenario)
    async with make_client(fake, scenario, mm.AsyncClient) as client:  # type: ignore[attr-defined]
        try:
            result: object = await client.query("hi", model="m")
            trace = result.trace  # type: ignore[attr-defined]
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(fake, scenario, result, trace)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_sync_stream(scenario: Scenario) -> None:
    fake = scripted(scenario)
    with make_client(fake, scenario, mm.Client) as client:  # type: ignore[attr-defined]
        try:
            with client.stream("hi", model="m") as stream:
                text = "".join(c.text for c in stream)
            result: object = stream.response
            trace = stream.trace
            assert text == "ok"
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(fake, scenario, result, trace)


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_async_stream(scenario: Scenario) -> None:
    fake = scripted(scenario)
    async with make_client(fake, scenario, mm.AsyncClient) as client:  # type: ignore[attr-defined]
        try:
            async with client.stream("hi", model="m") as stream:
                text = "".join([c.text async for c in stream])
            result: object = stream.response
            trace = stream.trace
            assert text == "ok"
        except mm.MultimodelError as exc:
            result, trace = exc, exc.trace
    check(fake, scenario, result, trace)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_bare_dispatch_plan(scenario: Scenario) -> None:
    """The same table against the sans-I/O plan: no HTTP, outcomes fed by hand, sleeps not slept."""
    import httpx

    from multimodel._core.dispatch import Sleep
    from multimodel.providers.openai import OpenAIAdapter

    clock = mm.ManualClock()
    client = make_client(FakeProvider(), scenario, mm.Client, clock=clock)
    router = client._router  # type: ignore[attr-defined]
    request = client._build_request("hi", "m", {})  # type: ignore[attr-defined]
    plan = router.plan(request, timeout=5.0)
    scripts = {host: list(replies) for host, replies in scenario.script.items()}
    adapter = OpenAIAdapter()
    order: list[str] = []
    result: object
    while True:
        try:
            action = plan.next_action()
        except mm.MultimodelError as exc:
            result = exc
            break
        if isinstance(action, Sleep):
            clock.advance(action.seconds)  # the driver would sleep; the plan only decides
            continue
        name = action.endpoint.name
        order.append(name)
        queue = scripts.get(name, [])
        reply = queue.pop(0) if queue else FakeReply()
        reply = reply if isinstance(reply, FakeReply) else FakeReply(status=reply)
        if reply.status >= 400:
            body = {
                "error": {
                    "message": "scripted",
                    "type": "x",
                    "param": None,
                    "code": reply.error_code,
                }
            }
            response = httpx.Response(reply.status, json=body, headers=reply.headers)
            plan.failed(action, adapter.map_error(response, action.endpoint))
            continue
        plan.succeeded(action, usage=mm.Usage(input_tokens=1, output_tokens=1))
        result = action.endpoint.name
        break
    assert order == scenario.order
    assert len(plan.trace.sleeps) == scenario.sleeps
    if scenario.outcome is None:
        assert result == scenario.order[-1]
    else:
        assert isinstance(result, scenario.outcome)


def test_a_refusal_records_the_load_it_was_sent_at() -> None:
    """A 429 with Retry-After tells the tracker how many attempts were in flight when the
    refused one was sent (what ``adaptive`` learns as the deployment's ceiling), whatever has
    finished since."""
    import httpx

    from multimodel._core.dispatch import Send
    from multimodel.providers.openai import OpenAIAdapter

    clock = mm.ManualClock()
    dep = mm.Deployment(
        model="gpt-4o-mini", provider="openai", api_key="sk-test", base_url="http://x.test/v1"
    )
    client = mm.Client(deployments=[dep], clock=clock)
    router = client._router
    request = client._build_request("hi", "gpt-4o-mini", {})
    plans = [router.plan(request, timeout=5.0) for _ in range(3)]
    sends: list[Send] = []
    for plan in plans:
        action = plan.next_action()
        assert isinstance(action, Send)
        sends.append(action)
    assert [s.load for s in sends] == [0, 1, 2]
    plans[0].succeeded(sends[0], usage=mm.Usage(input_tokens=1, output_tokens=1))
    body = {"error": {"message": "slow down", "type": "rate_limit", "code": None}}
    refusal = httpx.Response(429, json=body, headers={"retry-after": "3"})
    plans[2].failed(sends[2], OpenAIAdapter().map_error(refusal, sends[2].endpoint), retry=False)
    cell = router.tracker.get(sends[2].endpoint.name)
    assert cell.penalty_until > clock.monotonic()
    assert cell.refused_load == 2  # sent with two in flight; one in flight now
    assert cell.in_flight == 1
    client.close()
