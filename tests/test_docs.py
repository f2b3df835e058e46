"""The documentation's code samples run, and the docs build without a warning.

Every ```python fenced block in ``docs/**/*.md`` and ``README.md`` is a sample. The blocks of one
page run in order, in one fresh namespace, in a temporary working directory; samples that need
a provider start :class:`multimodel.testing.MockProviderServer` themselves, visibly, so what the
reader copies is what ran. A block is left out only when the line just before its fence says
why (see ``docs/contributing.md``)::

    <!-- docs-test: skip needs a real OpenAI key -->
    <!-- docs-test: min-python 3.11 -->

When Sphinx is installed (the ``docs`` extra), the site is also built with
``-W --keep-going``, so a broken reference or a docstring that does not parse fails here. The
test uses Sphinx's ``dummy`` builder: it reads every page, runs autodoc and resolves every
reference like the HTML build, but writes no HTML (about a third of the time). ``nox -s docs``
runs the full HTML build.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts) + [ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>[a-z-]+)\s*(?P<arg>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a page."""

    path: Path
    line: int  # 1-based line of the first code line
    code: str
    skip: str | None  # why it does not run, if it does not


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of ``path`` in order, with their markers applied."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        language = match["info"].split()[0] if match["info"].split() else ""
        start = i + 1
        j = start
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if (
                close is not None
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            j += 1
        if language in ("python", "py", "python3"):
            body = [line[indent:] if line[:indent].isspace() else line for line in lines[start:j]]
            blocks.append(Block(path, start + 1, "\n".join(body) + "\n", _skip_reason(lines, i)))
        elif language.startswith("{") and "python" in match["info"]:
            raise AssertionError(
                f"{path.relative_to(ROOT)}:{i + 1}: Python in a {language} directive is never "
                "run; use a plain ```python fence"
            )
        i = j + 1
    return blocks


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    k = fence_index - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    marker = _MARKER.match(lines[k]) if k >= 0 else None
    if marker is None:
        return None
    what, arg = marker["what"], marker["arg"]
    if what == "skip":
        if not arg:
            raise AssertionError(f"line {k + 1}: 'docs-test: skip' needs a reason")
        return arg
    if what == "min-python":
        wanted = tuple(int(p) for p in arg.split("."))
        return None if sys.version_info >= wanted else f"needs Python {arg}+"
    raise AssertionError(f"line {k + 1}: unknown docs-test marker {what!r}")


def _close_leftovers(namespace: dict[str, Any]) -> None:
    """Stop servers and close clients a page left open, so no socket outlives its test."""
    from multimodel import Client
    from multimodel.testing import MockProviderServer
    from multimodel.testing.process import MockServerProcess
    from multimodel.tracking import UsageLedger

    for value in list(namespace.values()):
        if isinstance(value, Client):
            value.close()
        elif isinstance(value, MockProviderServer | MockServerProcess):
            value.stop()
        elif isinstance(value, UsageLedger):
            value.close()


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_samples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page)
    runnable = [b for b in blocks if b.skip is None]
    if not runnable:
        pytest.skip("no runnable Python samples")
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.endswith("_API_KEY")]:
        monkeypatch.delenv(var)  # samples must not depend on the developer's keys
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    try:
        for block in runnable:
            # Pad with blank lines so tracebacks point at the page's own line numbers.
            source = "\n" * (block.line - 1) + block.code
            exec(compile(source, str(page), "exec"), namespace)
    finally:
        _close_leftovers(namespace)


def test_every_page_is_covered() -> None:
    """Markers are well formed, and the docs have samples at all (the glob found the pages)."""
    total = [b for page in PAGES for b in python_blocks(page)]
    assert len(total) > 20
    assert all(b.skip is None or b.skip.strip() for b in total)


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("sphinx", "myst_parser", "furo")),
    reason="needs the docs extra: pip install 'multimodel[docs]'",
)
def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "dummy",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout
