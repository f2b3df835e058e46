"""``multimodel report``: a usage report from the ledger, as tables, JSON or one HTML page.

Plain-text tables by default; `rich <https://rich.readthedocs.io>`_ tables on a terminal when
``rich`` is installed (``pip install 'multimodel[cli]'``; imported only when rendering). ``--json`` prints
the :class:`~multimodel.reports.Report` as JSON; ``--html PATH`` writes one self-contained page
with SVG charts (see :mod:`multimodel.cli._report_html`).

The ledger is ``--ledger``, else ``$MULTIMODEL_LEDGER``, else ``./multimodel-usage.sqlite3``.
Exit codes: 0 ok, 1 no readable ledger, 2 unreadable ``--since``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import textwrap
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..reports import Report

__all__ = [
    "DEFAULT_LEDGER",
    "fmt_cost",
    "fmt_known_cost",
    "fmt_latency",
    "fmt_pct",
    "render_text",
    "resolve_ledger",
    "run_report",
    "sections",
]

DEFAULT_LEDGER = "multimodel-usage.sqlite3"
"""The ledger file read when neither ``--ledger`` nor ``$MULTIMODEL_LEDGER`` is given."""

NOTHING = "nothing to recommend (or too little data: each rule needs 20 attempts)"
Section = tuple[str, list[str], list[list[str]]]
"""A table: title, column headers, rows of cells (text)."""


def fmt_cost(value: Decimal | None) -> str:
    """USD with 4 decimals (6 below a cent), ``-`` when unknown."""
    if value is None:
        return "-"
    return f"${value:.6f}" if 0 < abs(value) < Decimal("0.01") else f"${value:.4f}"


def fmt_known_cost(row: Any) -> str:
    """A row's cost; with unpriced attempts, the known part and how many are unpriced (an
    unknown price is not shown as ``$0``)."""
    if row.unpriced_requests:
        return f"{fmt_cost(row.known_cost)} + {row.unpriced_requests} unpriced"
    return fmt_cost(row.cost)


def fmt_latency(seconds: float | None) -> str:
    """Milliseconds below one second, seconds above; ``-`` when unknown."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_pct(rate: float) -> str:
    """A 0..1 rate as a percentage with one decimal."""
    return f"{rate:.1%}"


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def heading(report: Report) -> str:
    """One line: the period, bucket size and ledger file."""
    p = report.period
    return (
        f"Usage report {_when(p.start)} -> {_when(p.end)} UTC "
        f"({p.granularity}ly buckets), ledger {report.ledger}"
    )


def sections(report: Report) -> list[Section]:
    """The report's tables (totals, models, providers, deployments) for every renderer."""
    t = report.totals
    out: list[Section] = [
        (
            "Totals",
            ["requests", "ok", "errors", "error rate", "cost", "tokens in", "tokens out",
             "avg latency", "p95 latency", "cache hits", "users"],
            [[str(t.requests), str(t.successes), str(t.errors), fmt_pct(t.error_rate),
              fmt_known_cost(t), f"{t.input_tokens:,}", f"{t.output_tokens:,}",
              fmt_latency(t.avg_latency), fmt_latency(t.p95_latency if t.requests else None),
              fmt_pct(t.cache_hit_rate), str(t.users)]],
        ),
        (
            "Models (most expensive first)",
            ["model", "providers", "requests", "share", "error rate", "cost", "cost share",
             "$/success", "p50", "p95"],
            [[m.model, ", ".join(m.providers), str(m.requests), fmt_pct(m.request_share),
              fmt_pct(m.error_rate), fmt_known_cost(m), fmt_pct(m.cost_share),
              fmt_cost(m.cost_per_success), fmt_latency(m.p50_latency),
              fmt_latency(m.p95_latency)] for m in report.models],
        ),
        (
            "Providers",
            ["provider", "requests", "error rate", "cost", "cost share"],
            [[p.provider, str(p.requests), fmt_pct(p.error_rate), fmt_known_cost(p),
              fmt_pct(p.cost_share)] for p in report.providers],
        ),
        (
            "Deployments",
            ["deployment", "model", "provider", "requests", "error rate", "p50", "p95", "p99"],
            [[d.deployment, d.model, d.provider, str(d.requests), fmt_pct(d.error_rate),
              fmt_latency(d.p50_latency), fmt_latency(d.p95_latency),
              fmt_latency(d.p99_latency)] for d in report.deployments],
        ),
    ]  # fmt: skip
    if report.quality:
        out.append(
            (
                "Learned quality (feedback scores per model and task)",
                ["model", "task", "scores", "mean score"],
                [[q.model, q.task, str(q.scores), f"{q.mean_score:.3f}"] for q in report.quality],
            )
        )
    return out


def _plain(headers: list[str], rows: list[list[str]]) -> str:
    """One plain-text table: numbers right-aligned, everything else left-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    left = [not rows or not all(_looks_numeric(r[i]) for r in rows) for i in range(len(headers))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if is_left else c.rjust(w)
            for c, w, is_left in zip(cells, widths, left, strict=True)
        ).rstrip()

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ([fmt(row) for row in rows] or ["(none)"]))


def render_text(report: Report) -> str:
    """The report as plain-text tables (no colour, no optional dependency)."""
    lines = [heading(report), ""]
    for title, headers, rows in sections(report):
        lines += [title, _plain(headers, rows)]
        lines.append("")
    lines.append("Recommendations")
    for r in report.recommendations:
        lines += textwrap.wrap(f"{r.kind}: {r.message}", 100, initial_indent=f"- [{r.severity}] ",
                               subsequent_indent="  ")  # fmt: skip
    if not report.recommendations:
        lines.append(f"- {NOTHING}")
    lines.append("")
    top = report.top_models
    lines.append(f"Top models by requests: {', '.join(top.by_requests) or '-'}")
    lines.append(f"Top models by cost:     {', '.join(top.by_cost) or '-'}")
    return "\n".join(lines)


def _looks_numeric(cell: str) -> bool:
    text = cell.replace("$", "").replace(",", "").replace("%", "").split(" ")[0]
    try:
        float(text)
    except ValueError:
        return cell == "-"
    return True


def _print_rich(report: Report) -> None:
    """Print the report with ``rich`` tables (the module is imported here, not at import)."""
    console_mod: Any = importlib.import_module("rich.console")
    table_mod: Any = importlib.import_module("rich.table")
    text: Any = importlib.import_module("rich.text").Text  # cells are text, never markup
    console = console_mod.Console(file=sys.stdout)
    plain: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}
    console.print(heading(report), style="bold", **plain)
    for title, headers, rows in sections(report):
        if title == "Totals":  # one row of many columns reads better transposed
            headers, rows = ["", "value"], [[h, c] for h, c in zip(headers, rows[0], strict=True)]
        table = table_mod.Table(title=title, title_justify="left")
        for i, header in enumerate(headers):
            width = max([len(header), *(len(r[i]) for r in rows)])
            if i > 0 and all(_looks_numeric(r[i]) for r in rows):  # numbers never truncate
                table.add_column(header, justify="right", no_wrap=True, min_width=width)
            else:  # names fold onto more lines rather than vanish
                table.add_column(header, overflow="fold", min_width=min(width, 14))
        for row in rows:
            table.add_row(*map(text, row))
        needed = sum(c.min_width + 3 for c in table.columns) + 1  # cells + padding + borders
        if needed > console.width:  # a terminal too narrow to show every figure: plain text
            console.print(f"{title}\n{_plain(headers, rows)}\n", **plain)
        else:
            console.print(table)
    recs = table_mod.Table(title="Recommendations", title_justify="left")
    for header in ("severity", "kind", "advice"):
        recs.add_column(header, overflow="fold")
    for r in report.recommendations:
        recs.add_row(r.severity, r.kind, text(r.message))
    console.print(recs if report.recommendations else f"Recommendations: {NOTHING}", **plain)
    top = report.top_models
    console.print(f"Top models by requests: {', '.join(top.by_requests) or '-'}", **plain)
    console.print(f"Top models by cost:     {', '.join(top.by_cost) or '-'}", **plain)


def _use_rich() -> bool:
    """Rich tables on a terminal when ``rich`` is installed; plain text when piped."""
    return sys.stdout.isatty() and importlib.util.find_spec("rich") is not None


def resolve_ledger(path: str | None) -> Path:
    """``path``, else ``$MULTIMODEL_LEDGER``, else :data:`DEFAULT_LEDGER` in the current dir."""
    return Path(path or os.environ.get("MULTIMODEL_LEDGER") or DEFAULT_LEDGER)


def run_report(
    *,
    ledger: str | None = None,
    since: str = "24h",
    html: str | None = None,
    as_json: bool = False,
    now: float | None = None,
) -> int:
    """Run ``multimodel report``; returns the exit code."""
    from ..reports import build_report
    from ..tracking.ledger import LedgerError, UsageLedger, parse_since

    try:
        parse_since(since)
    except ValueError as exc:
        print(f"multimodel report: bad --since: {exc}", file=sys.stderr)
        return 2
    path = resolve_ledger(ledger)
    if not path.is_file():
        print(
            f"multimodel report: no usage ledger at {path} (pass --ledger PATH or set "
            "MULTIMODEL_LEDGER; a client writes one when given ledger=PATH)",
            file=sys.stderr,
        )
        return 1
    try:
        report = build_report(UsageLedger(path), since=since, now=now)
    except LedgerError as exc:
        print(f"multimodel report: {exc}", file=sys.stderr)
        return 1
    if html is not None:
        from ._report_html import render_html

        try:
            Path(html).write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            print(f"multimodel report: cannot write {html}: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {html}", file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(report.model_dump_json(indent=2))
    elif _use_rich():
        _print_rich(report)
    else:
        print(render_text(report))
    return 0
