"""Shared fixtures: async tests run on asyncio and trio."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    """Which multimodel is under test: the installed wheel in CI, src/ in an editable install."""
    import multimodel

    return f"multimodel {multimodel.__version__} from {Path(multimodel.__file__).parent}"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _hypothesis_profile() -> None:
    # In CI, generate the same examples every run: a red build must be reproducible.
    import os

    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profile()
