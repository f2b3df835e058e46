"""The ``--html`` report in a real headless Chromium: the four charts are laid out and drawn.

Needs a ``chromium`` binary (``apt-get install -y chromium`` on Debian/Ubuntu); skipped without
one. The page's inline script stamps each chart with its mark count and the size of the marks'
bounding box as computed by the browser, so ``--dump-dom`` proves the SVG was rendered, and the
screenshot proves pixels were painted.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from multimodel.cli import main

CHARTS = ("chart-cost", "chart-latency", "chart-errors", "chart-share")


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "chromium",
                      "chromium-browser", "google-chrome"):  # fmt: skip
        if candidate and (found := shutil.which(candidate)):
            return found
    pytest.skip("no chromium binary (install it: apt-get install -y chromium)")


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) scanlines of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location(
        "report_cli_helpers", Path(__file__).with_name("test_report_cli.py")
    )
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)  # reuse its ledger seeding
    make_ledger = helpers.make_ledger
    root = tmp_path_factory.mktemp("browser")
    ledger = make_ledger(root / "usage.sqlite3")
    out = root / "report.html"
    assert main(["report", "--ledger", str(ledger), "--json", "--html", str(out)]) == 0
    return out


def test_charts_are_drawn_in_dom(page: Path, tmp_path: Path) -> None:
    done = headless(chromium(), tmp_path / "profile", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert re.search(r'<body[^>]*data-charts-drawn="4"', dom), dom[:500]
    for chart in CHARTS:
        tag = re.search(rf'<svg id="{chart}"[^>]*>', dom)
        assert tag, chart
        marks = re.search(r'data-drawn="(\d+)"', tag.group(0))
        box = re.search(r'data-drawn-box="(\d+)x(\d+)"', tag.group(0))
        assert marks and int(marks.group(1)) > 0, tag.group(0)
        assert box and int(box.group(1)) > 50 and int(box.group(2)) > 50, tag.group(0)
    assert dom.count('data-series="p99"') == 3


def test_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = headless(chromium(), tmp_path / "profile", "--window-size=1200,1600",
                    f"--screenshot={shot}", page.as_uri())  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 20_000
    width, height, raw = png_pixels(data)
    assert (width, height) == (1200, 1600)
    assert len(set(raw)) > 64  # many distinct byte values: text, bars, colours, not one fill
