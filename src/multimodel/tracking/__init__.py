"""Live statistics, outcomes, cost and telemetry: what happened to each request."""

from .outcome import Outcome
from .stats import DeploymentStats, StatsView, Tracker

__all__ = ["DeploymentStats", "Outcome", "StatsView", "Tracker"]
