"""Typed snapshots of the tracker: what ``client.stats()`` returns.

Costs: ``cost`` is the exact total in USD, or ``None`` when part of it is unknown — when some
attempt was billed at a price nobody knows (a model missing from the catalog, whose responses
have ``cost=None``). ``unpriced_requests`` counts those attempts and ``known_cost`` sums the
others, so ``cost == known_cost`` whenever ``unpriced_requests == 0``. An unknown price is
never a silent zero.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DeploymentSnapshot", "GroupSnapshot", "QualitySnapshot", "StatsSnapshot"]

_FROZEN = ConfigDict(frozen=True, defer_build=True)


class DeploymentSnapshot(BaseModel):
    """Live figures of one deployment.

    Latencies are seconds. ``latency_*`` covers every successful attempt (streams: to the last
    chunk); ``ttft_*`` streams only. Quantiles come from a streaming sketch with 1 % relative
    accuracy. ``availability`` is the share of the last 5 minutes' attempts that succeeded;
    ``request_rate`` and ``error_rate`` are per second over the last ``1m`` / ``5m`` / ``1h``.
    ``cost`` is ``None`` when ``unpriced_requests`` is not 0 (see the module docstring).
    """

    model_config = _FROZEN
    name: str
    model: str
    provider: str
    requests: int
    successes: int
    failures: int
    errors: dict[str, int]
    in_flight: int
    cached: int
    input_tokens: int
    output_tokens: int
    cost: Decimal | None
    known_cost: Decimal
    unpriced_requests: int
    latency_ewma: float | None
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_ewma: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    ttft_p99: float | None
    tpot: float | None
    availability: float
    request_rate: dict[str, float]
    error_rate: dict[str, float]


class GroupSnapshot(BaseModel):
    """Totals for a model, provider, user or tag; ``cost`` is ``None`` when
    ``unpriced_requests`` is not 0 (see the module docstring)."""

    model_config = _FROZEN
    key: str
    requests: int
    failures: int
    input_tokens: int
    output_tokens: int
    cost: Decimal | None
    known_cost: Decimal
    unpriced_requests: int
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    request_rate: dict[str, float]


class QualitySnapshot(BaseModel):
    """The learned quality of a model for a task (0-1): the posterior ``mean``, its standard
    deviation ``sd``, the ``lower`` bound hard constraints use, the ``samples`` (feedback
    scores) received and their decayed ``weight`` (see :mod:`multimodel.tracking.quality`)."""

    model_config = _FROZEN
    mean: float
    sd: float
    lower: float
    samples: int
    weight: float


class StatsSnapshot(BaseModel):
    """Everything the tracker knows, at ``taken_at`` (monotonic seconds); ``quality`` is the
    learned quality per model and task (``{model: {task: QualitySnapshot}}``, models with
    feedback only)."""

    model_config = _FROZEN
    taken_at: float
    deployments: dict[str, DeploymentSnapshot] = Field(default_factory=dict)
    models: dict[str, GroupSnapshot] = Field(default_factory=dict)
    providers: dict[str, GroupSnapshot] = Field(default_factory=dict)
    users: dict[str, GroupSnapshot] = Field(default_factory=dict)
    tags: dict[str, GroupSnapshot] = Field(default_factory=dict)
    quality: dict[str, dict[str, QualitySnapshot]] = Field(default_factory=dict)
