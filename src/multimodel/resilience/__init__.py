"""Resilience policies: retries and back-off, circuit breakers, rate limits, budgets."""

from .retry import RetryPolicy

__all__ = ["RetryPolicy"]
