"""Live statistics, outcomes, cost, the usage ledger and telemetry: what happened to requests."""

from .cost import CostBreakdown, compute_cost, cost_for
from .ledger import UsageLedger
from .outcome import Outcome
from .snapshot import DeploymentSnapshot, GroupSnapshot, StatsSnapshot
from .stats import DeploymentStats, StatsView, Tracker
from .telemetry import Telemetry

__all__ = [
    "CostBreakdown",
    "DeploymentSnapshot",
    "DeploymentStats",
    "GroupSnapshot",
    "Outcome",
    "StatsSnapshot",
    "StatsView",
    "Telemetry",
    "Tracker",
    "UsageLedger",
    "compute_cost",
    "cost_for",
]
