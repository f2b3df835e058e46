"""``multimodel report``: text, rich, JSON and HTML output, ledger resolution, exit codes."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from multimodel.cli import main
from multimodel.cli import report as report_cli
from multimodel.tracking.ledger import UsageLedger
from multimodel.tracking.outcome import Outcome
from multimodel.types import Usage


def make_ledger(path: Path) -> Path:
    """A ledger with three models over the last few hours (timestamps relative to now)."""
    now = time.time()
    ledger = UsageLedger(path, flush_interval=0.05)
    for i in range(30):
        for dep, model, provider, cost, latency in (
            ("oa-1", "gpt-4o", "openai", "0.010", 0.8),
            ("an-1", "claude-haiku", "anthropic", "0.002", 0.7),
            ("gm-1", "gemini-<b>&pro", "gemini", "0.020", 4.0),
        ):
            ok = not (dep == "an-1" and i % 5 == 0)
            ledger.record(
                Outcome(
                    deployment=dep, model=model, provider=provider, ok=ok,
                    latency=latency + i / 100, started_at=now - 600 - (i % 4) * 3600 - i,
                    usage=Usage(input_tokens=800, output_tokens=50) if ok else None,
                    cost=Decimal(cost) if ok else None, error=None if ok else "RateLimited",
                )
            )  # fmt: skip
    assert ledger.flush(10)
    ledger.close()
    return path


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return make_ledger(tmp_path / "usage.sqlite3")


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_cli, "_use_rich", lambda: False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("plain")
def test_text_tables(capsys: pytest.CaptureFixture[str], ledger_path: Path) -> None:
    code, out, err = run(capsys, "--ledger", str(ledger_path), "--since", "24h")
    assert code == 0, err
    assert out.startswith("Usage report ")
    assert "(hourly buckets)" in out
    for title in ("Totals", "Models (most expensive first)", "Providers", "Deployments",
                  "Recommendations"):  # fmt: skip
        assert f"\n{title}\n" in out
    totals_row = out.split("Totals\n")[1].splitlines()[2]
    assert re.match(r"\s*90\s+84\s+6\s+6\.7%\s+\$0\.9480\b", totals_row), totals_row
    assert "gemini-<b>&pro" in out
    # gpt-4o does gemini's job 50 % cheaper; claude-haiku is cheaper still but fails 20 %
    assert "[info] cheaper_model: gpt-4o served similar requests at 50% lower cost" in out
    assert "high_error_rate" in out  # an-1 fails 20 %
    assert "slow_model" in out  # gemini's p95 is ~5x the others'
    assert "Top models by cost:     gemini-<b>&pro, gpt-4o, claude-haiku" in out


@pytest.mark.parametrize("columns", ["200", "80"])
def test_rich_tables(capsys: pytest.CaptureFixture[str], ledger_path: Path,
                     monkeypatch: pytest.MonkeyPatch, columns: str) -> None:  # fmt: skip
    pytest.importorskip("rich", reason="needs the cli extra: pip install 'multimodel[cli]'")
    monkeypatch.setattr(report_cli, "_use_rich", lambda: True)
    monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = run(capsys, "--ledger", str(ledger_path))
    assert code == 0
    assert "┃ provider" in out  # rich tables
    # Every figure is shown: too wide a table for the terminal falls back to plain text.
    assert ("┃ model" in out) is (columns == "200")
    for figure in ("$0.9480", "$0.6000", "gm-1", "4.29 s", "20.0%", "gemini-<b>&pro"):
        assert figure in out
    assert "\x1b[" not in out  # not a terminal: no colour codes


def test_piped_output_is_plain(capsys: pytest.CaptureFixture[str], ledger_path: Path) -> None:
    code, out, _ = run(capsys, "--ledger", str(ledger_path))  # capsys: stdout is no terminal
    assert code == 0
    assert "\nDeployments\ndeployment  model" in out


def test_json(capsys: pytest.CaptureFixture[str], ledger_path: Path) -> None:
    code, out, _ = run(capsys, "--ledger", str(ledger_path), "--since", "7d", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["totals"]["requests"] == 90
    assert Decimal(data["totals"]["cost"]) == Decimal("0.948")
    assert data["period"]["granularity"] == "day"
    assert {m["model"] for m in data["models"]} == {"gpt-4o", "claude-haiku", "gemini-<b>&pro"}
    assert {r["kind"] for r in data["recommendations"]} == {
        "cheaper_model", "high_error_rate", "slow_model",
    }  # fmt: skip


@pytest.mark.usefixtures("plain")
def test_html(capsys: pytest.CaptureFixture[str], ledger_path: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "report.html"
    code, out, _ = run(capsys, "--ledger", str(ledger_path), "--html", str(out_file))
    assert code == 0
    assert f"wrote {out_file}" in out
    assert "Totals" in out  # the tables are still printed
    page = out_file.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for chart in ("chart-cost", "chart-latency", "chart-errors", "chart-share"):
        assert f'<svg id="{chart}" class="chart"' in page
    assert page.count("<rect ") >= 3 * 3  # latency bars alone: 3 deployments x 3 percentiles
    assert re.search(r'<rect [^>]*data-series="p95" data-deployment="gm-1"', page)
    assert re.search(r'<rect [^>]*data-series="gpt-4o" data-bucket="', page)
    assert re.search(r'<path [^>]*data-series="error-rate"', page)
    assert re.search(r'<path [^>]*data-series="claude-haiku"', page)
    # model names are escaped, and nothing is fetched from anywhere
    assert "gemini-&lt;b&gt;&amp;pro" in page
    assert "gemini-<b>" not in page
    assert not re.search(r"(src|href)=|https?://|@import|url\(", page)


def test_html_with_json_keeps_stdout_json(
    capsys: pytest.CaptureFixture[str], ledger_path: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "r.html"
    code, out, err = run(capsys, "--ledger", str(ledger_path), "--json", "--html", str(out_file))
    assert code == 0
    assert json.loads(out)["totals"]["requests"] == 90
    assert "wrote" in err
    assert out_file.is_file()


@pytest.mark.usefixtures("plain")
def test_empty_period_html(capsys: pytest.CaptureFixture[str], ledger_path: Path,
                           tmp_path: Path) -> None:  # fmt: skip
    out_file = tmp_path / "empty.html"
    code, out, _ = run(capsys, "--ledger", str(ledger_path), "--since", "1m", "--html",
                       str(out_file))  # fmt: skip
    assert code == 0
    assert "nothing to recommend" in out
    page = out_file.read_text(encoding="utf-8")
    assert 'id="chart-cost"' in page
    assert "no requests in this period" in page


@pytest.mark.usefixtures("plain")
def test_ledger_from_environment_and_default(
    capsys: pytest.CaptureFixture[str], ledger_path: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MULTIMODEL_LEDGER", str(ledger_path))
    code, out, _ = run(capsys)
    assert code == 0
    assert str(ledger_path) in out
    monkeypatch.delenv("MULTIMODEL_LEDGER")
    monkeypatch.chdir(tmp_path)
    make_ledger(tmp_path / "multimodel-usage.sqlite3")
    code, out, _ = run(capsys)
    assert code == 0
    assert "ledger multimodel-usage.sqlite3" in out


@pytest.mark.parametrize("since", ["yesterday", "24", "-1h", "1y"])
def test_bad_since_exits_2(capsys: pytest.CaptureFixture[str], ledger_path: Path,
                           since: str) -> None:  # fmt: skip
    code, out, err = run(capsys, "--ledger", str(ledger_path), f"--since={since}")
    assert code == 2
    assert out == ""
    assert "bad --since" in err


def test_missing_ledger_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.sqlite3"
    code, out, err = run(capsys, "--ledger", str(missing))
    assert code == 1
    assert out == ""
    assert f"no usage ledger at {missing}" in err
    assert not missing.exists()  # not created as a side effect
    monkeypatch.delenv("MULTIMODEL_LEDGER", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys)
    assert code == 1
    assert "multimodel-usage.sqlite3" in err


@pytest.mark.parametrize("content", ["plain text, not SQLite " * 50, ""])
def test_unreadable_ledger_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   content: str) -> None:  # fmt: skip
    path = tmp_path / "junk.sqlite3"
    path.write_text(content)
    code, _, err = run(capsys, "--ledger", str(path))
    assert code == 1
    assert "cannot read" in err


def test_unwritable_html_exits_1(capsys: pytest.CaptureFixture[str], ledger_path: Path,
                                 tmp_path: Path) -> None:  # fmt: skip
    code, _, err = run(capsys, "--ledger", str(ledger_path), "--html",
                       str(tmp_path / "no-such-dir" / "r.html"))  # fmt: skip
    assert code == 1
    assert "cannot write" in err


def test_help_lists_report(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--ledger", "--since", "--html", "--json"):
        assert option in out


def test_run_report_is_importable_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "rich", None)  # import rich -> ImportError
    import importlib

    module: Any = importlib.reload(report_cli)
    assert module.render_text is not None


def test_an_unknown_cost_is_not_shown_as_zero() -> None:
    from types import SimpleNamespace

    known = SimpleNamespace(cost=Decimal("1.5"), known_cost=Decimal("1.5"), unpriced_requests=0)
    partly = SimpleNamespace(cost=None, known_cost=Decimal("1.5"), unpriced_requests=3)
    unknown = SimpleNamespace(cost=None, known_cost=Decimal(0), unpriced_requests=2)
    assert report_cli.fmt_known_cost(known) == "$1.5000"
    assert report_cli.fmt_known_cost(partly) == "$1.5000 + 3 unpriced"
    assert report_cli.fmt_known_cost(unknown) == "$0.0000 + 2 unpriced"
