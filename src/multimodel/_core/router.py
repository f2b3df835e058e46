"""A client's routing state: model groups, strategies, breakers, limits, budgets, policies.

The :class:`Router` holds what outlives a call (built once per client); each call gets a fresh
:class:`~multimodel._core.dispatch.DispatchPlan` from :meth:`Router.plan`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import UnknownModelError
from ..providers.base import Endpoint
from ..resilience.circuit import HealthBoard
from ..resilience.rate_limit import RateLimiter
from ..resilience.retry import RetryBudget, RetryPolicy
from ..strategies.base import RouteContext, Strategy
from ..tracking.stats import Tracker
from ..types import ChatRequest, ImagePart, Usage
from .clock import Clock

if TYPE_CHECKING:
    from ..resilience.budget import BudgetBook
    from ..resilience.hedge import HedgePolicy, HedgeState
    from ..security._rules import Policy
    from .dispatch import DispatchPlan

__all__ = ["AUTO", "AutoTemplate", "Router"]

AUTO = "auto"
_new_object = object.__new__
AutoTemplate = tuple[
    Strategy, Sequence[Endpoint], Sequence[str], Any, str, Any, bool, Mapping[str, str]
]
"""What a plan's entry into ``model="auto"`` sets (see :attr:`Router.auto_templates`)."""


class Router:
    """A client's routing state: groups, strategies, tracker, breakers, limits, policies.

    It holds no per-call state; :meth:`plan` makes a fresh :class:`DispatchPlan` per call.
    """

    _plan_type: type[DispatchPlan] | None = None

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        strategy_for: Callable[[str], Strategy],
        tracker: Tracker,
        clock: Clock,
        retry: RetryPolicy,
        health: HealthBoard,
        *,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        context_fallbacks: Mapping[str, str] | None = None,
        budget: RetryBudget | None = None,
        cost: Callable[[Endpoint, Usage], Any] | None = None,
        telemetry: Any = None,
        budgets: BudgetBook | None = None,
        hedge: HedgePolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoints = list(endpoints)
        self.groups: dict[str, list[Endpoint]] = {}
        for ep in endpoints:
            self.groups.setdefault(ep.model, []).append(ep)
        # One immutable candidate tuple per group, passed as is while nothing is excluded, so
        # strategies can keep data derived from it (cells, weights) keyed by its identity.
        self._candidates = {model: tuple(eps) for model, eps in self.groups.items()}
        # model="auto": candidates per set of needed capabilities (a handful of sets at most).
        self._auto: dict[frozenset[str], tuple[tuple[Endpoint, ...], float, dict[str, str]]] = {}
        self._auto_names: dict[int, tuple[str, ...]] = {}
        self.by_name = {ep.name: ep for ep in endpoints}
        # Candidate names per group, for the trace (``auto`` filters per request: not here).
        self.names = {model: tuple(ep.name for ep in eps) for model, eps in self.groups.items()}
        self._strategy_for = strategy_for
        #: Per model group (not ``auto``), what a plan's entry into it sets when it does not
        #: depend on the request (a strategy without exclusions): (strategy, candidates, their
        #: names, ``choose_scored`` or ``None``, the strategy's name). Filled by the first plan.
        self.templates: dict[str, tuple[Strategy, Sequence[Endpoint], Sequence[str], Any, str]] = {}
        #: ``model="auto"``'s templates, per set of needed capabilities (:meth:`auto_key`): the
        #: same five items, then the strategy's ``exclude`` (or ``None``) and whether it reads
        #: the stats, and the exclusions every such request gets (capabilities, embedding
        #: models; read-only). Used while the request fits every candidate's context window
        #: (the candidates do not depend on it then); ``exclude`` is still asked per request.
        self.auto_templates: dict[frozenset[str], AutoTemplate] = {}
        self.strategies: dict[str, Strategy] = {m: strategy_for(m) for m in self.groups}
        self.tracker = tracker
        self.clock = clock
        self.retry = retry
        self.health = health
        self.limiter = RateLimiter()
        for ep in endpoints:
            if ep.rpm or ep.tpm:
                self.limiter.configure(ep.name, rpm=ep.rpm, tpm=ep.tpm)
        self.fallbacks = {k: list(v) for k, v in (fallbacks or {}).items()}
        self.context_fallbacks = dict(context_fallbacks or {})
        self.budget = budget or RetryBudget()
        self.cost = cost
        self.telemetry = telemetry
        self.budgets = budgets if budgets else None
        self.hedge: HedgeState | None = None
        if hedge is not None:  # the hedging module loads only for a client that hedges
            from ..resilience.hedge import HedgeState

            self.hedge = HedgeState(hedge)
        self.rng = rng or random.Random()
        self.shared: Any = None  # a RedisState when the client has ``shared_state``
        for model, chain in [
            *self.fallbacks.items(),
            *((k, [v]) for k, v in self.context_fallbacks.items()),
        ]:
            for name in [model, *chain]:
                if name not in self.groups and name != AUTO:
                    raise UnknownModelError(name, self.groups)

    def strategy(self, model: str) -> Strategy:
        """The strategy of a model group (``auto`` included)."""
        strategy = self.strategies.get(model)
        if strategy is None:
            strategy = self.strategies.setdefault(model, self._strategy_for(model))
        return strategy

    def candidates(
        self, model: str, ctx: RouteContext
    ) -> tuple[Sequence[Endpoint], dict[str, str]]:
        """Deployments that may serve ``model``, and ``{name: reason}`` for those that may not.

        For ``model="auto"``: every deployment whose catalog entry has the capabilities the
        request needs (tools, vision, JSON) and a context window that fits it.
        """
        if model != AUTO:
            return self._candidates[model], {}
        needs = frozenset(_needed_capabilities(ctx.request))
        needed_tokens = ctx.input_tokens + ctx.output_tokens
        capable = self._auto.get(needs)
        if capable is None:
            capable = self._auto[needs] = self._capable(needs)
            # Keyed by identity: the tuple lives in self._auto as long as the router does.
            self._auto_names[id(capable[0])] = tuple(ep.name for ep in capable[0])
        if needed_tokens <= capable[1]:
            # Every capable deployment's window fits: the same tuple as last time (strategies
            # recognise it), without visiting the fleet.
            return capable[0], dict(capable[2])
        kept: list[Endpoint] = []
        excluded = dict(capable[2])
        for ep in capable[0]:
            spec = ep.spec
            if spec is not None and spec.context_window < needed_tokens:
                excluded[ep.name] = (
                    f"context window {spec.context_window} < ~{needed_tokens} tokens needed"
                )
            else:
                kept.append(ep)  # fits, or unknown to the catalog: the strategy decides
        return kept, excluded

    def auto_key(self, ctx: RouteContext) -> frozenset[str] | None:
        """The key of ``model="auto"``'s template for ``ctx`` (its needed capabilities), or
        ``None`` when its candidates depend on the request (not yet computed for these
        capabilities, or some context window is too small for it)."""
        needs = frozenset(_needed_capabilities(ctx.request))
        capable = self._auto.get(needs)
        if capable is None or ctx.input_tokens + ctx.output_tokens > capable[1]:
            return None
        return needs

    def names_of(self, model: str, candidates: Sequence[Endpoint]) -> Sequence[str]:
        """The names of ``candidates`` (as :meth:`candidates` returned them), for the trace."""
        names = self.names.get(model)
        if names is None:
            # A hit is the very tuple candidates() returned: it lives in self._auto, so its id
            # cannot belong to another object.
            names = self._auto_names.get(id(candidates))
            if names is None:
                return [c.name for c in candidates]
        return names

    def _capable(self, needs: frozenset[str]) -> tuple[tuple[Endpoint, ...], float, dict[str, str]]:
        """``model="auto"`` candidates with the capabilities ``needs``, the smallest context
        window among them (inf: none known), and the exclusions."""
        kept: list[Endpoint] = []
        excluded: dict[str, str] = {}
        window = float("inf")
        for ep in self.endpoints:
            spec = ep.spec
            if spec is None:
                kept.append(ep)
                continue
            missing = needs - set(spec.capabilities)
            if "chat" not in spec.capabilities and "embedding" in spec.capabilities:
                excluded[ep.name] = "an embedding model"
            elif missing:
                excluded[ep.name] = f"capability: lacks {', '.join(sorted(missing))}"
            else:
                kept.append(ep)
                window = min(window, spec.context_window)
        return tuple(kept), window, excluded

    def plan(
        self,
        request: ChatRequest,
        *,
        timeout: float,
        deadline: float | None = None,
        stream: bool = False,
        policy: Policy | None = None,
        operation: str = "chat",
    ) -> DispatchPlan:
        """A plan for one call of ``request`` (``policy``: the caller's access policy;
        ``operation``: the GenAI operation its spans name, ``"embeddings"`` for a batch of
        embeddings)."""
        plan_type = Router._plan_type
        if plan_type is None:  # imported here (circular at import time), once
            from .dispatch import DispatchPlan

            plan_type = Router._plan_type = DispatchPlan
        # Allocated and initialised as two calls rather than by calling the class: type.__call__
        # would gather the keywords into a dict for __init__ (once per call).
        plan = _new_object(plan_type)
        plan.__init__(  # type: ignore[misc]
            self,
            request,
            timeout=timeout,
            deadline=deadline,
            stream=stream,
            policy=policy,
            operation=operation,
        )
        return plan


def _needed_capabilities(request: ChatRequest | None) -> set[str]:
    needs: set[str] = set()
    if request is None:
        return needs
    if request.tools:
        needs.add("tools")
    if request.response_format is not None and request.response_format.type != "text":
        needs.add("json")
        if request.response_format.type == "json_schema":
            needs.add("structured_output")
    for message in request.messages:
        if isinstance(message.content, list) and any(
            isinstance(p, ImagePart) for p in message.content
        ):
            needs.add("vision")
            break
    return needs
