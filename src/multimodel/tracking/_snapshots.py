"""Snapshots of the tracker's cells: the figures ``client.stats()`` returns per deployment,
model, provider, user and tag, built from the live cells when asked (never on the hot path)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .sketches import QuantileSketch

if TYPE_CHECKING:
    from ._cells import _Cell, _GroupCell
    from .snapshot import DeploymentSnapshot, GroupSnapshot

# The snapshot types (pydantic models) are imported by each function: they load with the
# first snapshot, not with the tracker that every client builds.

__all__ = ["deployment_snapshot", "group_snapshot", "merged_snapshot"]


def _q(sketch: QuantileSketch, q: float) -> float | None:
    return sketch.quantile(q)


def deployment_snapshot(
    name: str, cell: _Cell, meta: tuple[str, str], now: float
) -> DeploymentSnapshot:
    from .snapshot import DeploymentSnapshot

    total5 = cell.win_requests.windows["5m"].total(now)
    errors5 = cell.win_errors.windows["5m"].total(now)
    return DeploymentSnapshot(
        name=name,
        model=meta[0],
        provider=meta[1],
        requests=cell.requests,
        successes=cell.successes,
        failures=cell.failures,
        errors=dict(cell.errors),
        in_flight=cell.in_flight,
        cached=cell.cached,
        input_tokens=cell.input_tokens,
        output_tokens=cell.output_tokens,
        cost=None if cell.unpriced else cell.cost,
        known_cost=cell.cost,
        unpriced_requests=cell.unpriced,
        latency_ewma=cell.ewma_latency,
        latency_p50=_q(cell.latency_sketch, 0.5),
        latency_p95=_q(cell.latency_sketch, 0.95),
        latency_p99=_q(cell.latency_sketch, 0.99),
        ttft_ewma=cell.ewma_ttft,
        ttft_p50=_q(cell.ttft_sketch, 0.5),
        ttft_p95=_q(cell.ttft_sketch, 0.95),
        ttft_p99=_q(cell.ttft_sketch, 0.99),
        tpot=cell.ewma_tpot,
        availability=1.0 if total5 == 0 else max(0.0, 1.0 - errors5 / total5),
        request_rate=cell.win_requests.rate(now),
        error_rate=cell.win_errors.rate(now),
    )


def merged_snapshot(key: str, cells: list[_Cell], now: float) -> GroupSnapshot:
    from .snapshot import GroupSnapshot

    latency = QuantileSketch()
    requests = failures = tin = tout = unpriced_requests = 0
    cost = Decimal(0)
    rate: dict[str, float] = {}
    for cell in cells:
        latency.merge(cell.latency_sketch)
        requests += cell.requests
        failures += cell.failures
        tin += cell.input_tokens
        tout += cell.output_tokens
        cost += cell.cost
        unpriced_requests += cell.unpriced
        for label, value in cell.win_requests.rate(now).items():
            rate[label] = rate.get(label, 0.0) + value
    return GroupSnapshot(
        key=key,
        requests=requests,
        failures=failures,
        input_tokens=tin,
        output_tokens=tout,
        cost=None if unpriced_requests else cost,
        known_cost=cost,
        unpriced_requests=unpriced_requests,
        latency_p50=latency.quantile(0.5),
        latency_p95=latency.quantile(0.95),
        latency_p99=latency.quantile(0.99),
        request_rate=rate,
    )


def group_snapshot(key: str, cell: _GroupCell, now: float) -> GroupSnapshot:
    from .snapshot import GroupSnapshot

    return GroupSnapshot(
        key=key,
        requests=cell.requests,
        failures=cell.failures,
        input_tokens=cell.input_tokens,
        output_tokens=cell.output_tokens,
        cost=None if cell.unpriced else cell.cost,
        known_cost=cell.cost,
        unpriced_requests=cell.unpriced,
        latency_p50=cell.latency.quantile(0.5),
        latency_p95=cell.latency.quantile(0.95),
        latency_p99=cell.latency.quantile(0.99),
        request_rate=cell.window.rate(now),
    )
