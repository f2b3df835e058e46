"""Client-side access policies: model/provider rules, cost caps, token caps, role resolution."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from multimodel.catalog.models import ModelSpec, Pricing
from multimodel.errors import ConfigError, InvalidRequestError, PolicyViolation
from multimodel.providers.base import Endpoint
from multimodel.security import (
    Policy,
    PolicyResult,
    PolicySet,
    check,
    enforce_request,
    estimated_cost,
    filter_candidates,
    violation,
)
from multimodel.types import ChatRequest, Message


def ep(
    name: str,
    model: str,
    provider: str = "openai",
    *,
    wire: str | None = None,
    price: tuple[str, str] | None = ("1", "2"),
    aliases: tuple[str, ...] = (),
    spec: bool = True,
) -> Endpoint:
    model_spec = (
        ModelSpec(
            id=wire or model,
            provider=provider,
            aliases=aliases,
            context_window=128_000,
            max_output_tokens=16_000,
            pricing=None if price is None else Pricing(input=price[0], output=price[1]),
        )
        if spec
        else None
    )
    return Endpoint(
        name=name,
        model=model,
        wire_model=wire or model,
        provider=provider,
        base_url="https://x.test/v1",
        spec=model_spec,
    )


def req(
    max_tokens: int | None = None, *, model: str = "auto", user: str | None = None
) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[Message(role="user", content="hello there")],
        max_tokens=max_tokens,
        user=user,
    )


GPT4O = ep("gpt4o", "gpt-4o", price=("2.50", "10"))
MINI = ep("mini", "gpt-4o-mini", price=("0.15", "0.60"))
GPT4 = ep("gpt4", "gpt-4", price=("30", "60"))
SONNET = ep("sonnet", "claude-3.5-sonnet", "anthropic", price=("3", "15"))
ALL = [GPT4O, MINI, GPT4, SONNET]


def run(
    policy: Policy | None,
    candidates: Sequence[Endpoint] = ALL,
    request: ChatRequest | None = None,
    **kw: Any,
) -> PolicyResult:
    kw.setdefault("input_tokens", 1_000)
    kw.setdefault("output_tokens", 500)
    return check(policy, request or req(), candidates, **kw)


# --- the Policy model ----------------------------------------------------------------------


def test_policy_is_frozen_and_forbids_unknown_fields() -> None:
    p = Policy(name="p")
    with pytest.raises(ValidationError):
        p.name = "q"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="allowed_model"):
        Policy(name="p", allowed_model={"x"})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="not one string"):
        Policy(name="p", allowed_models="gpt-4o*")
    with pytest.raises(ValidationError):
        Policy(name="p", denied_models={" "})
    with pytest.raises(ValidationError):
        Policy(name="p", max_tokens=0)
    with pytest.raises(ValidationError):
        Policy(name="p", on_max_tokens="truncate")
    with pytest.raises(ValidationError):
        Policy(name="p", max_cost_per_request="-1")


def test_policy_defaults_and_coercion() -> None:
    p = Policy(name="p", allowed_models=["a*", "b"], max_cost_per_request=0.01)
    assert p.allowed_models == frozenset({"a*", "b"})
    assert p.max_cost_per_request == Decimal("0.01")
    assert (p.allowed_providers, p.denied_models, p.log_prompts) == (None, frozenset(), False)
    assert p.on_max_tokens == "reject"


# --- models and providers ------------------------------------------------------------------


def test_no_rules_allows_everything() -> None:
    result = run(Policy(name="open"))
    assert isinstance(result, PolicyResult)
    assert result.allowed == ALL and result.exclusions == {}


def test_allowed_models_with_patterns() -> None:
    allowed, excluded, _ = run(Policy(name="p", allowed_models={"gpt-4o*"}))
    assert allowed == [GPT4O, MINI]
    assert set(excluded) == {"gpt4", "sonnet"}
    assert excluded["gpt4"] == "allowed_models: model 'gpt-4' matches none of {'gpt-4o*'}"


def test_denied_models_win_over_allowed() -> None:
    policy = Policy(name="p", allowed_models={"gpt-4o*"}, denied_models={"*mini"})
    allowed, excluded, _ = run(policy)
    assert allowed == [GPT4O]
    assert excluded["mini"] == "denied_models: model 'gpt-4o-mini' matches denied pattern '*mini'"


def test_patterns_are_case_insensitive_and_match_every_name() -> None:
    assert run(Policy(name="p", allowed_models={"GPT-4O"}))[0] == [GPT4O]
    aliased = ep("smart", "smart", wire="gpt-4o-2024-08-06", aliases=("gpt-4o-latest",))
    # denied through the catalog alias, though the group name is innocuous
    _, excluded, _ = run(Policy(name="p", denied_models={"gpt-4o-latest"}), [aliased, MINI])
    assert "smart" in excluded
    # allowed through the wire model id
    assert run(Policy(name="p", allowed_models={"gpt-4o-2024*"}), [aliased])[0] == [aliased]
    # endpoints without a catalog entry are matched on model and wire model
    bare = ep("bare", "local", wire="llama3", spec=False)
    assert run(Policy(name="p", allowed_models={"llama*"}), [bare])[0] == [bare]


def test_allowed_and_denied_providers() -> None:
    allowed, excluded, _ = run(Policy(name="p", allowed_providers={"Anthropic"}))
    assert allowed == [SONNET]
    assert excluded["mini"] == "allowed_providers: provider 'openai' is not in {'Anthropic'}"
    allowed, excluded, _ = run(Policy(name="p", denied_providers={"anthropic"}))
    assert allowed == [GPT4O, MINI, GPT4]
    assert excluded == {"sonnet": "denied_providers: provider 'anthropic' is denied"}


# --- cost ----------------------------------------------------------------------------------


def test_estimated_cost_is_exact_and_matches_the_intelligent_strategy() -> None:
    from multimodel.strategies.base import RouteContext
    from multimodel.strategies.intelligent import estimated_cost as float_cost

    # 1000 * 2.50 / 1e6 + 500 * 10 / 1e6
    assert estimated_cost(GPT4O, 1_000, 500) == Decimal("0.0075")
    assert estimated_cost(ep("x", "x", price=None), 1, 1) is None
    ctx = RouteContext(input_tokens=1_000, output_tokens=500)
    assert float_cost(GPT4O, ctx) == pytest.approx(float(estimated_cost(GPT4O, 1_000, 500) or 0))


def test_cost_cap_excludes_expensive_deployments() -> None:
    policy = Policy(name="budget", max_cost_per_request=Decimal("0.005"))
    allowed, excluded, _ = run(policy)
    assert allowed == [MINI]  # 0.00045
    assert set(excluded) == {"gpt4o", "gpt4", "sonnet"}
    assert excluded["gpt4o"] == (
        "max_cost_per_request: estimated cost $0.007500 exceeds $0.005 "
        "(~1000 input + 500 output tokens)"
    )


def test_cost_cap_and_unknown_prices() -> None:
    unpriced = ep("local", "llama3", "ollama", price=None)
    uncatalogued = ep("bare", "mystery", spec=False)
    policy = Policy(name="budget", max_cost_per_request="0.01")
    allowed, excluded, _ = run(policy, [unpriced, uncatalogued, MINI])
    assert allowed == [MINI]
    assert "price unknown" in excluded["local"] and "price unknown" in excluded["bare"]
    lenient = Policy(name="budget", max_cost_per_request="0.01", allow_unpriced=True)
    assert run(lenient, [unpriced, uncatalogued, MINI])[0] == [unpriced, uncatalogued, MINI]
    # without a cost cap, unknown prices are irrelevant
    assert run(Policy(name="p"), [unpriced])[0] == [unpriced]


def test_cost_uses_the_clamped_max_tokens_as_output_bound() -> None:
    policy = Policy(name="p", max_cost_per_request="0.005", max_tokens=100, on_max_tokens="clamp")
    # 1000 in * 2.5 + 100 out * 10 = 0.0035 <= 0.005; with 10,000 output tokens it would be 0.1025
    allowed, _, request = run(policy, [GPT4O], req(10_000), output_tokens=10_000)
    assert allowed == [GPT4O] and request.max_tokens == 100


def test_token_estimates_default_from_the_request() -> None:
    policy = Policy(name="p", max_cost_per_request="0.000001")
    with pytest.raises(PolicyViolation):
        check(policy, req(), [GPT4O])
    generous = Policy(name="p", max_cost_per_request="1")
    assert check(generous, req(), [GPT4O]).allowed == [GPT4O]


# --- hard rules ----------------------------------------------------------------------------


def test_max_tokens_reject_over_the_cap() -> None:
    policy = Policy(name="interns", max_tokens=500)
    with pytest.raises(PolicyViolation) as info:
        run(policy, request=req(1_000))
    msg = str(info.value)
    assert "'interns'" in msg and "max_tokens" in msg and "1000" in msg
    assert "max_tokens <= 500" in msg  # the fix


def test_max_tokens_reject_when_missing() -> None:
    with pytest.raises(PolicyViolation, match=r"sets no max_tokens.*max_tokens <= 500"):
        run(Policy(name="p", max_tokens=500), request=req(None))


def test_max_tokens_clamp_returns_a_copy() -> None:
    policy = Policy(name="p", max_tokens=500, on_max_tokens="clamp")
    for asked in (None, 1_000):
        original = req(asked)
        before = original.model_dump()
        _, _, request = run(policy, request=original)
        assert request.max_tokens == 500
        assert request is not original and original.model_dump() == before
        assert request.model_dump(exclude={"max_tokens"}) == original.model_dump(
            exclude={"max_tokens"}
        )


def test_max_tokens_within_the_cap_passes_the_same_request() -> None:
    original = req(200)
    for mode in ("clamp", "reject"):
        result = run(Policy(name="p", max_tokens=500, on_max_tokens=mode), request=original)
        assert result.request is original


def test_max_input_tokens() -> None:
    policy = Policy(name="short", max_input_tokens=1_000)
    assert run(policy, input_tokens=1_000).allowed == ALL
    with pytest.raises(PolicyViolation) as info:
        run(policy, input_tokens=1_001)
    msg = str(info.value)
    assert "'short'" in msg and "max_input_tokens" in msg and "1,001" in msg
    assert "shorten the prompt" in msg


def test_hard_rules_are_checked_even_without_candidates() -> None:
    with pytest.raises(PolicyViolation):
        check(Policy(name="p", max_input_tokens=1), req(), [], input_tokens=5)


# --- nothing allowed -----------------------------------------------------------------------


def test_nothing_allowed_raises_naming_policy_rules_reasons_and_fix() -> None:
    policy = Policy(name="locked", allowed_models={"o1*"}, denied_providers={"anthropic"})
    with pytest.raises(PolicyViolation) as info:
        run(policy, request=req(model="gpt-4o"))
    msg = str(info.value)
    assert msg.startswith("policy 'locked' forbids this request: rule allowed_models")
    assert "model 'gpt-4o'" in msg and "none of the 4 deployment(s)" in msg
    assert "gpt4o: allowed_models: model 'gpt-4o' matches none of {'o1*'}" in msg
    assert "To fix: ask for a model matching allowed_models" in msg


def test_nothing_allowed_by_cost_says_how_to_fix() -> None:
    with pytest.raises(PolicyViolation, match=r"rule max_cost_per_request.*cheaper model"):
        run(Policy(name="p", max_cost_per_request="0.0000001"))


def test_empty_candidates_and_no_policy() -> None:
    assert run(Policy(name="p", allowed_models={"x"}), []) == ([], {}, req())
    original = req()
    result = check(None, original, ALL)
    assert result.allowed == ALL and result.allowed is not ALL and result.request is original


def test_nothing_is_mutated() -> None:
    candidates = list(ALL)
    original = req(1_000)
    dumped = original.model_dump()
    policy = Policy(name="p", allowed_models={"gpt*"}, max_tokens=10, on_max_tokens="clamp")
    policy_before = policy.model_dump()
    allowed, _, _ = check(policy, original, candidates, input_tokens=5)
    assert candidates == ALL and allowed is not candidates
    assert original.model_dump() == dumped and original.max_tokens == 1_000
    assert policy.model_dump() == policy_before
    allowed.clear()
    assert candidates == ALL


# --- the pieces, for a dispatch step with fallback groups ---------------------------------


def test_enforce_request_alone() -> None:
    original = req(1_000)
    assert enforce_request(None, original) is original
    assert enforce_request(Policy(name="p"), original) is original
    clamped = enforce_request(Policy(name="p", max_tokens=10, on_max_tokens="clamp"), original)
    assert clamped.max_tokens == 10 and original.max_tokens == 1_000
    with pytest.raises(PolicyViolation, match="max_input_tokens"):
        enforce_request(Policy(name="p", max_input_tokens=2), original)  # estimated
    enforce_request(Policy(name="p", max_input_tokens=2), original, input_tokens=2)


def test_filter_candidates_never_raises() -> None:
    policy = Policy(name="p", allowed_models={"nothing"})
    allowed, excluded = filter_candidates(policy, ALL, input_tokens=1, output_tokens=1)
    assert allowed == [] and list(excluded) == ["gpt4o", "mini", "gpt4", "sonnet"]
    assert filter_candidates(None, ALL, input_tokens=1, output_tokens=1) == (ALL, {})


def test_violation_merges_groups_and_foreign_reasons() -> None:
    policy = Policy(name="p", allowed_models={"o1*"}, max_cost_per_request="0.001")
    _, first = filter_candidates(policy, [GPT4O], input_tokens=10, output_tokens=10)
    o1 = ep("o1", "o1", price=("15", "60"))
    _, second = filter_candidates(policy, [o1], input_tokens=1_000, output_tokens=1_000)
    error = violation(policy, "gpt-4o", {**first, **second, "other": "circuit open"})
    assert isinstance(error, PolicyViolation)
    msg = str(error)
    assert "rule allowed_models, max_cost_per_request:" in msg
    assert "none of the 3 deployment(s)" in msg and "other: circuit open" in msg
    assert "ask for a model matching allowed_models; lower max_tokens" in msg
    assert "To fix: change the policy" in str(violation(policy, "m", {"x": "circuit open"}))


# --- PolicySet -----------------------------------------------------------------------------


@pytest.fixture
def policies() -> PolicySet:
    return PolicySet(
        {
            "free": Policy(name="free", allowed_models={"gpt-4o-mini"}, max_tokens=100),
            "pro": Policy(name="pro", log_prompts=True),
            "admin": Policy(name="admin"),
        },
        default="free",
        roles={"alice": "pro", "root": "admin"},
    )


def test_role_resolution(policies: PolicySet) -> None:
    assert policies.resolve("alice").name == "pro"
    assert policies.resolve("root").name == "admin"
    assert policies.resolve("bob").name == "free"
    assert policies.resolve(None).name == "free"
    assert policies.resolve("bob", policy="admin").name == "admin"  # explicit wins
    assert policies.resolve("alice", policy="free").name == "free"
    assert policies.resolve("alice").log_prompts is True


def test_unknown_explicit_policy(policies: PolicySet) -> None:
    with pytest.raises(InvalidRequestError, match="policy 'super' is not defined") as info:
        policies.resolve("alice", policy="super")
    assert info.value.field == "policy"


def test_no_role_and_no_default_is_refused() -> None:
    ps = PolicySet([Policy(name="staff")], roles={"alice": "staff"})
    assert ps.resolve("alice").name == "staff"
    with pytest.raises(PolicyViolation, match=r"user 'mallory'.*no default.*roles="):
        ps.resolve("mallory")
    with pytest.raises(PolicyViolation, match="a request without a user"):
        ps.resolve(None)


def test_policy_set_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="does not match its name"):
        PolicySet({"a": Policy(name="b")})
    with pytest.raises(ConfigError, match=r"default names policy 'fre'.*did you mean 'free'"):
        PolicySet([Policy(name="free")], default="fre")
    with pytest.raises(ConfigError, match=r"roles\['bob'\] names policy 'gold'"):
        PolicySet([Policy(name="free")], roles={"bob": "gold"})
    with pytest.raises(ConfigError, match="given twice"):
        PolicySet([Policy(name="a"), Policy(name="a")])
    with pytest.raises(ConfigError, match="must be a Policy"):
        PolicySet({"a": {"name": "a"}})  # type: ignore[dict-item]


def test_policy_set_check_uses_the_request_user(policies: PolicySet) -> None:
    allowed, _, request = policies.check(req(50, user="bob"), ALL, input_tokens=10)
    assert allowed == [MINI] and request.max_tokens == 50
    assert policies.check(req(5_000, user="alice"), ALL).allowed == ALL
    with pytest.raises(PolicyViolation, match="'free'.*max_tokens"):
        policies.check(req(5_000, user="alice"), ALL, policy="free")
    assert policies.check(req(50, user="bob"), ALL, user="root").allowed == ALL
    assert "free" in repr(policies)
