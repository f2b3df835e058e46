"""pytest fixtures for the mock provider server.

Installing multimodel registers this module as a pytest plugin (entry point ``pytest11``), so
the fixtures are available in any test suite::

    def test_something(mock_server):
        url = mock_server.base_url("openai-mock")  # also "anthropic-mock", "gemini-mock"
        ...

    def test_custom(mock_server_factory):
        server = mock_server_factory(
            {"slow": MockDeployment(format="openai", behavior=Behavior(latency=0.2))}
        )
        ...

Every server is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from .behavior import MockDeployment, default_deployments
from .server import MockProviderServer

__all__ = ["MockServerFactory", "mock_server", "mock_server_factory"]

#: ``factory(deployments=None, **server_kwargs) -> started MockProviderServer``.
MockServerFactory = Callable[..., MockProviderServer]


@pytest.fixture
def mock_server() -> Iterator[MockProviderServer]:
    """A started server with ``openai-mock``, ``anthropic-mock`` and ``gemini-mock``."""
    with MockProviderServer(deployments=default_deployments()) as server:
        yield server


@pytest.fixture
def mock_server_factory() -> Iterator[MockServerFactory]:
    """A callable starting servers with custom deployments; all are stopped at teardown.

    ``deployments=None`` gives the three default deployments; keyword arguments go to
    :class:`MockProviderServer` (``port``, ``max_recorded``, ``tls``).
    """
    servers: list[MockProviderServer] = []

    def factory(
        deployments: Mapping[str, MockDeployment] | None = None, **kwargs: Any
    ) -> MockProviderServer:
        server = MockProviderServer(deployments, **kwargs)
        servers.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in reversed(servers):
            server.stop()
