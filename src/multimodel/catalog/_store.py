"""The catalog's storage: immutable snapshots, entry validation, file reading, sorting.

Private to :mod:`multimodel.catalog`; :class:`~multimodel.catalog.Catalog` is the public face.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError
from ..types._response import _trusted, _trusted_works
from .models import PRICE_FIELDS, ModelSpec, Pricing

__all__ = [
    "LOCAL",
    "State",
    "build",
    "bundled_spec",
    "bundled_state",
    "describe",
    "merge",
    "parse_document",
    "read_file",
    "sort_specs",
    "to_decimal",
    "validate_entry",
]

_DOC_KEYS = frozenset({"version", "source", "notes", "models", "prices"})
LOCAL = "+local"


@dataclass(frozen=True)
class State:
    """One immutable snapshot of a catalog's contents."""

    version: str
    by_key: Mapping[str, ModelSpec]  # "provider/id" -> spec, in insertion order
    ids: Mapping[str, tuple[str, ...]]  # id -> keys (an id may repeat across providers)
    aliases: Mapping[str, str]  # alias -> key


def build(specs: Iterable[ModelSpec], version: str) -> State:
    """Index ``specs``; a second model claiming a key or an alias is a :class:`ConfigError`."""
    by_key: dict[str, ModelSpec] = {}
    ids: dict[str, tuple[str, ...]] = {}
    aliases: dict[str, str] = {}
    for spec in specs:
        if spec.key in by_key:
            raise ConfigError(
                f"model {spec.key!r} is already in the catalog; pass replace=True to replace it"
            )
        for alias in spec.aliases:
            owner = aliases.get(alias) or next(iter(ids.get(alias, ())), None)
            if owner is not None:
                raise ConfigError(
                    f"model {spec.key!r}: alias {alias!r} is already a name of {owner!r}; "
                    "aliases must be unique (pass replace=True to take it over)"
                )
        if spec.id in aliases:
            raise ConfigError(
                f"model {spec.key!r}: id {spec.id!r} is already an alias of "
                f"{aliases[spec.id]!r} (pass replace=True to take it over)"
            )
        by_key[spec.key] = spec
        ids[spec.id] = (*ids.get(spec.id, ()), spec.key)
        aliases.update(dict.fromkeys(spec.aliases, spec.key))
    return State(
        version, MappingProxyType(by_key), MappingProxyType(ids), MappingProxyType(aliases)
    )


def merge(state: State, new: Iterable[ModelSpec], version: str, *, replace: bool) -> State:
    """A new state with ``new`` added; with ``replace`` a same-key entry is swapped in place
    and the aliases ``new`` claims are taken from the models that held them."""
    specs = dict(state.by_key)
    for spec in new:
        if replace:
            claimed = set(spec.names)
            for key, other in specs.items():
                if key != spec.key and claimed.intersection(other.aliases):
                    kept = tuple(a for a in other.aliases if a not in claimed)
                    specs[key] = other.model_copy(update={"aliases": kept})
        elif spec.key in specs:
            raise ConfigError(
                f"model {spec.key!r} is already in the catalog; pass replace=True to replace it"
            )
        specs[spec.key] = spec
    return build(specs.values(), version)


def describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(entry)"
        msg = item["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)


def validate_entry(entry: Any, where: str) -> ModelSpec:
    """Validate one model entry; errors name the entry and the field."""
    if isinstance(entry, ModelSpec):
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"{where}: a model entry must be a table/object, not {type(entry).__name__}"
        )
    label = f"{entry.get('provider', '?')}/{entry.get('id', '?')}"
    try:
        return ModelSpec.model_validate(dict(entry))
    except ValidationError as exc:
        raise ConfigError(f"{where} ({label}): {describe(exc)}") from exc


# The exact JSON types of a bundled entry's fields; anything else is validated.
_PLAIN: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "provider": str,
    "provider_model": str,
    "aliases": list,
    "context_window": int,
    "max_output_tokens": int,
    "capabilities": list,
    "quality": int,
    "quality_source": str,
    "reasoning": bool,
    "deprecated": bool,
    "notes": str,
    **dict.fromkeys(PRICE_FIELDS, str),
}
_REQUIRED = frozenset({"id", "provider", "context_window", "max_output_tokens"})


def bundled_spec(entry: Any, where: str) -> ModelSpec:
    """One entry of the bundled table, as :func:`validate_entry` makes it but without building
    or running the validators of :class:`ModelSpec` and :class:`Pricing`: their schemas are
    ~0.2 MiB of a plain client's memory and a few milliseconds of its first lookup (issue #18),
    for a file that ships with the package. ``tests/catalog/test_catalog.py`` validates every
    bundled entry and compares the result with this one, slot by slot; an entry whose keys or
    value types are not the plain JSON ones listed above is validated instead."""
    if not (
        type(entry) is dict
        and _REQUIRED.issubset(entry)
        and all(type(value) is _PLAIN.get(key) for key, value in entry.items())
        and all(
            type(name) is str
            for name in (*entry.get("aliases", ()), *entry.get("capabilities", ()))
        )
        and _trusted_works()
    ):
        return validate_entry(entry, where)
    prices = {name: Decimal(entry[name]) for name in PRICE_FIELDS if name in entry}
    given = set(entry).difference(PRICE_FIELDS)
    values: dict[str, Any] = {}
    for name, field in ModelSpec.model_fields.items():
        values[name] = entry[name] if name in given else field.default
    values["aliases"] = tuple(values["aliases"])
    values["capabilities"] = frozenset(values["capabilities"])
    if prices:
        pricing = {name: prices.get(name) for name in Pricing.model_fields}
        values["pricing"] = _trusted(Pricing, pricing, prices.keys())
        given.add("pricing")
    return _trusted(ModelSpec, values, given)


def parse_document(
    data: Any, source: str, entry: Callable[[Any, str], ModelSpec] = validate_entry
) -> tuple[str | None, list[ModelSpec], dict[str, dict[str, Any]]]:
    """Split a catalog document into (version, models, price overrides); ``entry`` makes
    each model."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a table/object")
    unknown = sorted(set(data) - _DOC_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(sorted(_DOC_KEYS))}"
        )
    version = data.get("version")
    if version is not None and not isinstance(version, str):
        raise ConfigError(f"{source}: `version` must be a string")
    entries = data.get("models", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: `models` must be a list ([[models]] in TOML)")
    specs = [entry(e, f"{source}: models[{i}]") for i, e in enumerate(entries)]
    prices = data.get("prices", {})
    if not isinstance(prices, Mapping) or not all(isinstance(v, Mapping) for v in prices.values()):
        raise ConfigError(f"{source}: `prices` must map model names to price tables")
    return version, specs, {str(k): dict(v) for k, v in prices.items()}


def read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        if suffix == ".toml":
            module = "tomllib" if sys.version_info >= (3, 11) else "tomli"
            try:
                toml: Any = importlib.import_module(module)
            except ImportError:  # pragma: no cover - Python 3.10 without tomli
                raise ConfigError(
                    f"{path}: reading TOML on Python 3.10 needs `tomli` "
                    "(pip install tomli); or write the file as JSON"
                ) from None
            with path.open("rb") as fh:
                return toml.load(fh)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: cannot read catalog file: {exc}") from exc
    raise ConfigError(f"{path}: catalog files must end in .json or .toml")


@functools.cache
def bundled_state() -> State:
    """Parse the bundled table once per process; the result is immutable and shared."""
    text = resources.files("multimodel.catalog").joinpath("data/models.json").read_text("utf-8")
    version, specs, prices = parse_document(json.loads(text), "bundled models.json", bundled_spec)
    if prices:  # pragma: no cover - guards the data file
        raise ConfigError("bundled models.json: `prices` overrides belong in user files")
    return build(specs, version or "bundled")


def to_decimal(value: Decimal | str | float) -> Decimal:
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError as exc:  # decimal.InvalidOperation
        raise ConfigError(f"not a price: {value!r}") from exc


def sort_specs(specs: list[ModelSpec], sort_by: str, descending: bool | None) -> list[ModelSpec]:
    if sort_by == "name":
        key: Any = lambda s: (s.id, s.provider)
    elif sort_by in ("input_price", "output_price"):
        field = sort_by.removesuffix("_price")

        def key(s: ModelSpec) -> tuple[bool, Decimal, str]:
            price = getattr(s.pricing, field) if s.pricing is not None else Decimal(0)
            return (s.pricing is None, price, s.key)
    elif sort_by in ("context_window", "quality"):
        key = lambda s: (getattr(s, sort_by), s.key)
    else:
        raise ConfigError(
            f"unknown sort_by {sort_by!r}; valid: name, input_price, "
            "output_price, context_window, quality"
        )
    reverse = descending if descending is not None else sort_by in ("context_window", "quality")
    result = sorted(specs, key=key, reverse=reverse)
    if reverse and sort_by in ("input_price", "output_price"):  # unpriced stay last
        result = [s for s in result if s.pricing is not None] + [
            s for s in result if s.pricing is None
        ]
    return result
