"""The strategy contract and registry.

A strategy picks which deployment of a model group serves a request. It is a small object with
one method, :meth:`Strategy.choose`, given the candidates still available for this attempt and a
read-only view of live stats. It does no I/O, keeps only small counters, and is safe to call from
many threads and tasks at once. One instance is made per model group, so per-group state (a
round-robin counter, smooth-weighted credits) stays per group.

Register your own::

    from multimodel.strategies import register_strategy

    @register_strategy("first")
    class First:
        def __init__(self, **params: object) -> None: ...
        def choose(self, candidates, stats, ctx):
            return candidates[0]

    client = multimodel.Client(deployments=[...], strategy="first")

Third-party packages can also publish strategies through the ``multimodel.strategies`` entry
point group (the entry point names the class).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from .._core.registry import Registry
from ..errors import ConfigError
from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from ..types import ChatRequest

__all__ = [
    "RouteContext",
    "Strategy",
    "StrategyFactory",
    "get_strategy",
    "known_strategies",
    "make_strategy",
    "register_strategy",
]

ENTRY_POINT_GROUP = "multimodel.strategies"


class RouteContext(NamedTuple):
    """What a strategy knows about the request being routed.

    Fields:
        request: the request (``None`` in simulations that route without one).
        stream: whether the answer is streamed (score time to first token).
        input_tokens: estimated prompt tokens.
        output_tokens: expected output tokens (``max_tokens`` or a default).
    """

    request: ChatRequest | None = None
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 256


@runtime_checkable
class Strategy(Protocol):
    """Choose a deployment among ``candidates`` (never empty)."""

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """Return one of ``candidates``.

        A strategy may also define ``choose_scored(candidates, stats, ctx)`` returning
        ``(endpoint, {name: figure})``; the router then uses it and puts the figures in the
        routing trace (``trace.scores``). It may define ``exclude(candidates, ctx)`` returning
        ``{name: reason}`` for hard constraints; with a true ``exclude_reads_stats``
        attribute it is called as ``exclude(candidates, ctx, stats)``.
        """
        ...


StrategyFactory = Callable[..., Strategy]
_T = TypeVar("_T")

DEFAULT_STRATEGY = "adaptive"
_registry: Registry[StrategyFactory] = Registry(
    "strategy",
    plural="strategies",
    builtins={
        "adaptive": "multimodel.strategies.adaptive:Adaptive",
        "intelligent": "multimodel.strategies.intelligent:Intelligent",
        "least_connections": "multimodel.strategies.least_connections:LeastConnections",
        "response_time": "multimodel.strategies.response_time:ResponseTime",
        "round_robin": "multimodel.strategies.round_robin:RoundRobin",
        "weighted": "multimodel.strategies.weighted:Weighted",
    },
    entry_points=ENTRY_POINT_GROUP,
    hint="Register one with multimodel.register_strategy(name)",
)


def register_strategy(name: str) -> Callable[[_T], _T]:
    """Class decorator registering a strategy factory under ``name``."""

    def decorator(factory: _T) -> _T:
        _registry.register(name, factory)  # type: ignore[arg-type]
        return factory

    return decorator


def get_strategy(name: str) -> StrategyFactory:
    """The factory registered under ``name``, importing a built-in one on first use.

    Raises:
        ConfigError: unknown name; the message lists the known ones and the closest.
    """
    return _registry.get(name)


def known_strategies() -> list[str]:
    """Every registered or built-in strategy name."""
    return _registry.names()


def make_strategy(spec: Any) -> Strategy:
    """Build a strategy from a name, a ``{"name": ..., **params}`` dict, or an instance."""
    if spec is None:
        spec = DEFAULT_STRATEGY
    if isinstance(spec, str):
        return get_strategy(spec)()
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name", None) or params.pop("algorithm", None)
        if not isinstance(name, str):
            raise ConfigError("a strategy config needs 'name' (e.g. {'name': 'weighted', ...})")
        try:
            return get_strategy(name)(**params)
        except TypeError as exc:
            raise ConfigError(f"bad parameters for strategy {name!r}: {exc}") from exc
    if isinstance(spec, Strategy):
        return spec
    raise ConfigError(f"strategy must be a name, a dict or a Strategy object, not {spec!r}")
