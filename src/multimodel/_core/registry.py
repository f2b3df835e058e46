"""One registry implementation, shared by the adapters, the provider presets and the strategies.

A :class:`Registry` maps names to objects, filled from three places, all lazily:

- **built-ins** named by ``"module:attr"`` strings, imported the first time their name is asked
  for (so ``import multimodel`` imports none of them), or a ``seed`` table built on first use;
- **registrations** at run time (:meth:`Registry.register`; the last one for a name wins);
- an **entry point group** of installed plugins, read once, on the first miss only.

An unknown name is a :class:`~multimodel.errors.ConfigError` that lists the known names and
suggests the closest one. Registries only ever grow and hold no per-client state, so a
module-level registry is an immutable-in-spirit table filled at first use (STYLE.md, rule 2).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import ConfigError
from .suggest import close_matches

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["EntryPointGroup", "Registry", "import_target"]

T = TypeVar("T")
_UNREAD, _READING, _READ = 0, 1, 2


def import_target(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class EntryPointGroup:
    """An entry point group, read at most once, when a registry using it first misses.

    Several registries may share one group (an adapter plugin may also bring presets): the
    group is read once for all of them. ``load`` is called with each entry point and registers
    what it finds. Concurrent first misses wait for the one reading to finish, so no thread sees
    a plugin name as unknown while another thread is loading it.

    Args:
        name: the group, e.g. ``"multimodel.strategies"``.
        load: called once per entry point of the group.
    """

    def __init__(self, name: str, load: Callable[[EntryPoint], None]) -> None:
        self.name = name
        self._load = load
        self._state = _UNREAD
        # Re-entrant: a plugin module may look a name up in a registry of this group while
        # it is being loaded (that lookup then sees what has been registered so far).
        self._lock = threading.RLock()

    @property
    def loaded(self) -> bool:
        """Whether the group was read (to the end)."""
        return self._state == _READ

    def load(self) -> None:
        """Read the group, the first time only; wait if another thread is reading it."""
        if self._state == _READ:
            return
        with self._lock:
            if self._state != _UNREAD:  # read meanwhile, or being read by this very thread
                return
            self._state = _READING
            try:
                from importlib.metadata import entry_points  # slow to import: only on a miss

                for ep in entry_points(group=self.name):
                    self._load(ep)
            finally:
                # Read once even if a plugin failed: its error is raised to this caller, and
                # later lookups do not retry a broken plugin on every miss.
                self._state = _READ


class Registry(Generic[T]):
    """Names to objects: built-ins imported lazily, run-time registrations, entry points.

    Thread-safe. Lookups of a present name take no lock. A built-in is imported outside the
    lock (an import may register other names), so two threads racing for the same built-in may
    both import it, but both get the one object stored.

    Args:
        kind: what a name names, for error messages (``"strategy"``).
        plural: its plural (default ``kind + "s"``).
        builtins: ``{name: "module:attr"}`` imported on first lookup of ``name``.
        convert: applied to an imported built-in before it is stored (e.g. instantiate a
            class); the identity by default.
        seed: returns a table of built-ins, called once before the first lookup or
            registration (for data rows built in code rather than imported one by one).
        entry_points: the entry point group read on the first miss; a group name registers
            each entry point's loaded object under the entry point's name.
        hint: appended to the unknown-name error (how to register one).
    """

    def __init__(
        self,
        kind: str,
        *,
        plural: str | None = None,
        builtins: Mapping[str, str] | None = None,
        convert: Callable[[Any], T] | None = None,
        seed: Callable[[], Mapping[str, T]] | None = None,
        entry_points: EntryPointGroup | str | None = None,
        hint: str = "",
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._builtins = dict(builtins or {})
        self._convert = convert
        self._seed = seed
        self._hint = hint
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()
        if isinstance(entry_points, str):
            entry_points = EntryPointGroup(entry_points, self._register_entry_point)
        self.entry_points = entry_points

    def register(self, name: str, obj: T) -> T:
        """Store ``obj`` under ``name`` (replacing any earlier one) and return it."""
        self._ensure_seeded()
        with self._lock:
            self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        """The object registered under ``name``.

        Raises:
            ConfigError: no such name, even after importing built-ins and reading entry points;
                the message lists the known names and suggests the closest.
        """
        obj = self._items.get(name)
        if obj is not None:
            return obj
        self._ensure_seeded()
        obj = self._items.get(name)
        if obj is not None:
            return obj
        target = self._builtins.get(name)
        if target is not None:
            loaded = import_target(target)
            value: T = self._convert(loaded) if self._convert is not None else loaded
            with self._lock:
                return self._items.setdefault(name, value)
        if self.entry_points is not None and not self.entry_points.loaded:
            self.entry_points.load()  # waits if another thread is reading the group
            obj = self._items.get(name)
            if obj is not None:
                return obj
        raise self.unknown(name)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is registered or a built-in (entry points are not read)."""
        self._ensure_seeded()
        return name in self._items or name in self._builtins

    def names(self) -> list[str]:
        """Every registered or built-in name, sorted (entry points are not read for this)."""
        self._ensure_seeded()
        with self._lock:
            return sorted(self._items.keys() | self._builtins.keys())

    def unknown(self, name: str) -> ConfigError:
        """The error for an unknown ``name``: the known names, and the closest one."""
        known = self.names()
        close = close_matches(name, known)
        suggestion = f" (did you mean {close[0]!r}?)" if close else ""
        listed = ", ".join(known) if known else "none"
        hint = f". {self._hint}" if self._hint else ""
        return ConfigError(
            f"unknown {self.kind} {name!r}{suggestion}; known {self.plural}: {listed}{hint}"
        )

    def _ensure_seeded(self) -> None:
        seed = self._seed
        if seed is None:
            return
        table = seed()
        with self._lock:
            if self._seed is None:  # another thread seeded it meanwhile
                return
            for name, obj in table.items():
                self._items.setdefault(name, obj)
            self._seed = None

    def _register_entry_point(self, ep: EntryPoint) -> None:
        loaded = ep.load()
        self.register(ep.name, self._convert(loaded) if self._convert is not None else loaded)
