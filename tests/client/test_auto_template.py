"""model="auto" plans built from the router's per-capability template equal the general path's."""

from __future__ import annotations

from typing import Any

import pytest

import multimodel as mm
from multimodel._core.dispatch import DispatchPlan
from multimodel.security.limits import InputLimits
from multimodel.testing.fake import FakeProvider

KEY = "sk-test-auto-template-0123456789"
IMAGE = {"type": "image", "url": "https://example.test/cat.png"}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def _client(strategy: dict[str, Any]) -> mm.Client:
    deployments = [
        mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY),
        mm.Deployment(model="deepseek-chat", provider="deepseek", api_key=KEY),
        mm.Deployment(model="gpt-4.1", provider="openai", api_key=KEY),
        mm.Deployment(model="text-embedding-3-small", provider="openai", api_key=KEY),
    ]
    limits = InputLimits(max_message_chars=10_000_000, max_request_bytes=64_000_000)
    return mm.Client(
        deployments=deployments,
        transport=FakeProvider(),
        limits=limits,
        strategies={"auto": strategy},
    )


def _state(plan: DispatchPlan) -> tuple[Any, ...]:
    return (
        plan.trace.to_dict(),
        list(plan.candidates),
        dict(plan._excluded),
        plan.strategy,
        plan._choose_scored,
    )


REQUESTS: list[tuple[Any, dict[str, Any]]] = [
    ("hi", {}),
    ([{"role": "user", "content": [{"type": "text", "text": "what?"}, IMAGE]}], {}),
    ("call f", {"tools": [TOOL]}),
    ("word " * 600_000, {"max_tokens": 100}),  # fits only gpt-4.1's window: no template
]


@pytest.mark.parametrize(
    "strategy",
    [
        {"name": "intelligent"},
        {"name": "intelligent", "min_quality": 80},  # the strategy's own exclusions, per request
        {"name": "adaptive"},
        {"name": "round_robin"},
    ],
)
@pytest.mark.parametrize("index", range(len(REQUESTS)))
def test_an_auto_plan_from_the_template_equals_the_general_one(
    strategy: dict[str, Any], index: int
) -> None:
    prompt, options = REQUESTS[index]
    fresh, warm = _client(strategy), _client(strategy)
    request = warm._build_request(prompt, "auto", options)
    general = fresh._router.plan(fresh._build_request(prompt, "auto", options), timeout=5.0)
    for _ in range(3):  # the first builds the capable set, the second the template
        again = warm._router.plan(request, timeout=5.0)
    fits = index < len(REQUESTS) - 1
    assert bool(warm._router.auto_templates) is fits
    assert _state(again)[:3] == _state(general)[:3]
    assert type(again.strategy) is type(general.strategy)
    assert again.strategy is warm._router.strategy("auto")
    assert again._choose_scored == getattr(again.strategy, "choose_scored", None)
    if strategy.get("min_quality") and fits:  # the strategy's exclusions reached the plan
        (template,) = warm._router.auto_templates.values()
        assert set(again._excluded) > set(template[7])
    fresh.close()
    warm.close()


def test_an_auto_fallback_entered_from_the_template_equals_the_general_one() -> None:
    def build() -> mm.Client:
        return mm.Client(
            deployments=[
                mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY),
                mm.Deployment(model="deepseek-chat", provider="deepseek", api_key=KEY),
            ],
            transport=FakeProvider(),
            fallbacks={"gpt-4o-mini": ["auto"]},
        )

    fresh, warm = build(), build()
    request = warm._build_request("hi", "gpt-4o-mini", {})
    general = fresh._router.plan(fresh._build_request("hi", "gpt-4o-mini", {}), timeout=5.0)
    assert general._advance()
    for _ in range(3):
        again = warm._router.plan(request, timeout=5.0)
        assert again._advance()
    assert warm._router.auto_templates
    assert _state(again)[:3] == _state(general)[:3]
    assert again.trace.models == ["gpt-4o-mini", "auto"]
    fresh.close()
    warm.close()
