"""Registries of wire-format adapters and provider presets.

Built-in adapters are imported on first use, so ``import multimodel`` loads none of them.
Third-party packages add adapters through the ``multimodel.providers`` entry point group; each
entry point names a :class:`~multimodel.providers.base.ProviderAdapter` subclass, and may also
expose a ``PRESETS`` list of :class:`~multimodel.providers.presets.ProviderPreset` rows on its
module, or names one preset. The group is read once, when a name is first not found. Both
registries are :class:`multimodel._core.registry.Registry` instances: they only ever grow, so
they hold no per-client state.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TypeVar

from .._core.registry import EntryPointGroup, Registry
from .base import ProviderAdapter
from .presets import ProviderPreset, builtin_presets

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "get_adapter",
    "get_preset",
    "known_providers",
    "register_adapter",
    "register_provider",
]

ENTRY_POINT_GROUP = "multimodel.providers"
_A = TypeVar("_A", bound="type[ProviderAdapter] | ProviderAdapter")


def _load_plugin(ep: EntryPoint) -> None:
    """Register what one ``multimodel.providers`` entry point names."""
    obj = ep.load()
    if isinstance(obj, type) and issubclass(obj, ProviderAdapter):
        register_adapter(obj)
        module = importlib.import_module(obj.__module__)
        for preset in getattr(module, "PRESETS", ()):
            register_provider(preset)
    elif isinstance(obj, ProviderPreset):
        register_provider(obj)


_plugins = EntryPointGroup(ENTRY_POINT_GROUP, _load_plugin)
_adapters: Registry[ProviderAdapter] = Registry(
    "wire format",
    builtins={
        "openai": "multimodel.providers.openai:OpenAIAdapter",
        "anthropic": "multimodel.providers.anthropic:AnthropicAdapter",
        "gemini": "multimodel.providers.gemini:GeminiAdapter",
    },
    convert=lambda cls: cls(),
    entry_points=_plugins,
    hint="Register one with multimodel.providers.register_adapter(...)",
)
_presets: Registry[ProviderPreset] = Registry(
    "provider",
    seed=builtin_presets,
    entry_points=_plugins,
    hint="Register one with multimodel.providers.register_provider(ProviderPreset(...))",
)


def register_adapter(adapter: _A) -> _A:
    """Register a wire-format adapter under its ``name`` (a class is instantiated once).

    Returns ``adapter`` unchanged, so it also works as a class decorator.

    Example::

        @register_adapter
        class CohereAdapter(ProviderAdapter):
            name = "cohere"
            ...
    """
    instance = adapter() if isinstance(adapter, type) else adapter
    _adapters.register(instance.name, instance)
    return adapter


def register_provider(preset: ProviderPreset) -> None:
    """Register (or replace) a provider preset, e.g. a new OpenAI-compatible gateway."""
    _presets.register(preset.name, preset)


def get_adapter(name: str) -> ProviderAdapter:
    """The adapter for a wire format, importing a built-in one on first use.

    Raises:
        ConfigError: no adapter has that name; the message lists the known ones.
    """
    return _adapters.get(name)


def get_preset(provider: str) -> ProviderPreset:
    """The preset for a provider name.

    Raises:
        ConfigError: unknown provider; the message lists the known ones and the closest.
    """
    return _presets.get(provider)


def known_providers() -> list[str]:
    """Names of every registered provider preset."""
    return _presets.names()
