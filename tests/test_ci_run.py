"""The test run tests what it claims to: the built wheel, with the extras the run is meant to have.

``nox -s tests`` (and so ``.ci/run``) sets ``MULTIMODEL_TEST_RUN`` to ``core`` (the wheel and
the test tooling only: tests that need an extra skip, with a reason naming the extra) or ``all``
(every extra installed: nothing may skip for a missing extra). These tests check that claim, so
a broken install cannot turn the all-extras run into a quiet core-only run, or the core-only
run into an editable run of ``src/``. Outside those runs they skip.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

import pytest

import multimodel

RUN = os.environ.get("MULTIMODEL_TEST_RUN")
ROOT = Path(__file__).resolve().parent.parent

# The modules each feature extra brings; test tooling (`test`) and aggregates are not features.
EXTRAS = {
    "aiohttp": ("aiohttp",),
    "cli": ("rich",),
    "redis": ("redis",),
    "crypto": ("cryptography",),
    "docs": ("sphinx", "myst_parser", "furo"),
}
NOT_FEATURES = {"test", "all", "dev"}

ci_run = pytest.mark.skipif(RUN is None, reason="not a nox test run (MULTIMODEL_TEST_RUN is unset)")


def test_every_extra_is_known() -> None:
    """A new extra in pyproject.toml must be added to EXTRAS, so the runs below check it."""
    declared = set(importlib.metadata.metadata("multimodel").get_all("Provides-Extra") or [])
    assert declared - NOT_FEATURES == set(EXTRAS)


@ci_run
def test_multimodel_comes_from_the_installed_wheel() -> None:
    location = Path(multimodel.__file__).resolve()
    assert ROOT / "src" not in location.parents, f"imported from the source tree: {location}"
    assert "site-packages" in location.parts, location
    # an editable install would also be in site-packages only as a .pth pointing back here
    files = importlib.metadata.files("multimodel") or []
    assert any(str(f).replace("\\", "/") == "multimodel/__init__.py" for f in files)


@ci_run
@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_installed_extras_match_the_run(extra: str) -> None:
    assert RUN in ("core", "all"), f"MULTIMODEL_TEST_RUN={RUN!r}: expected 'core' or 'all'"
    present = {m: importlib.util.find_spec(m) is not None for m in EXTRAS[extra]}
    if RUN == "all":
        assert all(present.values()), f"the all-extras run lacks the {extra} extra: {present}"
    else:
        assert not any(present.values()), f"the core-only run has the {extra} extra: {present}"


def test_readme_test_command_is_what_ci_runs() -> None:
    """The README's second command (set up, then the tests) is what .ci/run runs for the tests."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    setup, _, run_tests = commands.splitlines()[1].rpartition(" && ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert run_tests == "nox -s tests"
    assert setup in ci
    assert f"gate tests {run_tests}" in ci
    # docs/index.md opens with the same two commands
    assert commands in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
