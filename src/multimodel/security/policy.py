"""Client-side access policies: which models and providers a caller may use, at what cost.

A :class:`Policy` is checked before anything is sent. :func:`check` filters the candidate
deployments (model and provider rules, estimated cost), enforces the hard rules
(``max_tokens``, ``max_input_tokens``) and returns what may be sent; when the policy forbids the
request it raises :class:`~multimodel.errors.PolicyViolation`, naming the policy, the rule and
what would fix it. A :class:`PolicySet` picks the policy of a caller: an explicit policy name,
else the user's role, else the default.

A dispatch step with fallback groups can use the pieces of :func:`check` instead:
:func:`enforce_request` once (hard rules; may clamp ``max_tokens``, so run it before estimating
output tokens), :func:`filter_candidates` per group (never raises; reasons read
``"<rule>: <detail>"``), and :func:`violation` to build the error when no group has an allowed
deployment left.

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

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from .._core.suggest import close_matches
from .._core.tokens import estimate_input_tokens, estimate_output_tokens
from ..errors import ConfigError, InvalidRequestError, PolicyViolation
from ..providers.base import Endpoint
from ..types import ChatRequest
from ._rules import FIXES, Policy, estimated_cost, exclusion

__all__ = [
    "Policy",
    "PolicyResult",
    "PolicySet",
    "check",
    "enforce_request",
    "estimated_cost",
    "filter_candidates",
    "violation",
]


class PolicyResult(NamedTuple):
    """What :func:`check` returns (a plain tuple, so it unpacks)."""

    allowed: list[Endpoint]
    """The candidates the policy allows, in their original order."""
    exclusions: dict[str, str]
    """``{deployment name: reason}`` for each candidate the policy excludes."""
    request: ChatRequest
    """The request to send: the one given, or a copy with ``max_tokens`` clamped."""


def enforce_request(
    policy: Policy | None, request: ChatRequest, *, input_tokens: int | None = None
) -> ChatRequest:
    """Apply the policy's hard rules to ``request``; returns it, or a copy with ``max_tokens``
    clamped. Call it before estimating output tokens (the clamp changes the estimate).

    Example::

        request = enforce_request(policy, request)   # may clamp max_tokens

    Raises:
        PolicyViolation: ``max_tokens`` is over the cap (or missing) with
            ``on_max_tokens="reject"``, or the prompt is over ``max_input_tokens``.
    """
    if policy is None:
        return request
    cap = policy.max_tokens
    if cap is not None and (request.max_tokens is None or request.max_tokens > cap):
        if policy.on_max_tokens == "reject":
            asked = f"asks for max_tokens={request.max_tokens}"
            if request.max_tokens is None:
                asked = "sets no max_tokens"
            raise PolicyViolation(
                f"policy {policy.name!r} forbids this request: rule max_tokens: the request "
                f"{asked}, and the policy caps it at {cap}. To fix: pass max_tokens <= {cap} "
                "(or use on_max_tokens='clamp')"
            )
        request = request.model_copy(update={"max_tokens": cap})
    limit = policy.max_input_tokens
    if limit is not None:
        tokens = estimate_input_tokens(request) if input_tokens is None else input_tokens
        if tokens > limit:
            raise PolicyViolation(
                f"policy {policy.name!r} forbids this request: rule max_input_tokens: the "
                f"prompt is ~{tokens:,} tokens (estimated), over the limit of {limit:,}. "
                "To fix: shorten the prompt or drop earlier messages"
            )
    return request


def filter_candidates(
    policy: Policy | None,
    candidates: Sequence[Endpoint],
    *,
    input_tokens: int,
    output_tokens: int,
) -> tuple[list[Endpoint], dict[str, str]]:
    """The candidates ``policy`` allows (in order) and ``{name: "<rule>: <detail>"}`` for the
    rest. Never raises, so a dispatch step can run it per fallback group and merge the reasons
    into its trace; :func:`violation` builds the error when nothing is left.

    Example::

        allowed, excluded = filter_candidates(policy, group, input_tokens=900,
                                              output_tokens=256)
    """
    if policy is None:
        return list(candidates), {}
    allowed: list[Endpoint] = []
    excluded: dict[str, str] = {}
    for endpoint in candidates:
        why = exclusion(policy, endpoint, input_tokens, output_tokens)
        if why is None:
            allowed.append(endpoint)
        else:
            excluded[endpoint.name] = why
    return allowed, excluded


def violation(policy: Policy, model: str, exclusions: Mapping[str, str]) -> PolicyViolation:
    """The error for a request whose every candidate deployment ``policy`` excluded.

    ``exclusions`` are reasons from :func:`filter_candidates` (other reasons are listed too).
    The message names the policy, the broken rules, each deployment's reason and the fixes.
    """
    rules = [
        r for r in dict.fromkeys(w.partition(":")[0] for w in exclusions.values()) if r in FIXES
    ]
    fixes = "; ".join(FIXES[r] for r in rules) or "change the policy"
    why = "; ".join(f"{name}: {reason}" for name, reason in exclusions.items())
    return PolicyViolation(
        f"policy {policy.name!r} forbids this request: rule "
        f"{', '.join(rules) or 'none'}: none of the "
        f"{len(exclusions)} deployment(s) for model {model!r} is allowed ({why}). "
        f"To fix: {fixes}"
    )


def check(
    policy: Policy | None,
    request: ChatRequest,
    candidates: Sequence[Endpoint],
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
) -> PolicyResult:
    """Apply ``policy`` to ``request`` and its candidates: :func:`enforce_request`, then
    :func:`filter_candidates`, raising :func:`violation` when nothing is allowed.

    ``input_tokens`` and ``output_tokens`` are the routing estimates (computed with
    :mod:`multimodel._core.tokens` when omitted); the output estimate is capped by the
    (possibly clamped) ``max_tokens``. Nothing given is modified. ``policy=None`` allows
    everything; no candidates in means no candidates out (not a violation).

    Example::

        allowed, excluded, request = check(policy, request, endpoints)
        # excluded == {"gpt4-eu": "allowed_models: model 'gpt-4' matches none of {'gpt-4o*'}"}

    Raises:
        PolicyViolation: a hard rule is broken, or the policy excludes every candidate. The
            message names the policy, the rule and a fix.
    """
    request = enforce_request(policy, request, input_tokens=input_tokens)
    if input_tokens is None:
        input_tokens = estimate_input_tokens(request)
    if output_tokens is None:
        output_tokens = estimate_output_tokens(request)
    elif request.max_tokens is not None:
        output_tokens = min(output_tokens, request.max_tokens)
    allowed, excluded = filter_candidates(
        policy, candidates, input_tokens=input_tokens, output_tokens=output_tokens
    )
    if policy is not None and candidates and not allowed:
        raise violation(policy, request.model, excluded)
    return PolicyResult(allowed, excluded, request)


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
            close = close_matches(name, self.policies, n=3, cutoff=0.5)
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
