"""The ``multimodel report --html`` page: one self-contained file, charts drawn as inline SVG.

Nothing is fetched: the CSS, the SVG (generated here) and a few lines of JavaScript are inline,
so the page works from ``file://`` and offline. Four charts, each an ``<svg class="chart">``
whose drawn marks carry ``data-series`` (and ``data-value``) attributes:

* ``#chart-cost`` — cost per time bucket, stacked bars by model (``<rect data-series=MODEL>``);
* ``#chart-latency`` — p50/p95/p99 latency per deployment, grouped bars
  (``<rect data-series="p50|p95|p99" data-deployment=NAME>``);
* ``#chart-errors`` — error rate per bucket, a line (``<path data-series="error-rate">``) and
  its points (``<circle data-series="error-rate">``);
* ``#chart-share`` — share of attempts per model, a donut (``<path data-series=MODEL>``).

The inline script only checks the drawing: it stamps each chart with how many marks it holds
and the size of their bounding box as laid out by the browser (``data-drawn``,
``data-drawn-box``), and sets ``data-charts-drawn`` on ``<body>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING

from .report import fmt_cost, fmt_known_cost, fmt_latency, fmt_pct, heading, sections

if TYPE_CHECKING:
    from ..reports import Report

__all__ = ["render_html"]

PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
W, H = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44
MAX_DEPLOYMENTS = 12

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#666;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:10px 14px;min-width:110px}
.card b{display:block;font-size:18px}.card span{color:#666;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
figure{background:#fff;border:1px solid #e3e5e8;border-radius:8px;margin:0;padding:12px}
figcaption{font-weight:600;margin-bottom:6px}
svg.chart{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:#555}
.axis{stroke:#bbb}.grid-line{stroke:#eee}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:10px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:5px 8px;text-align:left}
th{background:#fafbfc}td.n{text-align:right;font-variant-numeric:tabular-nums}
.rec{background:#fff;border-left:4px solid #4e79a7;padding:8px 12px;margin:6px 0}
.rec.warning{border-color:#e15759}
"""

_JS = """
(function () {
  var drawn = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var marks = svg.querySelectorAll("[data-series]");
    var w = 0, h = 0;
    var plot = svg.querySelector("g.plot");
    if (plot && marks.length) { var b = plot.getBBox(); w = b.width; h = b.height; }
    svg.setAttribute("data-drawn", String(marks.length));
    svg.setAttribute("data-drawn-box", Math.round(w) + "x" + Math.round(h));
    if (marks.length && w > 0 && h > 0) { drawn += 1; }
  });
  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _label(start: datetime, granularity: str) -> str:
    return start.strftime("%H:%M" if granularity == "hour" else "%m-%d")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value)


def _frame(chart_id: str, title: str, body: list[str], y_max: float, y_fmt: str) -> str:
    """An ``<svg>`` with a y axis (4 gridlines labelled with ``y_fmt``) around ``body``."""
    svg = f'<svg id="{chart_id}" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label='
    out = [f'{svg}"{_e(title)}">']
    plot_h = H - TOP - BOTTOM
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line class="grid-line" x1="{LEFT}" x2="{W - RIGHT}" y1="{_n(y)}" '
                   f'y2="{_n(y)}"/>')  # fmt: skip
        out.append(f'<text x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">'
                   f"{_e(y_fmt.format(y_max * i / 4))}</text>")  # fmt: skip
    out.append(f'<line class="axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{TOP + plot_h}" '
               f'y2="{TOP + plot_h}"/>')  # fmt: skip
    out.append('<g class="plot">')
    out += body
    out.append("</g></svg>")
    return "".join(out)


def _empty(chart_id: str, message: str) -> str:
    return (
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {W} {H}" role="img">'
        f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">{_e(message)}</text></svg>'
    )


def _x_labels(starts: Sequence[datetime], granularity: str, slot: float) -> list[str]:
    step = max(1, math.ceil(len(starts) / 12))
    return [
        f'<text x="{_n(LEFT + slot * (i + 0.5))}" y="{H - BOTTOM + 16}" text-anchor="middle">'
        f"{_e(_label(s, granularity))}</text>"
        for i, s in enumerate(starts)
        if i % step == 0
    ]


def cost_chart(report: Report, colors: dict[str, str]) -> str:
    """Stacked bars: cost per bucket, one segment per model."""
    series = report.series
    totals = [sum(col, Decimal(0)) for col in zip(*series.cost_by_model.values(), strict=True)]
    if not totals or max(totals) <= 0:
        return _empty("chart-cost", "no priced requests in this period")
    y_max = _nice_max(float(max(totals)))
    slot = (W - LEFT - RIGHT) / len(totals)
    plot_h = H - TOP - BOTTOM
    body: list[str] = []
    for i, start in enumerate(series.starts):
        base = 0.0
        for model, costs in series.cost_by_model.items():
            value = float(costs[i])
            if value <= 0:
                continue
            h = plot_h * value / y_max
            y = TOP + plot_h - plot_h * base / y_max - h
            base += value
            body.append(
                f'<rect x="{_n(LEFT + slot * i + slot * 0.1)}" y="{_n(y)}" '
                f'width="{_n(slot * 0.8)}" height="{_n(max(h, 0.5))}" fill="{colors[model]}" '
                f'data-series="{_e(model)}" data-bucket="{_e(start.isoformat())}" '
                f'data-value="{_e(costs[i])}"><title>{_e(model)} '
                f"{_e(_label(start, report.period.granularity))}: {_e(fmt_cost(costs[i]))}"
                "</title></rect>"
            )
    body += _x_labels(series.starts, report.period.granularity, slot)
    return _frame("chart-cost", "cost over time by model", body, y_max, "${:.4g}")


def latency_chart(report: Report) -> str:
    """Grouped bars: p50, p95 and p99 latency of the busiest deployments."""
    deployments = report.deployments[:MAX_DEPLOYMENTS]
    if not deployments:
        return _empty("chart-latency", "no requests in this period")
    y_max = _nice_max(max(d.p99_latency for d in deployments))
    slot = (W - LEFT - RIGHT) / len(deployments)
    plot_h = H - TOP - BOTTOM
    bar = slot * 0.8 / 3
    body: list[str] = []
    for i, d in enumerate(deployments):
        for j, (name, value) in enumerate(
            (("p50", d.p50_latency), ("p95", d.p95_latency), ("p99", d.p99_latency))
        ):
            h = plot_h * value / y_max
            body.append(
                f'<rect x="{_n(LEFT + slot * i + slot * 0.1 + bar * j)}" '
                f'y="{_n(TOP + plot_h - h)}" width="{_n(bar * 0.92)}" height="{_n(max(h, 0.5))}" '
                f'fill="{_color(j)}" data-series="{name}" data-deployment="{_e(d.deployment)}" '
                f'data-value="{value:.6f}"><title>{_e(d.deployment)} {name}: '
                f"{_e(fmt_latency(value))}</title></rect>"
            )
        name = d.deployment if len(d.deployment) <= 16 else d.deployment[:15] + "…"
        body.append(f'<text x="{_n(LEFT + slot * (i + 0.5))}" y="{H - BOTTOM + 16}" '
                    f'text-anchor="middle">{_e(name)}</text>')  # fmt: skip
    return _frame("chart-latency", "latency by deployment", body, y_max, "{:.3g} s")


def error_chart(report: Report) -> str:
    """A line: the error rate per bucket (gaps where a bucket saw no attempts)."""
    series = report.series
    points = [(i, r) for i, r in enumerate(series.error_rate) if r is not None]
    if not points:
        return _empty("chart-errors", "no requests in this period")
    y_max = _nice_max(max(0.05, *(r for _, r in points)))
    slot = (W - LEFT - RIGHT) / len(series.error_rate)
    plot_h = H - TOP - BOTTOM
    body: list[str] = []
    path: list[str] = []
    previous = -2
    for i, rate in points:
        x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * rate / y_max
        path.append(f"{'L' if i == previous + 1 else 'M'}{_n(x)} {_n(y)}")
        previous = i
        body.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="#e15759" data-series="error-rate" '
            f'data-bucket="{_e(series.starts[i].isoformat())}" data-value="{rate:.6f}">'
            f"<title>{_e(_label(series.starts[i], report.period.granularity))}: "
            f"{fmt_pct(rate)}</title></circle>"
        )
    body.insert(0, f'<path d="{" ".join(path)}" fill="none" stroke="#e15759" stroke-width="2" '
                   'data-series="error-rate"/>')  # fmt: skip
    body += _x_labels(series.starts, report.period.granularity, slot)
    return _frame("chart-errors", "error rate over time", body, y_max, "{:.0%}")


def share_chart(report: Report, colors: dict[str, str]) -> str:
    """A donut: each model's share of the period's attempts."""
    shares = [(m, s) for m, s in report.series.model_share.items() if s > 0]
    if not shares:
        return _empty("chart-share", "no requests in this period")
    cx, cy, outer, inner = W / 2, H / 2, H / 2 - 20, H / 4 - 10
    body: list[str] = []
    angle = -math.pi / 2
    for model, share in shares:
        sweep = 2 * math.pi * min(share, 0.999999)
        a0, a1 = angle, angle + sweep
        large = 1 if sweep > math.pi else 0
        p = [
            (cx + outer * math.cos(a0), cy + outer * math.sin(a0)),
            (cx + outer * math.cos(a1), cy + outer * math.sin(a1)),
            (cx + inner * math.cos(a1), cy + inner * math.sin(a1)),
            (cx + inner * math.cos(a0), cy + inner * math.sin(a0)),
        ]
        d = (
            f"M{_n(p[0][0])} {_n(p[0][1])} A{_n(outer)} {_n(outer)} 0 {large} 1 "
            f"{_n(p[1][0])} {_n(p[1][1])} L{_n(p[2][0])} {_n(p[2][1])} A{_n(inner)} {_n(inner)} "
            f"0 {large} 0 {_n(p[3][0])} {_n(p[3][1])} Z"
        )
        body.append(
            f'<path d="{d}" fill="{colors[model]}" stroke="#fff" data-series="{_e(model)}" '
            f'data-value="{share:.6f}"><title>{_e(model)}: {fmt_pct(share)}</title></path>'
        )
        angle = a1
    return (
        f'<svg id="chart-share" class="chart" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="model share"><g class="plot">{"".join(body)}</g></svg>'
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<ul class="legend">' + "".join(
        f'<li><i style="background:{color}"></i>{_e(name)}</li>' for name, color in items
    ) + "</ul>"  # fmt: skip


def _table(headers: list[str], rows: list[list[str]]) -> str:
    numeric = [i > 0 and all(r[i][:1].isdigit() or r[i][:1] == "$" for r in rows)
               for i in range(len(headers))]  # fmt: skip
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{_e(c)}</td>' if numeric[i] else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS, SVG and script; no network)."""
    colors = {m: _color(i) for i, m in enumerate(report.series.model_share)}
    models = list(colors.items())
    t = report.totals
    cards = [
        ("requests", str(t.requests)), ("error rate", fmt_pct(t.error_rate)),
        ("cost", fmt_known_cost(t)), ("avg latency", fmt_latency(t.avg_latency)),
        ("p95 latency", fmt_latency(t.p95_latency if t.requests else None)),
        ("cache hits", fmt_pct(t.cache_hit_rate)), ("users", str(t.users)),
    ]  # fmt: skip
    recs = (
        "".join(
            f'<div class="rec {_e(r.severity)}" data-kind="{_e(r.kind)}"><b>{_e(r.kind)}</b> '
            f"{_e(r.message)}</div>"
            for r in report.recommendations
        )
        or "<p>Nothing to recommend (each rule needs at least 20 attempts of data).</p>"
    )
    tables = "".join(
        f"<h2>{_e(title)}</h2>{_table(headers, rows)}"
        for title, headers, rows in sections(report)[1:]
    )
    figures = [
        ("Cost over time by model", cost_chart(report, colors), _legend(models)),
        ("Latency by deployment (p50 / p95 / p99)", latency_chart(report),
         _legend([("p50", _color(0)), ("p95", _color(1)), ("p99", _color(2))])),
        ("Error rate over time", error_chart(report), ""),
        ("Share of requests by model", share_chart(report, colors), _legend(models)),
    ]  # fmt: skip
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>multimodel usage report</title><style>{_CSS}</style></head><body><main>"
        f"<h1>multimodel usage report</h1><p class=\"sub\">{_e(heading(report))}</p>"
        '<div class="cards">'
        + "".join(f"<div class=\"card\"><b>{_e(v)}</b><span>{_e(k)}</span></div>"
                  for k, v in cards)
        + "</div><h2>Recommendations</h2>" + recs + '<h2>Charts</h2><div class="grid">'
        + "".join(f"<figure><figcaption>{_e(c)}</figcaption>{svg}{legend}</figure>"
                  for c, svg, legend in figures)
        + f"</div>{tables}</main><script>{_JS}</script></body></html>\n"
    )  # fmt: skip
