"""Client-side access policies: which models and providers a caller may use, at what cost.

A :class:`Policy` is checked before anything is sent. :func:`check` filters the candidate
deployments (model and provider rules, estimated cost), enforces the hard rules
(``max_tokens``, ``max_input_tokens``) and returns what may be sent; when the policy forbids the
request it raises :class:`~multimodel.errors.PolicyViolation`, naming the policy, the rule and
what would fix it. A :class:`PolicySet` picks the policy of a caller: an explicit policy name,
else the user's role, else the default.

Example::

    from multimodel.security import Policy, PolicySet

    policies = PolicySet(
        {
            "intern": Policy(name="intern", allowed_models={"gpt-4o-mini*", "claude-3-haiku*"},
                             max_cost_per_request="0.01", max_tokens=1000,
                             on_max_tokens="clamp"),
            "staff": Policy(name="staff", denied_providers={"openrouter"}, log_prompts=True),
        },
        default="intern",
        roles={"alice": "staff"},
    )
    policy = policies.resolve(user=request.user)
    allowed, excluded, request = check(policy, request, candidates,
                                       input_tokens=1200, output_tokens=256)

Model patterns are :mod:`fnmatch` patterns (``*``, ``?``, ``[...]``), matched without regard
to case against every name of a deployment: its model group, the model id sent to the
provider, and the catalog id and aliases when the catalog knows the model. A deployment is
allowed when any of its names matches ``allowed_models`` and denied when any matches
``denied_models``; denial wins.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._core.tokens import estimate_input_tokens, estimate_output_tokens
from ..errors import ConfigError, InvalidRequestError, PolicyViolation
from ..providers.base import Endpoint
from ..types import ChatRequest

__all__ = ["Policy", "PolicyResult", "PolicySet", "check", "estimated_cost"]

_MILLION = Decimal(1_000_000)


class Policy(BaseModel):
    """What one class of caller may do. Frozen; unknown fields are an error.

    Attributes:
        name: the policy's name (used in errors).
        allowed_models: model patterns that may be used; ``None`` = every model.
        denied_models: model patterns that may never be used (wins over ``allowed_models``).
        allowed_providers: provider names that may be used; ``None`` = every provider.
        denied_providers: provider names that may never be used.
        max_cost_per_request: USD a request may be expected to cost, estimated before sending
            from the catalog's prices (prompt estimate plus expected output).
        allow_unpriced: with a cost cap, whether deployments whose price is unknown may serve
            (default no: a cap that cannot be checked excludes them).
        max_tokens: the most output tokens a request may ask for.
        on_max_tokens: what to do with a request over ``max_tokens`` (or without
            ``max_tokens`` while a cap exists): ``"reject"`` it, or ``"clamp"`` it to the cap.
        max_input_tokens: the most (estimated) prompt tokens a request may carry.
        log_prompts: whether the request's prompt and answer may be stored in the usage
            ledger (``UsageLedger(store_content=True)``).

    Example::

        Policy(name="analyst", allowed_models={"gpt-4o*"}, denied_models={"gpt-4o-realtime*"},
               max_cost_per_request="0.05", max_tokens=2000, on_max_tokens="clamp")
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str = Field(min_length=1)
    allowed_models: frozenset[str] | None = None
    denied_models: frozenset[str] = frozenset()
    allowed_providers: frozenset[str] | None = None
    denied_providers: frozenset[str] = frozenset()
    max_cost_per_request: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    allow_unpriced: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    on_max_tokens: Literal["clamp", "reject"] = "reject"
    max_input_tokens: int | None = Field(default=None, ge=1)
    log_prompts: bool = False

    @field_validator(
        "allowed_models", "denied_models", "allowed_providers", "denied_providers", mode="before"
    )
    @classmethod
    def _not_one_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"must be a set of names, not one string (write {{{value!r}}})")  # noqa: TRY004
        return value

    @field_validator("allowed_models", "denied_models", "allowed_providers", "denied_providers")
    @classmethod
    def _no_blank(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None and any(not v.strip() for v in value):
            raise ValueError("names and patterns must not be blank")
        return value


class PolicyResult(NamedTuple):
    """What :func:`check` returns (a plain tuple, so it unpacks)."""

    allowed: list[Endpoint]
    """The candidates the policy allows, in their original order."""
    exclusions: dict[str, str]
    """``{deployment name: reason}`` for each candidate the policy excludes."""
    request: ChatRequest
    """The request to send: the one given, or a copy with ``max_tokens`` clamped."""


def estimated_cost(endpoint: Endpoint, input_tokens: int, output_tokens: int) -> Decimal | None:
    """Exact USD estimate of a request on ``endpoint`` from its catalog prices (``None``: unknown).

    The same sum as :func:`multimodel.strategies.intelligent.estimated_cost`, kept in
    :class:`~decimal.Decimal`.

    Example::

        estimated_cost(endpoint, 1_000, 500)   # Decimal('0.0075') at $2.50 / $10 per M tokens
    """
    pricing = getattr(endpoint.spec, "pricing", None)
    if pricing is None:
        return None
    cost: Decimal = (pricing.input * input_tokens + pricing.output * output_tokens) / _MILLION
    return cost


def _names(endpoint: Endpoint) -> list[str]:
    names = [endpoint.model, endpoint.wire_model]
    spec = endpoint.spec
    if spec is not None:
        spec_id = getattr(spec, "id", None)
        if isinstance(spec_id, str):
            names.append(spec_id)
        names.extend(a for a in getattr(spec, "aliases", ()) if isinstance(a, str))
    return list(dict.fromkeys(n.lower() for n in names))


def _match(names: Iterable[str], patterns: Iterable[str]) -> str | None:
    """The first pattern (sorted, for stable messages) any name matches, else ``None``."""
    for pattern in sorted(patterns):
        low = pattern.lower()
        if any(fnmatchcase(n, low) for n in names):
            return pattern
    return None


def _in(value: str, names: frozenset[str]) -> bool:
    return value.lower() in {n.lower() for n in names}


def _show(values: Iterable[str]) -> str:
    return "{" + ", ".join(map(repr, sorted(values))) + "}"


def _exclusion(
    policy: Policy, endpoint: Endpoint, input_tokens: int, output_tokens: int
) -> tuple[str, str] | None:
    """``(rule, reason)`` when ``policy`` excludes ``endpoint``, else ``None``."""
    names = _names(endpoint)
    denied = _match(names, policy.denied_models)
    if denied is not None:
        return "denied_models", f"model {endpoint.model!r} matches denied pattern {denied!r}"
    if policy.allowed_models is not None and _match(names, policy.allowed_models) is None:
        return "allowed_models", (
            f"model {endpoint.model!r} matches none of allowed_models "
            f"{_show(policy.allowed_models)}"
        )
    if _in(endpoint.provider, policy.denied_providers):
        return "denied_providers", f"provider {endpoint.provider!r} is in denied_providers"
    if policy.allowed_providers is not None and not _in(
        endpoint.provider, policy.allowed_providers
    ):
        return "allowed_providers", (
            f"provider {endpoint.provider!r} is not in allowed_providers "
            f"{_show(policy.allowed_providers)}"
        )
    cap = policy.max_cost_per_request
    if cap is not None:
        cost = estimated_cost(endpoint, input_tokens, output_tokens)
        if cost is None:
            if not policy.allow_unpriced:
                return "max_cost_per_request", (
                    "price unknown, so max_cost_per_request cannot be checked "
                    "(allow_unpriced=False)"
                )
        elif cost > cap:
            return "max_cost_per_request", (
                f"estimated cost ${cost:.6f} exceeds max_cost_per_request ${cap} "
                f"(~{input_tokens} input + {output_tokens} output tokens)"
            )
    return None


_FIXES = {
    "denied_models": "ask for a model the policy does not deny",
    "allowed_models": "ask for a model matching allowed_models",
    "denied_providers": "use a deployment on another provider",
    "allowed_providers": "use a deployment on an allowed provider",
    "max_cost_per_request": "lower max_tokens, shorten the prompt or pick a cheaper model",
}


def check(
    policy: Policy | None,
    request: ChatRequest,
    candidates: Sequence[Endpoint],
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
) -> PolicyResult:
    """Apply ``policy`` to ``request`` and its candidate deployments, before anything is sent.

    ``input_tokens`` and ``output_tokens`` are the routing estimates (computed with
    :mod:`multimodel._core.tokens` when omitted); the output estimate is capped by the
    (possibly clamped) ``max_tokens``. Nothing given is modified. ``policy=None`` allows
    everything; no candidates in means no candidates out (not a violation).

    Example::

        allowed, excluded, request = check(policy, request, endpoints)
        # excluded == {"gpt4-eu": "model 'gpt-4' matches none of allowed_models {'gpt-4o*'}"}

    Raises:
        PolicyViolation: ``max_tokens`` is over the cap (or missing) with
            ``on_max_tokens="reject"``; the prompt is over ``max_input_tokens``; or the policy
            excludes every candidate. The message names the policy, the rule and a fix.
    """
    if policy is None:
        return PolicyResult(list(candidates), {}, request)
    cap = policy.max_tokens
    if cap is not None and (request.max_tokens is None or request.max_tokens > cap):
        if policy.on_max_tokens == "reject":
            asked = (
                "sets no max_tokens"
                if request.max_tokens is None
                else f"asks for max_tokens={request.max_tokens}"
            )
            raise PolicyViolation(
                f"policy {policy.name!r} forbids this request: rule max_tokens: the request "
                f"{asked}, and the policy caps it at {cap}. To fix: pass max_tokens <= {cap} "
                "(or use on_max_tokens='clamp')"
            )
        request = request.model_copy(update={"max_tokens": cap})
    if input_tokens is None:
        input_tokens = estimate_input_tokens(request)
    if output_tokens is None:
        output_tokens = estimate_output_tokens(request)
    elif request.max_tokens is not None:
        output_tokens = min(output_tokens, request.max_tokens)
    if policy.max_input_tokens is not None and input_tokens > policy.max_input_tokens:
        raise PolicyViolation(
            f"policy {policy.name!r} forbids this request: rule max_input_tokens: the prompt "
            f"is ~{input_tokens:,} tokens (estimated), over the limit of "
            f"{policy.max_input_tokens:,}. To fix: shorten the prompt or drop earlier messages"
        )
    allowed: list[Endpoint] = []
    exclusions: dict[str, str] = {}
    rules: list[str] = []
    for endpoint in candidates:
        found = _exclusion(policy, endpoint, input_tokens, output_tokens)
        if found is None:
            allowed.append(endpoint)
        else:
            rules.append(found[0])
            exclusions[endpoint.name] = found[1]
    if candidates and not allowed:
        broken = list(dict.fromkeys(rules))
        why = "; ".join(f"{name}: {reason}" for name, reason in exclusions.items())
        fixes = "; ".join(_FIXES[r] for r in broken)
        raise PolicyViolation(
            f"policy {policy.name!r} forbids this request: rule {', '.join(broken)}: none of "
            f"the {len(candidates)} deployment(s) for model {request.model!r} is allowed "
            f"({why}). To fix: {fixes}"
        )
    return PolicyResult(allowed, exclusions, request)


class PolicySet:
    """Named policies, and which one applies to whom.

    Args:
        policies: ``{name: Policy}``; each key must equal its policy's ``name``. A sequence
            of policies is accepted too.
        default: the policy of callers without a role; ``None`` = such callers are refused.
        roles: ``{user id: policy name}`` (the user id is ``ChatRequest.user``).

    Resolution: an explicit ``policy=`` name wins, then the user's role, then ``default``.

    Example::

        ps = PolicySet([Policy(name="free", max_tokens=500), Policy(name="pro")],
                       default="free", roles={"u-42": "pro"})
        ps.resolve("u-42").name                 # 'pro'
        ps.resolve("someone-else").name         # 'free'
        ps.resolve("u-42", policy="free").name  # 'free'

    Raises:
        ConfigError: a key does not match its policy's name, or ``default``/``roles`` name a
            policy that is not in the set.
    """

    def __init__(
        self,
        policies: Mapping[str, Policy] | Sequence[Policy],
        *,
        default: str | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> None:
        items = (
            list(policies.items())
            if isinstance(policies, Mapping)
            else [(p.name, p) for p in policies]
        )
        table: dict[str, Policy] = {}
        for key, pol in items:
            if not isinstance(pol, Policy):
                raise ConfigError(f"policy {key!r} must be a Policy, not {type(pol).__name__}")
            if key != pol.name:
                raise ConfigError(f"policy key {key!r} does not match its name {pol.name!r}")
            if key in table:
                raise ConfigError(f"policy {key!r} is given twice")
            table[key] = pol
        self.policies: Mapping[str, Policy] = table
        self.roles: Mapping[str, str] = dict(roles or {})
        if default is not None:
            self._known(default, "default")
        for user, name in self.roles.items():
            self._known(name, f"roles[{user!r}]")
        self.default = default

    def _known(self, name: str, where: str) -> None:
        if name not in self.policies:
            close = difflib.get_close_matches(name, list(self.policies), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(
                f"{where} names policy {name!r}, which is not defined (policies: "
                f"{', '.join(map(repr, sorted(self.policies))) or 'none'}){hint}"
            )

    def resolve(self, user: str | None = None, *, policy: str | None = None) -> Policy:
        """The policy for ``user``; an explicit ``policy`` name wins.

        Raises:
            InvalidRequestError: ``policy`` names no policy in the set (``field="policy"``).
            PolicyViolation: the user has no role and there is no default.
        """
        if policy is not None:
            found = self.policies.get(policy)
            if found is None:
                raise InvalidRequestError(
                    f"policy {policy!r} is not defined (policies: "
                    f"{', '.join(map(repr, sorted(self.policies))) or 'none'})",
                    field="policy",
                )
            return found
        name = self.roles.get(user) if user is not None else None
        if name is None:
            name = self.default
        if name is None:
            who = f"user {user!r}" if user is not None else "a request without a user"
            raise PolicyViolation(
                f"no policy applies to {who}: it has no role and the PolicySet has no default. "
                "To fix: add the user to roles=, set default=, or pass policy= explicitly"
            )
        return self.policies[name]

    def check(
        self,
        request: ChatRequest,
        candidates: Sequence[Endpoint],
        *,
        user: str | None = None,
        policy: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> PolicyResult:
        """:meth:`resolve` (``user`` defaults to ``request.user``), then :func:`check`."""
        chosen = self.resolve(user if user is not None else request.user, policy=policy)
        return check(
            chosen, request, candidates, input_tokens=input_tokens, output_tokens=output_tokens
        )

    def __repr__(self) -> str:
        return (
            f"PolicySet(policies={sorted(self.policies)!r}, default={self.default!r}, "
            f"roles={len(self.roles)})"
        )
