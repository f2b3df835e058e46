"""``multimodel models``: the model catalog as a table (or JSON).

Examples::

    multimodel models                                  # every bundled model, by name
    multimodel models --provider anthropic --sort price
    multimodel models --capability vision --capability tools --sort quality
    multimodel models --json | jq -r '.[].id'

Columns: id, provider, context window, max output tokens, list prices in USD per one million
input / output tokens, quality (a coarse 0-100 score) and capabilities. Deprecated models are
marked ``*``. Sort keys: ``name`` (default), ``input_price``, ``output_price``, ``price`` (a
blended price, 3 input tokens per output token, the usual chat mix), ``context`` and
``quality`` (the last two biggest first). Unpriced models sort last.

Plain text by default; with the ``multimodel[cli]`` extra (``rich``) installed and stdout a
terminal, the table is drawn with ``rich`` (``--plain`` forces plain text). ``--json`` prints a
list of objects for scripts (prices as numbers, ``null`` when unknown).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._output import EXIT_OK, EXIT_USAGE, error, print_json, rich_available, table

if TYPE_CHECKING:
    from ..catalog import ModelSpec

__all__ = ["SORT_KEYS", "add_parser", "blended_price", "model_row", "run", "run_models"]

SORT_KEYS = ("name", "price", "input_price", "output_price", "context", "quality")
"""The ``--sort`` choices."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``models`` subcommand to the ``multimodel`` subparsers."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "models",
        help="list the model catalog: context, prices, capabilities, quality",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--provider", metavar="P", help="only this provider's models")
    parser.add_argument(
        "--capability",
        metavar="C",
        action="append",
        default=[],
        help="only models with this capability (repeatable: all must match), e.g. vision, "
        "tools, json, reasoning, coding, long_context",
    )
    parser.add_argument(
        "--sort",
        choices=SORT_KEYS,
        default="name",
        help="order: name (default), price (blended 3:1 input:output), input_price, "
        "output_price, context, quality",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plain", action="store_true", help="plain text even if rich is installed")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``multimodel models`` from parsed arguments."""
    return run_models(
        provider=args.provider,
        capabilities=list(args.capability),
        sort=args.sort,
        as_json=args.json,
        plain=args.plain,
    )


def blended_price(spec: ModelSpec) -> Decimal | None:
    """USD per 1M tokens at 3 input tokens per output token; ``None`` when unpriced."""
    if spec.pricing is None:
        return None
    return (3 * spec.pricing.input + spec.pricing.output) / 4


def _sorted(specs: list[ModelSpec], key: str) -> list[ModelSpec]:
    def price(value: Decimal | None) -> tuple[bool, Decimal]:
        return (value is None, value if value is not None else Decimal(0))

    by_name = sorted(specs, key=lambda s: (s.id, s.provider))
    if key == "price":
        return sorted(by_name, key=lambda s: price(blended_price(s)))
    if key == "input_price":
        return sorted(by_name, key=lambda s: price(s.pricing.input if s.pricing else None))
    if key == "output_price":
        return sorted(by_name, key=lambda s: price(s.pricing.output if s.pricing else None))
    if key == "context":
        return sorted(by_name, key=lambda s: -s.context_window)
    if key == "quality":
        return sorted(by_name, key=lambda s: -s.quality)
    return by_name


def model_row(spec: ModelSpec) -> dict[str, Any]:
    """One model as a JSON-ready dict."""
    pricing = spec.pricing
    return {
        "id": spec.id,
        "provider": spec.provider,
        "api_model": spec.api_model,
        "aliases": list(spec.aliases),
        "context_window": spec.context_window,
        "max_output_tokens": spec.max_output_tokens,
        "input_price": float(pricing.input) if pricing else None,
        "output_price": float(pricing.output) if pricing else None,
        "capabilities": sorted(spec.capabilities),
        "quality": spec.quality,
        "reasoning": spec.reasoning,
        "deprecated": spec.deprecated,
    }


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f}M".replace(".00M", "M")
    if n >= 1000:
        return f"{n / 1000:.0f}k" if n % 1000 == 0 or n >= 100_000 else f"{n / 1000:.1f}k"
    return str(n)


def _price(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value == round(value, 2) else f"{value:.4f}".rstrip("0")


def run_models(
    *,
    provider: str | None = None,
    capabilities: list[str] | None = None,
    sort: str = "name",
    as_json: bool = False,
    plain: bool = False,
) -> int:
    """List the catalog; returns the exit code (2 for an unknown provider or capability)."""
    from ..catalog import CAPABILITIES, default_catalog

    catalog = default_catalog()
    wanted = capabilities or []
    unknown = sorted(set(wanted) - CAPABILITIES)
    if unknown:
        return error(
            "models",
            f"unknown capability {', '.join(map(repr, unknown))}; valid: "
            f"{', '.join(sorted(CAPABILITIES))}",
            EXIT_USAGE,
        )
    if sort not in SORT_KEYS:
        return error(
            "models", f"unknown sort key {sort!r}; valid: {', '.join(SORT_KEYS)}", EXIT_USAGE
        )
    if provider is not None:
        from ..providers.presets import builtin_presets

        known = sorted(set(catalog.providers()) | set(builtin_presets()))
        if provider not in known and provider != "google":
            return error(
                "models", f"unknown provider {provider!r}; known: {', '.join(known)}", EXIT_USAGE
            )
    specs = _sorted(catalog.list(provider, wanted or None), sort)
    if as_json:
        print_json([model_row(s) for s in specs])
        return EXIT_OK
    if not specs:
        print("no model matches these filters")
        return EXIT_OK
    use_rich = not plain and sys.stdout.isatty() and rich_available()
    rows = [
        [
            s.id + (" *" if s.deprecated else ""),
            s.provider,
            _tokens(s.context_window),
            _tokens(s.max_output_tokens),
            _price(s.pricing.input if s.pricing else None),
            _price(s.pricing.output if s.pricing else None),
            str(s.quality),
            (", " if use_rich else ",").join(sorted(s.capabilities)),
        ]
        for s in specs
    ]
    table(
        [
            "model",
            "provider",
            "context",
            "max out",
            "$ in/1M",
            "$ out/1M",
            "quality",
            "capabilities",
        ],
        rows,
        right=(2, 3, 4, 5, 6),
        use_rich=use_rich,
    )
    notes = [f"{len(specs)} model(s), catalog {catalog.version}; prices in USD per 1M tokens"]
    if any(s.deprecated for s in specs):
        notes.append("* deprecated")
    print("; ".join(notes))
    return EXIT_OK
