"""The model :class:`Catalog`: bundled data, lookups, filters and run-time overrides.

The bundled table is ``multimodel/catalog/data/models.json``. It is JSON rather than TOML so that
reading it needs nothing beyond the standard library on every supported Python (``tomllib``
arrived in 3.11 and the core dependencies are fixed). Users may still :meth:`Catalog.load` their
own TOML files on 3.11+ (or on 3.10 with ``tomli`` installed), or JSON files anywhere.

Nothing is read at import: a :class:`Catalog` reads the bundled file the first time it is used,
through :mod:`importlib.resources`, and the parsed table is shared by every catalog as an
immutable value. A catalog's contents are an immutable snapshot that writers replace whole
(copy on write, under a lock), so concurrent readers never see a half-made change and never
take a lock.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import ConfigError, UnknownModelError
from ._store import (
    LOCAL,
    State,
    build,
    bundled_state,
    describe,
    merge,
    parse_document,
    read_file,
    sort_specs,
    to_decimal,
    validate_entry,
)
from .models import CAPABILITIES, PRICE_FIELDS, ModelSpec, Pricing

__all__ = ["Catalog", "SortKey"]

SortKey = Literal["name", "input_price", "output_price", "context_window", "quality"]
"""What :meth:`Catalog.list` can sort by."""


class Catalog:
    """Models, their prices and capabilities, looked up by id, alias or ``"provider/id"``.

    ``Catalog()`` holds the bundled models (read on first use); ``Catalog(models, version=...)``
    holds only ``models``. Reads are lock-free and safe from any thread; :meth:`add`,
    :meth:`override_price` and :meth:`load` build a new snapshot and swap it in, so they affect
    only this instance (and never a catalog it was copied from or to).

    Example::

        catalog = Catalog()
        spec = catalog.get("claude-3.5")              # alias
        cheap = catalog.list(capability="vision", sort_by="input_price")
        catalog.override_price("gpt-4o", input="2.00")  # your negotiated price
    """

    def __init__(
        self,
        models: Iterable[ModelSpec | Mapping[str, Any]] | None = None,
        *,
        version: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._state: State | None = None
        if models is not None:
            specs = [validate_entry(m, f"models[{i}]") for i, m in enumerate(models)]
            self._state = build(specs, version or "custom")
        elif version is not None:
            raise ConfigError("`version` applies only with `models`; the bundled table has its own")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Catalog:
        """A catalog holding only the models of one JSON or TOML file (no bundled models)."""
        path = Path(path)
        version, specs, prices = parse_document(read_file(path), str(path))
        catalog = cls(specs, version=version or path.name)
        state = catalog._snapshot()
        for name, table in prices.items():
            state = catalog._priced(state, name, None, table, state.version)
        catalog._state = state
        return catalog

    # --- reading ------------------------------------------------------------------------------

    def _snapshot(self) -> State:
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    self._state = bundled_state()
                state = self._state
        return state

    @property
    def version(self) -> str:
        """The price table's version: the data file's date, ``+local`` once changed here."""
        return self._snapshot().version

    def __len__(self) -> int:
        return len(self._snapshot().by_key)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(tuple(self._snapshot().by_key.values()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self._matches(self._snapshot(), name, None))

    def __repr__(self) -> str:
        state = self._snapshot()
        return f"<Catalog version={state.version!r} models={len(state.by_key)}>"

    def copy(self) -> Catalog:
        """An independent catalog with the same contents (cheap: the snapshot is shared)."""
        other = Catalog.__new__(Catalog)
        other._lock = threading.Lock()
        other._state = self._snapshot()
        return other

    def providers(self) -> builtins.list[str]:
        """The providers with at least one model, sorted."""
        return sorted({spec.provider for spec in self._snapshot().by_key.values()})

    @staticmethod
    def _canonical_provider(state: State, provider: str) -> str:
        if any(spec.provider == provider for spec in state.by_key.values()):
            return provider
        from ..providers.presets import builtin_presets  # small; only for "google" and friends

        preset = builtin_presets().get(provider)
        return preset.name if preset is not None else provider

    def _matches(self, state: State, name: str, provider: str | None) -> builtins.list[ModelSpec]:
        if provider is None and name in state.by_key:
            return [state.by_key[name]]
        keys: tuple[str, ...] = ()
        if name in state.aliases:
            keys = (state.aliases[name],)
        elif name in state.ids:
            keys = state.ids[name]
        elif "/" in name:  # "provider/id-or-alias", with a provider alias such as "google"
            head, _, rest = name.partition("/")
            head = self._canonical_provider(state, head)
            if provider is not None and self._canonical_provider(state, provider) != head:
                return []
            if f"{head}/{rest}" in state.by_key:
                return [state.by_key[f"{head}/{rest}"]]
            return self._matches(state, rest, head) if rest else []
        specs = [state.by_key[k] for k in keys]
        if provider is not None:
            provider = self._canonical_provider(state, provider)
            specs = [s for s in specs if s.provider == provider]
        return specs

    def find(self, name: str, provider: str | None = None) -> ModelSpec | None:
        """The model called ``name`` (id, alias or ``"provider/id"``), or ``None``.

        Raises:
            UnknownModelError: ``name`` is an id served by several providers and ``provider``
                does not choose one (``suggestions`` lists the ``"provider/id"`` keys).
        """
        return self._find_in(self._snapshot(), name, provider)

    def get(self, name: str, provider: str | None = None) -> ModelSpec:
        """The model called ``name`` (id, alias or ``"provider/id"``), optionally on ``provider``.

        Raises:
            UnknownModelError: no such model (the message and ``suggestions`` give close
                names), or an ambiguous id (see :meth:`find`).
        """
        return self._get_in(self._snapshot(), name, provider)

    def _find_in(self, state: State, name: str, provider: str | None) -> ModelSpec | None:
        specs = self._matches(state, name, provider)
        if len(specs) > 1:
            keys = [s.key for s in specs]
            err = UnknownModelError(name, keys)
            err.suggestions = keys
            message = (
                f"model {name!r} is served by several providers ({', '.join(keys)}); "
                "pass provider=... or ask for 'provider/id'"
            )
            err.args = (message,)
            raise err
        return specs[0] if specs else None

    def _get_in(self, state: State, name: str, provider: str | None) -> ModelSpec:
        spec = self._find_in(state, name, provider)
        if spec is not None:
            return spec
        known = [*state.ids, *state.aliases, *state.by_key]
        err = UnknownModelError(name, known)
        where = f" for provider {provider!r}" if provider else ""
        hint = f"; did you mean {', '.join(map(repr, err.suggestions))}?" if err.suggestions else ""
        err.args = (f"model {name!r} is not in the catalog (version {state.version}){where}{hint}",)
        raise err

    def list(
        self,
        provider: str | None = None,
        capability: str | Iterable[str] | None = None,
        min_context: int | None = None,
        max_input_price: Decimal | int | str | None = None,
        sort_by: SortKey = "name",
        *,
        include_deprecated: bool = True,
        descending: bool | None = None,
    ) -> builtins.list[ModelSpec]:
        """Models matching every given filter, sorted.

        Args:
            provider: only this provider's models.
            capability: a capability, or several that must all be present.
            min_context: only models whose context window is at least this.
            max_input_price: only models whose input price (USD per 1M tokens) is at most this;
                models without a known price are left out.
            sort_by: ``name`` (then provider), ``input_price``, ``output_price`` (unpriced
                models last), ``context_window`` or ``quality``.
            include_deprecated: whether retired / deprecated models are listed.
            descending: reverse order. Default: ascending for names and prices, descending
                for ``context_window`` and ``quality`` (biggest / best first).

        Raises:
            ConfigError: an unknown capability or sort key.
        """
        state = self._snapshot()
        wanted = frozenset((capability,) if isinstance(capability, str) else capability or ())
        unknown = sorted(wanted - CAPABILITIES)
        if unknown:
            raise ConfigError(
                f"unknown capability {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(sorted(CAPABILITIES))}"
            )
        if provider is not None:
            provider = self._canonical_provider(state, provider)
        limit = None if max_input_price is None else to_decimal(max_input_price)
        specs = [
            s
            for s in state.by_key.values()
            if (provider is None or s.provider == provider)
            and s.capabilities.issuperset(wanted)
            and (min_context is None or s.context_window >= min_context)
            and (limit is None or (s.pricing is not None and s.pricing.input <= limit))
            and (include_deprecated or not s.deprecated)
        ]
        return sort_specs(specs, sort_by, descending)

    # --- writing (copy on write) --------------------------------------------------------------

    def _swap(self, change: Callable[[State], State]) -> None:
        with self._lock:
            state = self._state if self._state is not None else bundled_state()
            self._state = change(state)

    @staticmethod
    def _local(version: str) -> str:
        return version if version.endswith(LOCAL) else version + LOCAL

    def add(self, spec: ModelSpec | Mapping[str, Any], *, replace: bool = False) -> ModelSpec:
        """Add a model (a :class:`ModelSpec` or a mapping with its fields) and return it.

        Raises:
            ConfigError: the entry is invalid (the message names the field), or its
                ``provider/id`` or one of its aliases is taken and ``replace`` is false. With
                ``replace=True`` the same-key model is replaced and aliases move to ``spec``;
                another model's id is never taken.
        """
        new = validate_entry(spec, "model")
        self._swap(lambda s: merge(s, [new], self._local(s.version), replace=replace))
        return new

    def override_price(
        self, name: str, *, provider: str | None = None, **prices: Decimal | int | str | None
    ) -> ModelSpec:
        """Change some of a model's prices (``input``, ``output``, ``cached_input``,
        ``cache_write``; ``None`` clears an optional one) and return the updated model.

        Raises:
            UnknownModelError: no such model.
            ConfigError: an unknown or invalid price field.
        """
        self._swap(lambda s: self._priced(s, name, provider, prices, self._local(s.version)))
        return self.get(name, provider)  # by name: the override keeps the model's key

    def _priced(
        self, state: State, name: str, provider: str | None, prices: Mapping[str, Any], version: str
    ) -> State:
        bad = sorted(set(prices) - set(PRICE_FIELDS))
        if bad:
            raise ConfigError(
                f"price override for {name!r}: unknown price field(s) "
                f"{', '.join(map(repr, bad))}; valid: {', '.join(PRICE_FIELDS)}"
            )
        spec = self._get_in(state, name, provider)
        base = spec.pricing.model_dump() if spec.pricing is not None else {}
        try:
            pricing = Pricing.model_validate({**base, **prices})
        except ValidationError as exc:
            raise ConfigError(f"price override for {spec.key!r}: {describe(exc)}") from exc
        updated = spec.model_copy(update={"pricing": pricing})
        return merge(state, [updated], version, replace=True)

    def load(self, path: str | os.PathLike[str]) -> int:
        """Merge a JSON or TOML catalog file into this catalog; return how many models it had.

        The file has the bundled file's shape: optional ``version``, a ``models`` list (entries
        replace same-key models, and take over their aliases) and an optional ``prices`` table
        (``{"gpt-4o": {"input": "2.00"}}``). Everything is validated before anything changes;
        the catalog's version becomes ``"<old>+<file version or file name>"``.

        Raises:
            ConfigError: the file cannot be read, or an entry is invalid (named with its field).
        """
        path = Path(path)
        file_version, specs, prices = parse_document(read_file(path), str(path))

        def change(state: State) -> State:
            version = f"{state.version}+{file_version or path.name}"
            state = merge(state, specs, version, replace=True)
            for name, table in prices.items():
                state = self._priced(state, name, None, table, version)
            return state

        self._swap(change)
        return len(specs)
