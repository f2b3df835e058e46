"""Output helpers shared by the ``models``, ``chat`` and ``simulate`` subcommands.

Conventions: plain text on stdout by default, ``--json`` for scripts (one JSON document on
stdout), errors as one line on stderr (``multimodel COMMAND: error: ...``). Exit codes: 0 ok,
1 failure, 2 usage error. ``rich`` (the ``multimodel[cli]`` extra) is imported lazily and only
used for tables on a terminal.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "error",
    "print_json",
    "rich_available",
    "table",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def error(command: str, message: str, code: int = EXIT_FAILURE) -> int:
    """Print ``multimodel COMMAND: error: MESSAGE`` (one line) to stderr; return ``code``."""
    one_line = " ".join(str(message).split())
    print(f"multimodel {command}: error: {one_line}", file=sys.stderr)
    return code


def _clean(value: Any) -> Any:
    """Replace NaN / infinity (not valid JSON) by ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Print ``data`` as indented, strictly valid JSON."""
    print(json.dumps(_clean(data), indent=2, allow_nan=False, default=str))


def rich_available() -> bool:
    """Whether ``rich`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[int] = (),
    use_rich: bool = False,
    title: str | None = None,
) -> None:
    """Print a table: aligned plain text, or a ``rich`` table when ``use_rich``.

    Args:
        headers: column titles.
        rows: cells, already formatted as strings.
        right: indices of right-aligned (numeric) columns.
        use_rich: render with ``rich`` (the caller checked it is installed).
        title: an optional line above the table.
    """
    if use_rich:
        from rich import box  # type: ignore[import-not-found,unused-ignore]
        from rich.console import Console  # type: ignore[import-not-found,unused-ignore]
        from rich.table import Table  # type: ignore[import-not-found,unused-ignore]

        rich_table = Table(
            title=title,
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        last = len(headers) - 1
        for i, head in enumerate(headers):
            # Narrow terminals wrap the last column rather than truncate names and numbers.
            rich_table.add_column(
                head,
                justify="right" if i in right else "left",
                no_wrap=i != last,
                overflow="fold",
                min_width=min(16, len(head)) if i != last else 16,
            )
        for row in rows:
            rich_table.add_row(*row)
        Console().print(rich_table)
        return
    print(plain_table(headers, rows, right=right, title=title))


def plain_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[int] = (),
    title: str | None = None,
) -> str:
    """The table as aligned plain text (the last column is not padded)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            if i in right:
                out.append(cell.rjust(widths[i]))
            elif i == len(cells) - 1:
                out.append(cell)
            else:
                out.append(cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    head = line(headers)
    lines = [title] if title else []
    lines += [head, "-" * len(head), *(line(row) for row in rows)]
    return "\n".join(lines)
