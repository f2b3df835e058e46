"""Every ``examples/*.py`` runs to completion against the bundled mock providers.

Each script runs in a subprocess with a clean environment (no provider API keys, so no
network) and must exit 0 within ``TIMEOUT`` seconds. They run in parallel, a few at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
TIMEOUT = 30.0  # per script; they are meant to finish in under 10 s
_PASS_THROUGH = ("PATH", "HOME", "TMPDIR", "TEMP", "TMP", "LANG", "LC_ALL", "SYSTEMROOT")


@dataclass
class Run:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


def _clean_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _run(path: Path) -> Run:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(path)],
            cwd=EXAMPLES_DIR.parent,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if exc.stdout else ""  # bytes, even with text
        return Run(None, out, f"timed out after {TIMEOUT} s", time.perf_counter() - started)
    return Run(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip((p.name for p in EXAMPLES), pool.map(_run, EXAMPLES), strict=True))


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "01_simple_query_auto.py",
        "04_model_status_events.py",
        "09_openai_sdk_switch.py",
    } <= names
    assert len(names) >= 9


@pytest.mark.parametrize("name", [p.name for p in EXAMPLES])
def test_example_runs(name: str, runs: dict[str, Run]) -> None:
    run = runs[name]
    detail = f"{name}: exit {run.returncode} after {run.seconds:.1f} s\n{run.stdout}\n{run.stderr}"
    assert run.returncode == 0, detail
    assert run.stdout.strip(), detail
    assert "Traceback" not in run.stderr, detail


def test_example_sources_are_short_and_documented() -> None:
    for path in EXAMPLES:
        text = path.read_text()
        assert len(text.splitlines()) < 100, path.name
        assert text.startswith('"""'), path.name
