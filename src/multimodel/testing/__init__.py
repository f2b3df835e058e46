"""Test helpers: a local mock LLM provider server speaking the real wire formats.

Example::

    from multimodel.testing import Behavior, MockDeployment, MockProviderServer

    with MockProviderServer(
        deployments={"fast": MockDeployment(format="openai", behavior=Behavior(latency=0.01))}
    ) as server:
        base_url = server.base_url("fast")  # http://127.0.0.1:PORT/fast/v1

pytest fixtures (``mock_server``, ``mock_server_factory``) live in
:mod:`multimodel.testing.fixtures`. :class:`MockProviderServer` is imported lazily so that
``python -m multimodel.testing.server`` does not import its own module twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .behavior import Behavior, DeploymentStats, MockDeployment, MockUsage, RecordedRequest

if TYPE_CHECKING:
    from .fake import FakeProvider, FakeReply
    from .process import MockServerProcess
    from .server import MockProviderServer

__all__ = [
    "Behavior",
    "DeploymentStats",
    "FakeProvider",
    "FakeReply",
    "MockDeployment",
    "MockProviderServer",
    "MockServerProcess",
    "MockUsage",
    "RecordedRequest",
]


_LAZY = {
    "FakeProvider": ".fake",
    "FakeReply": ".fake",
    "MockProviderServer": ".server",
    "MockServerProcess": ".process",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module, __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
