"""Check and convert the value of each object-valued client option.

An option such as ``retry`` is given as its object (``RetryPolicy(max_retries=3)``) in code, or
as a table of the object's fields in a dict or a config file (``{"max_retries": 3}``). The
converters here accept both and return the object, or raise a :class:`ConfigError` that names
the option and, for an unknown field, the closest valid one.

The classes are imported when a value needs them, never when the configuration is imported:
``import multimodel.config`` loads no cache, catalog, tracking or resilience code.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import typing
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .._core.suggest import close_matches
from ..errors import ConfigError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "as_budgets",
    "as_cache",
    "as_catalog",
    "as_clock",
    "as_ledger",
    "as_policies",
    "as_policy_object",
    "as_shared_state",
    "as_strategy",
    "as_telemetry",
    "unknown_name",
]

# option -> "module:Class" of the object it holds (tables of its fields are accepted too)
POLICY_CLASSES = {
    "retry": "resilience.retry:RetryPolicy",
    "circuit": "resilience.circuit:CircuitPolicy",
    "hedge": "resilience.hedge:HedgePolicy",
    "retry_budget": "resilience.retry:RetryBudget",
    "limits": "security.limits:InputLimits",
}


def unknown_name(what: str, name: object, valid: Iterable[str], *, known: str = "valid") -> str:
    """``"unknown option 'max_retry'; did you mean 'max_retries'?"`` (or the valid names)."""
    valid = sorted(valid)
    close = close_matches(str(name), valid)
    hint = f"; did you mean {close[0]!r}?" if close else f" ({known}: {', '.join(valid)})"
    return f"{what} {str(name)!r}{hint}"


def _class(target: str) -> type[Any]:
    module, _, name = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(f"multimodel.{module}"), name)
    return cls


def _type_name(value: object) -> str:
    return type(value).__name__


def _fields(cls: type[Any]) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init]
    return [
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


@functools.cache
def _checkers(cls: type[Any]) -> dict[str, TypeAdapter[Any]]:
    """A pydantic validator per field of dataclass ``cls`` whose annotation resolves at run time.

    A field annotated with a name that exists only for type checkers (such as
    ``RetryPolicy.wait``) gets none: its value goes to ``cls`` as given, which checks it.
    """
    from pydantic import PydanticUserError, TypeAdapter

    checkers = {}
    for f in dataclasses.fields(cls):
        holder = type(
            "_Field", (), {"__annotations__": {"v": f.type}, "__module__": cls.__module__}
        )
        try:
            checkers[f.name] = TypeAdapter(typing.get_type_hints(holder)["v"])
        except (NameError, TypeError, PydanticUserError):  # a name pydantic cannot resolve
            continue
    return checkers


def from_table(option: str, table: Mapping[str, Any], cls: type[Any]) -> Any:
    """``cls(**table)``, with the fields checked: their names, and their types where pydantic
    can check them (a dataclass's fields are validated and coerced, e.g. ``"1.5"`` to 1.5)."""
    from pydantic import PydanticUserError

    names = _fields(cls)
    values = dict(table)
    checkers = _checkers(cls) if dataclasses.is_dataclass(cls) else {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(unknown_name(f"{option}: unknown field", key, names))
        checker = checkers.get(key)
        if checker is None:
            continue
        try:
            values[key] = checker.validate_python(value)
        except ValidationError as exc:
            raise ConfigError(f"{option}.{key}: {exc.errors()[0]['msg']}") from None
        except PydanticUserError:  # pydantic deferred an unresolvable annotation to here
            continue
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise ConfigError(message if option in message else f"{option}: {message}") from None


def as_policy_object(option: str, value: Any) -> Any:
    """``retry``, ``circuit``, ``hedge``, ``retry_budget``, ``limits``: object, table or None."""
    if value is None:
        return None
    cls = _class(POLICY_CLASSES[option])
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return from_table(option, value, cls)
    raise ConfigError(
        f"{option}: expected a {cls.__name__} or a table of its fields, not {_type_name(value)}"
    )


def as_budgets(value: Any) -> tuple[Any, ...]:
    """``budgets``: a list of ``Budget`` objects or tables."""
    if value is None:
        return ()
    if isinstance(value, Mapping | str | bytes) or not isinstance(value, Iterable):
        raise ConfigError(f"budgets: expected a list of budgets, not {_type_name(value)}")
    from ..resilience.budget import Budget

    budgets = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            item = dict(item)
            for key in ("limit", "soft_limit"):  # TOML and JSON numbers are floats: keep digits
                if isinstance(item.get(key), float):
                    item[key] = Decimal(str(item[key]))
            item = from_table(f"budgets.{i}", item, Budget)
        elif not isinstance(item, Budget):
            raise ConfigError(f"budgets.{i}: expected a Budget or a table, not {_type_name(item)}")
        budgets.append(item)
    return tuple(budgets)


def as_strategy(option: str, value: Any) -> Any:
    """``strategy``: a name, a ``{"name": ..., **params}`` table, or a strategy object.

    Names and parameters are checked when the client builds the strategy (the registry may
    gain strategies from plugins until then).
    """
    if isinstance(value, Mapping):
        value = dict(value)
        name = value.get("name", value.get("algorithm"))
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{option}: a strategy table needs 'name' (e.g. {{name = 'weighted', ...}})"
            )
        return value
    if value is None or isinstance(value, str):
        return value
    if not callable(getattr(value, "choose", None)):
        raise ConfigError(
            f"{option}: expected a strategy name, a table with 'name', or a Strategy object, "
            f"not {_type_name(value)}"
        )
    return value


def as_cache(value: Any) -> Any:
    """``cache``: ``True``/``False``, a ``CachePolicy`` or its table, or a ``ResponseCache``."""
    if value is None or isinstance(value, bool):
        return value
    from ..cache import CachePolicy, ResponseCache

    if isinstance(value, CachePolicy | ResponseCache):
        return value
    if isinstance(value, Mapping):
        return from_table("cache", value, CachePolicy)
    raise ConfigError(
        "cache: expected true/false, a CachePolicy (or a table of its fields) or a "
        f"ResponseCache, not {_type_name(value)}"
    )


def as_policies(value: Any) -> Any:
    """``policies``: a ``Policy`` or ``PolicySet``, or a table: one policy's fields, or
    ``policies`` (a list of policy tables) with optional ``default`` and ``roles``."""
    if value is None:
        return None
    from ..security._rules import Policy
    from ..security.policy import PolicySet

    if isinstance(value, Policy | PolicySet):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"policies: expected a Policy, a PolicySet or a table, not {_type_name(value)}"
        )
    if "policies" not in value:
        return _policy("policies", value, Policy)
    extra = set(value) - {"policies", "default", "roles"}
    if extra:
        raise ConfigError(
            unknown_name("policies: unknown field", min(extra), ["default", "policies", "roles"])
        )
    items = value["policies"]
    if isinstance(items, Mapping):
        items = [{"name": k, **v} if isinstance(v, Mapping) else v for k, v in items.items()]
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ConfigError("policies.policies: expected a list of policy tables")
    members = [
        item if isinstance(item, Policy) else _policy(f"policies.policies.{i}", item, Policy)
        for i, item in enumerate(items)
    ]
    return PolicySet(members, default=value.get("default"), roles=value.get("roles"))


def _policy(where: str, table: Any, cls: type[Any]) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a policy table, not {_type_name(table)}")
    try:
        return cls.model_validate(dict(table))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in (where, *err["loc"]))
        if err["type"] == "extra_forbidden":
            raise ConfigError(
                unknown_name(f"{where}: unknown field", err["loc"][-1], cls.model_fields)
            ) from None
        raise ConfigError(f"{loc}: {err['msg']}") from None


def as_catalog(value: Any) -> Any:
    """``catalog``: a ``Catalog``, or the path of a JSON or TOML model file."""
    if value is None or isinstance(value, str | os.PathLike):
        return value
    from ..catalog import Catalog

    if isinstance(value, Catalog):
        return value
    raise ConfigError(f"catalog: expected a Catalog or a file path, not {_type_name(value)}")


def as_telemetry(value: Any) -> Any:
    """``telemetry``: ``True`` (default), ``False`` or a ``Telemetry``."""
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    from ..tracking.telemetry import Telemetry

    if isinstance(value, Telemetry):
        return value
    raise ConfigError(f"telemetry: expected true/false or a Telemetry, not {_type_name(value)}")


def as_ledger(value: Any) -> Any:
    """``ledger``: the path of a SQLite file, or a ``UsageLedger``."""
    if value is None or isinstance(value, str | os.PathLike):
        return value
    from ..tracking.ledger import UsageLedger

    if isinstance(value, UsageLedger):
        return value
    raise ConfigError(f"ledger: expected a file path or a UsageLedger, not {_type_name(value)}")


def as_shared_state(value: Any) -> Any:
    """``shared_state``: a Redis URL, a Redis client or a ``RedisState``."""
    if value is None:
        return None
    from ..resilience.shared import as_shared_state

    return as_shared_state(value)


def as_clock(value: Any) -> Any:
    """``clock``: anything with ``time()`` and ``monotonic()`` (a ``Clock``)."""
    if value is None or all(callable(getattr(value, m, None)) for m in ("time", "monotonic")):
        return value
    raise ConfigError(
        f"clock: expected a Clock (with time() and monotonic()), not {_type_name(value)}"
    )
