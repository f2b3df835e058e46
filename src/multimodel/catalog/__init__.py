"""The model catalog: which models exist, where, at what price, and what they can do.

The bundled table (``data/models.json``) is data, not code: ids, aliases, context windows, output
limits, list prices in USD per million tokens, capabilities and an approximate quality score.
Prices change; the table carries a ``version`` date, and every :class:`Catalog` can be extended
or corrected at run time (:meth:`Catalog.add`, :meth:`Catalog.override_price`,
:meth:`Catalog.load`).

:func:`default_catalog` returns a **new** :class:`Catalog` on every call. The parsed bundled table
behind it is read once per process and never changes, and catalogs copy on write, so changing
the catalog you got never affects anyone else's.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from .._core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .loader import Catalog, SortKey
    from .models import CAPABILITIES, ModelSpec, Pricing

_LAZY = {
    "CAPABILITIES": ".models",
    "Catalog": ".loader",
    "ModelSpec": ".models",
    "Pricing": ".models",
    "SortKey": ".loader",
}


__all__ = [
    "CAPABILITIES",
    "Catalog",
    "ModelSpec",
    "Pricing",
    "SortKey",
    "default_catalog",
    "list_models",
]


def default_catalog() -> Catalog:
    """A fresh catalog of the bundled models, yours to change (cheap: the data is shared)."""
    from .loader import Catalog

    return Catalog()


def list_models(
    provider: str | None = None,
    capability: str | Iterable[str] | None = None,
    min_context: int | None = None,
    max_input_price: Decimal | int | str | None = None,
    sort_by: SortKey = "name",
    *,
    include_deprecated: bool = True,
    descending: bool | None = None,
) -> list[ModelSpec]:
    """The bundled models matching the filters; see :meth:`Catalog.list`."""
    return default_catalog().list(
        provider,
        capability,
        min_context,
        max_input_price,
        sort_by,
        include_deprecated=include_deprecated,
        descending=descending,
    )


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
