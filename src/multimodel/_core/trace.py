"""The routing trace attached to every response and error, and the driver's actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..providers.base import Endpoint

__all__ = ["AttemptRecord", "RoutingTrace", "Send", "Sleep"]


class Send(NamedTuple):
    """Send one attempt to ``endpoint`` within ``timeout`` seconds."""

    endpoint: Endpoint
    attempt: int
    timeout: float
    started: float
    reservation: Any = None
    span: Any = None
    hold: Any = None  # the budget reservation


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next action."""

    seconds: float


class AttemptRecord(NamedTuple):
    """One attempt in a routing trace."""

    deployment: str
    outcome: str
    duration: float
    status: int | None = None
    detail: str | None = None


@dataclass(slots=True)
class RoutingTrace:
    """What the router did for one call.

    Attributes:
        model: the model group asked for.
        strategy: the strategy's name.
        candidates: deployments considered (all groups of the fallback chain that were reached).
        excluded: ``{deployment: reason}`` for deployments skipped during the call (cooldown,
            rate limit, capability, context window, failed with a non-retryable error ...).
        scores: the strategy's figure per candidate it considered, when it reports them
            (``choose_scored``): ``intelligent`` a score (higher wins); ``adaptive`` the cost
            of its two samples, ``response_time`` expected seconds, ``least_connections``
            requests in flight (lower wins).
        attempts: each attempt in order, with its outcome and duration.
        sleeps: each wait, in seconds (back-off, Retry-After, waiting for a recovery).
        models: the model groups used, in order (fallback chains).
    """

    model: str
    strategy: str
    candidates: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def deployments(self) -> list[str]:
        """The deployments attempted, in order."""
        return [a.deployment for a in self.attempts]

    @property
    def retries(self) -> int:
        """Attempts after the first."""
        return max(0, len(self.attempts) - 1)
