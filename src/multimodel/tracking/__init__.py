"""Live statistics, outcomes, cost, the usage ledger and telemetry: what happened to requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .cost import CostBreakdown, compute_cost, cost_for
    from .ledger import UsageLedger
    from .outcome import Outcome
    from .snapshot import DeploymentSnapshot, GroupSnapshot, StatsSnapshot
    from .stats import Tracker
    from .telemetry import Telemetry
    from .view import DeploymentStats, StatsView

_LAZY = {
    "CostBreakdown": ".cost",
    "DeploymentSnapshot": ".snapshot",
    "DeploymentStats": ".view",
    "GroupSnapshot": ".snapshot",
    "Outcome": ".outcome",
    "StatsSnapshot": ".snapshot",
    "StatsView": ".view",
    "Telemetry": ".telemetry",
    "Tracker": ".stats",
    "UsageLedger": ".ledger",
    "compute_cost": ".cost",
    "cost_for": ".cost",
}


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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
