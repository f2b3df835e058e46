"""Balancing strategies: the registry and one module per algorithm."""

from .base import (
    RouteContext,
    Strategy,
    StrategyFactory,
    get_strategy,
    known_strategies,
    make_strategy,
    register_strategy,
)

__all__ = [
    "RouteContext",
    "Strategy",
    "StrategyFactory",
    "get_strategy",
    "known_strategies",
    "make_strategy",
    "register_strategy",
]
