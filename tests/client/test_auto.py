"""model="auto": the client picks among configured models whose capabilities and context fit."""

from __future__ import annotations

from typing import Any

import pytest

import multimodel as mm
from multimodel.security.limits import InputLimits
from multimodel.testing.fake import FakeProvider

KEY = "sk-test-auto-0123456789"


def client(**kw: Any) -> tuple[mm.Client, FakeProvider]:
    fake = FakeProvider()
    deployments = [
        mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY),
        mm.Deployment(model="deepseek-chat", provider="deepseek", api_key=KEY),
        mm.Deployment(model="gpt-4.1", provider="openai", api_key=KEY),
    ]
    # Long prompts here exceed the default 1M-character message limit on purpose.
    limits = InputLimits(max_message_chars=10_000_000, max_request_bytes=64_000_000)
    return mm.Client(deployments=deployments, transport=fake, limits=limits, **kw), fake


def test_auto_excludes_models_without_a_needed_capability() -> None:
    c, fake = client()
    image = {"type": "image", "url": "https://example.test/cat.png"}
    for _ in range(10):
        r = c.query(
            [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}],
            model="auto",
        )
        assert r.deployment in {"openai/gpt-4o-mini", "openai/gpt-4.1"}
        assert "deepseek/deepseek-chat" in r.trace.excluded
        assert "vision" in r.trace.excluded["deepseek/deepseek-chat"]
    assert "api.deepseek.com" not in fake.hosts()


def test_auto_excludes_models_whose_context_is_too_small() -> None:
    c, _ = client()
    long_prompt = "word " * 600_000  # ~750k tokens: only gpt-4.1's 1M window fits
    r = c.query(long_prompt, model="auto", max_tokens=100)
    assert r.deployment == "openai/gpt-4.1"
    assert "context window" in r.trace.excluded["openai/gpt-4o-mini"]


def test_auto_weighs_cost_with_the_intelligent_strategy() -> None:
    c, _ = client(
        strategies={
            "auto": {
                "name": "intelligent",
                "factors": {"cost": 1.0, "performance": 0.0, "quality": 0.0},
            }
        }
    )
    # Output-heavy: DeepSeek's output price ($0.42/M) beats gpt-4o-mini's ($0.60/M).
    assert c.query("hi", model="auto").deployment == "deepseek/deepseek-chat"
    # Input-heavy: gpt-4o-mini's input price ($0.15/M) beats DeepSeek's ($0.28/M).
    r = c.query("word " * 10_000, model="auto", max_tokens=10)
    assert r.deployment == "openai/gpt-4o-mini"


def test_auto_when_nothing_fits() -> None:
    c, fake = client()
    with pytest.raises(mm.NoDeploymentAvailable) as info:
        c.query("word " * 1_000_000, model="auto")
    assert len(info.value.exclusions) == 3
    assert fake.requests == []


def test_unknown_model_suggests_auto() -> None:
    c, _ = client()
    with pytest.raises(mm.UnknownModelError, match="auto"):
        c.query("hi", model="autoo")


def test_trace_carries_strategy_scores() -> None:
    c, _ = client()
    r = c.query("hi", model="auto")
    assert set(r.trace.scores) == {"openai/gpt-4o-mini", "deepseek/deepseek-chat", "openai/gpt-4.1"}
    assert max(r.trace.scores, key=r.trace.scores.__getitem__) == r.deployment
