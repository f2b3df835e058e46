"""Balancing strategies: the registry and one module per algorithm."""

from .base import (
    Strategy,
    StrategyFactory,
    get_strategy,
    known_strategies,
    make_strategy,
    register_strategy,
)

__all__ = [
    "Strategy",
    "StrategyFactory",
    "get_strategy",
    "known_strategies",
    "make_strategy",
    "register_strategy",
]
