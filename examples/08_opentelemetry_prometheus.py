"""08 - Metrics for Prometheus through OpenTelemetry.

multimodel records its metrics through ``opentelemetry-api`` only; the application chooses the
SDK and exporter. Here: an OpenTelemetry SDK ``MeterProvider`` with the ``PrometheusMetricReader``
(package ``opentelemetry-exporter-prometheus``), handed to the client as
``Telemetry(meter_provider=...)``, then the ``ai_multimodel_*`` series that a Prometheus scrape
would see, from ``prometheus_client.generate_latest()``. (In a server, call
``prometheus_client.start_http_server(9464)`` instead and scrape ``/metrics``.)

Needs ``pip install opentelemetry-sdk opentelemetry-exporter-prometheus``; without them it
prints that and exits. Runs against bundled mock providers by default (no API keys, no network;
one deployment fails 30 % of its requests, so error series appear too). With OPENAI_API_KEY
set it sends 5 short real requests to gpt-4o-mini instead.

    python examples/08_opentelemetry_prometheus.py
"""

from __future__ import annotations

import os

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.tracking.telemetry import Telemetry

try:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import REGISTRY, generate_latest
except ImportError as exc:
    MISSING: str | None = exc.name
else:
    MISSING = None

MODEL = "gpt-4o-mini"


def run(deployments: list[mm.Deployment], requests: int) -> None:
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    with mm.Client(
        deployments=deployments,
        strategy="round_robin",
        telemetry=Telemetry(meter_provider=provider),
    ) as client:
        for i in range(requests):
            client.query(f"metrics demo {i}", model=MODEL, max_tokens=16)
        lines = generate_latest(REGISTRY).decode().splitlines()
    shown = [
        line for line in lines if line.startswith("ai_multimodel_") and "_bucket{" not in line
    ]  # buckets omitted for brevity
    print(
        f"{len(shown)} ai_multimodel_* samples after {requests} requests "
        "(histogram buckets omitted):\n"
    )
    print("\n".join(shown))
    provider.shutdown()


def main() -> None:
    if MISSING is not None:
        print(
            f"this example needs the OpenTelemetry SDK and Prometheus exporter ({MISSING} "
            "is missing):\n  pip install opentelemetry-sdk opentelemetry-exporter-prometheus"
        )
        return
    if os.environ.get("OPENAI_API_KEY"):
        run([mm.Deployment(model=MODEL, provider="openai")], requests=5)
        return
    mocks = {
        "steady": MockDeployment("openai", Behavior(latency=0.01)),
        "flaky": MockDeployment("openai", Behavior(latency=0.01, fail_rate=0.3, seed=2)),
    }
    with MockProviderServer(mocks) as server:
        run(
            [
                mm.Deployment(
                    name=n,
                    model=MODEL,
                    provider="openai",
                    api_key="mock-key",
                    base_url=server.base_url(n),
                )
                for n in mocks
            ],
            requests=20,
        )


if __name__ == "__main__":
    main()
