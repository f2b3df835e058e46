"""Run the mock provider server in a child process.

The in-process :class:`~multimodel.testing.MockProviderServer` shares the GIL with the code
under test; for benchmarks and the demo, a separate process gives the client a core of its own::

    with MockServerProcess({"fast": MockDeployment(format="openai")}) as server:
        client = multimodel.Client(deployments=[
            multimodel.Deployment(model="m", provider="openai", api_key="sk-test",
                                  base_url=server.base_url("fast")),
        ])

The child stops when the context exits (its stdin is closed, then it is terminated).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from types import TracebackType
from typing import Any

from .behavior import MockDeployment

__all__ = ["MockServerProcess"]

_PREFIX = {"openai": "v1", "anthropic": "v1", "gemini": "v1beta"}


class MockServerProcess:
    """A :class:`~multimodel.testing.MockProviderServer` in a child Python process."""

    def __init__(self, deployments: dict[str, MockDeployment], *, start_timeout: float = 20.0):
        self._deployments = dict(deployments)
        self._timeout = start_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._config: str | None = None
        self.url = ""

    def base_url(self, name: str) -> str:
        """The base URL a client uses for deployment ``name``."""
        fmt = self._deployments[name].format
        return f"{self.url}/{name}/{_PREFIX[fmt]}"

    def start(self) -> MockServerProcess:
        """Start the child and wait for its ``READY`` line."""
        scenario = {
            "deployments": {
                name: {
                    "format": dep.format,
                    "model": dep.model,
                    "behavior": _behavior_dict(dep),
                }
                for name, dep in self._deployments.items()
            }
        }
        fd, self._config = tempfile.mkstemp(prefix="multimodel-mock-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(scenario, fh)
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "multimodel.testing.server",
                "--port",
                "0",
                "--config",
                self._config,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the mock server process did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        return self

    def stop(self) -> None:
        """Stop the child (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._config is not None:
            os.unlink(self._config)
            self._config = None

    def __enter__(self) -> MockServerProcess:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _behavior_dict(dep: MockDeployment) -> dict[str, Any]:
    data = dataclasses.asdict(dep.behavior)
    data["tool_calls"] = [list(c) for c in dep.behavior.tool_calls]
    data["script"] = list(dep.behavior.script)
    if data.get("usage") is None:
        data.pop("usage", None)
    return data
