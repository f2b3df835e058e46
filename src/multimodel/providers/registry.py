"""Registries of wire-format adapters and provider presets.

Built-in adapters are imported on first use, so ``import multimodel`` loads none of them.
Third-party packages add adapters through the ``multimodel.providers`` entry point group; each
entry point names a :class:`~multimodel.providers.base.ProviderAdapter` subclass, and may also
expose a ``PRESETS`` list of :class:`~multimodel.providers.presets.ProviderPreset` rows on its
module. The registries are filled lazily and only ever grow, so they hold no per-client state.
"""

from __future__ import annotations

import importlib
import threading

from ..errors import ConfigError
from .base import ProviderAdapter
from .presets import ProviderPreset, builtin_presets

__all__ = [
    "get_adapter",
    "get_preset",
    "known_providers",
    "register_adapter",
    "register_provider",
]

_BUILTIN_ADAPTERS = {
    "openai": "multimodel.providers.openai:OpenAIAdapter",
    "anthropic": "multimodel.providers.anthropic:AnthropicAdapter",
    "gemini": "multimodel.providers.gemini:GeminiAdapter",
}
ENTRY_POINT_GROUP = "multimodel.providers"

_lock = threading.Lock()
_adapters: dict[str, ProviderAdapter] = {}
_presets: dict[str, ProviderPreset] = {}
_entry_points_loaded = False


def register_adapter(adapter: type[ProviderAdapter] | ProviderAdapter) -> None:
    """Register a wire-format adapter under its ``name``.

    Example::

        @register_adapter
        class CohereAdapter(ProviderAdapter):
            name = "cohere"
            ...
    """
    instance = adapter() if isinstance(adapter, type) else adapter
    with _lock:
        _adapters[instance.name] = instance


def register_provider(preset: ProviderPreset) -> None:
    """Register (or replace) a provider preset, e.g. a new OpenAI-compatible gateway."""
    _ensure_presets()
    with _lock:
        _presets[preset.name] = preset


def get_adapter(name: str) -> ProviderAdapter:
    """The adapter for a wire format, importing a built-in one on first use.

    Raises:
        ConfigError: no adapter has that name.
    """
    adapter = _adapters.get(name)
    if adapter is not None:
        return adapter
    target = _BUILTIN_ADAPTERS.get(name)
    if target is not None:
        module_name, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        with _lock:
            return _adapters.setdefault(name, cls())
    _load_entry_points()
    adapter = _adapters.get(name)
    if adapter is None:
        known = sorted(set(_BUILTIN_ADAPTERS) | set(_adapters))
        raise ConfigError(f"no adapter for wire format {name!r}; known: {', '.join(known)}")
    return adapter


def get_preset(provider: str) -> ProviderPreset:
    """The preset for a provider name.

    Raises:
        ConfigError: unknown provider; the message lists the known ones.
    """
    _ensure_presets()
    preset = _presets.get(provider)
    if preset is None:
        _load_entry_points()
        preset = _presets.get(provider)
    if preset is None:
        raise ConfigError(
            f"unknown provider {provider!r}; known: {', '.join(known_providers())}. "
            "Register one with multimodel.providers.register_provider(ProviderPreset(...))"
        )
    return preset


def known_providers() -> list[str]:
    """Names of every registered provider preset."""
    _ensure_presets()
    return sorted(_presets)


def _ensure_presets() -> None:
    if not _presets:
        with _lock:
            if not _presets:
                _presets.update(builtin_presets())


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points  # slow to import: only when needed

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, type) and issubclass(obj, ProviderAdapter):
            register_adapter(obj)
            module = importlib.import_module(obj.__module__)
            for preset in getattr(module, "PRESETS", ()):
                register_provider(preset)
        elif isinstance(obj, ProviderPreset):
            register_provider(obj)
