"""The one registry implementation (``multimodel._core.registry``) and its three users."""

from __future__ import annotations

import importlib.metadata
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import multimodel as mm
from multimodel._core.registry import EntryPointGroup, Registry
from multimodel.providers import registry as provider_registry
from multimodel.strategies import get_strategy, known_strategies, register_strategy


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` for fake modules and distributions; their modules are
    forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("mmtest_"):
            del sys.modules[name]


def fake_distribution(root: Path, group: str, entries: dict[str, str]) -> None:
    """An installed distribution (a ``.dist-info`` folder on ``sys.path``) with entry points."""
    info = root / "mmtest_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmtest-plugin\nVersion: 1.0\n")
    lines = [f"[{group}]", *(f"{name} = {target}" for name, target in entries.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def count_entry_point_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every group read through ``importlib.metadata.entry_points``."""
    reads: list[str] = []
    real = importlib.metadata.entry_points

    def spy(**kw: Any) -> Any:
        reads.append(kw.get("group", ""))
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", spy)
    return reads


# -- built-ins ---------------------------------------------------------------------------------


def test_builtins_are_imported_on_first_lookup_only(plugin_dir: Path) -> None:
    (plugin_dir / "mmtest_builtin.py").write_text("class Thing:\n    made = 0\n")
    converted: list[object] = []

    def convert(cls: Any) -> object:
        converted.append(cls)
        return cls()

    reg: Registry[object] = Registry(
        "thing", builtins={"t": "mmtest_builtin:Thing"}, convert=convert
    )
    assert reg.names() == ["t"] and "t" in reg
    assert "mmtest_builtin" not in sys.modules  # listing names imports nothing
    first = reg.get("t")
    assert "mmtest_builtin" in sys.modules
    assert reg.get("t") is first and len(converted) == 1


def test_registration_wins_over_a_builtin_and_the_last_one_wins(plugin_dir: Path) -> None:
    (plugin_dir / "mmtest_shadowed.py").write_text("X = 'builtin'\n")
    reg: Registry[str] = Registry("thing", builtins={"x": "mmtest_shadowed:X"})
    reg.register("x", "mine")
    reg.register("x", "mine, again")
    assert reg.get("x") == "mine, again"
    assert "mmtest_shadowed" not in sys.modules


def test_seed_is_built_once_and_registrations_replace_its_rows() -> None:
    calls = []

    def seed() -> dict[str, int]:
        calls.append(1)
        return {"a": 1, "b": 2}

    reg: Registry[int] = Registry("number", seed=seed)
    assert calls == []  # nothing at construction
    reg.register("a", 10)
    assert (reg.get("a"), reg.get("b"), reg.names()) == (10, 2, ["a", "b"])
    assert calls == [1]


# -- entry points ------------------------------------------------------------------------------


def test_entry_points_of_a_fake_distribution_load_on_the_first_miss_only(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (plugin_dir / "mmtest_strategy_plugin.py").write_text("class Plugged:\n    pass\n")
    fake_distribution(plugin_dir, "mmtest.things", {"plugged": "mmtest_strategy_plugin:Plugged"})
    reads = count_entry_point_reads(monkeypatch)
    reg: Registry[object] = Registry("thing", entry_points="mmtest.things")
    reg.register("local", object())
    reg.get("local")
    assert reads == []  # a hit reads nothing
    assert reg.get("plugged").__name__ == "Plugged"  # type: ignore[attr-defined]
    assert reads == ["mmtest.things"]
    with pytest.raises(mm.ConfigError):
        reg.get("missing")
    assert reads == ["mmtest.things"]  # the group is read once


def test_a_shared_group_is_read_once_for_every_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = count_entry_point_reads(monkeypatch)
    adapters: Registry[str] = Registry("adapter")
    presets: Registry[str] = Registry("preset")

    def load(ep: Any) -> None:  # pragma: no cover - the group is empty
        raise AssertionError(ep)

    group = EntryPointGroup("mmtest.empty-group", load)
    adapters.entry_points = presets.entry_points = group
    for reg in (adapters, presets):
        with pytest.raises(mm.ConfigError):
            reg.get("nope")
    assert reads == ["mmtest.empty-group"]


def test_provider_plugin_brings_an_adapter_and_its_presets(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (plugin_dir / "mmtest_provider_plugin.py").write_text(
        "from multimodel.providers.openai import OpenAIAdapter\n"
        "from multimodel.providers.presets import ProviderPreset\n"
        "class PluggedAdapter(OpenAIAdapter):\n"
        "    name = 'mmtest-wire'\n"
        "PRESETS = [ProviderPreset(name='mmtest-cloud', adapter='mmtest-wire',\n"
        "                          base_url='https://cloud.test/v1')]\n"
    )
    fake_distribution(
        plugin_dir, "multimodel.providers", {"mmtest": "mmtest_provider_plugin:PluggedAdapter"}
    )
    # A fresh read of the group, as in a new process (an earlier test may have read it).
    monkeypatch.setattr(provider_registry._plugins, "_state", 0)
    preset = provider_registry.get_preset("mmtest-cloud")
    assert preset.adapter == "mmtest-wire"
    assert type(provider_registry.get_adapter("mmtest-wire")).__name__ == "PluggedAdapter"
    assert "mmtest-cloud" in provider_registry.known_providers()


def test_strategy_entry_point(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from multimodel.strategies import base

    (plugin_dir / "mmtest_first.py").write_text(
        "class First:\n"
        "    def choose(self, candidates, stats, ctx):\n"
        "        return candidates[0]\n"
    )
    fake_distribution(plugin_dir, "multimodel.strategies", {"mmtest-first": "mmtest_first:First"})
    group = base._registry.entry_points
    assert group is not None
    monkeypatch.setattr(group, "_state", 0)
    assert getattr(get_strategy("mmtest-first"), "__name__", None) == "First"
    assert "mmtest-first" in known_strategies()


# -- errors ------------------------------------------------------------------------------------


def test_unknown_name_lists_the_known_ones_and_suggests_the_closest() -> None:
    reg: Registry[int] = Registry("strategy", plural="strategies", hint="Register one.")
    for name in ("round_robin", "weighted", "adaptive"):
        reg.register(name, 1)
    with pytest.raises(mm.ConfigError) as info:
        reg.get("round_robn")
    assert str(info.value) == (
        "unknown strategy 'round_robn' (did you mean 'round_robin'?); known strategies: "
        "adaptive, round_robin, weighted. Register one."
    )
    assert isinstance(info.value, ValueError)
    with pytest.raises(mm.ConfigError, match=r"^unknown strategy 'zzz'; known strategies: a"):
        reg.get("zzz")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_strategy("adaptve"), "unknown strategy 'adaptve' (did you mean 'adaptive'?)"),
        (
            lambda: provider_registry.get_preset("anthropc"),
            "unknown provider 'anthropc' (did you mean 'anthropic'?)",
        ),
        (
            lambda: provider_registry.get_adapter("gemeni"),
            "unknown wire format 'gemeni' (did you mean 'gemini'?)",
        ),
    ],
)
def test_public_lookups_suggest_the_closest_name(call: Any, message: str) -> None:
    with pytest.raises(mm.ConfigError) as info:
        call()
    assert str(info.value).startswith(message)


def test_register_adapter_works_as_a_decorator() -> None:
    from multimodel.providers.openai import OpenAIAdapter

    @mm.register_adapter
    class Decorated(OpenAIAdapter):
        name = "mmtest-decorated"

    assert Decorated.__name__ == "Decorated"
    assert isinstance(provider_registry.get_adapter("mmtest-decorated"), Decorated)


def test_register_strategy_decorator_returns_the_class() -> None:
    @register_strategy("mmtest-decorated")
    class Decorated:
        pass

    assert get_strategy("mmtest-decorated") is Decorated  # type: ignore[comparison-overlap]


# -- threads -----------------------------------------------------------------------------------


def test_concurrent_registrations_and_lookups(plugin_dir: Path) -> None:
    (plugin_dir / "mmtest_racy.py").write_text("class Racy:\n    pass\n")
    reg: Registry[object] = Registry(
        "thing", builtins={"racy": "mmtest_racy:Racy"}, convert=lambda cls: cls()
    )
    start = threading.Barrier(8)
    seen: list[object] = []

    def work(i: int) -> None:
        start.wait()
        for j in range(200):
            reg.register(f"t{i}-{j}", j)
            seen.append(reg.get("racy"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reg.names()) == 8 * 200 + 1
    assert len({id(obj) for obj in seen}) == 1  # every thread got the one stored instance


def test_concurrent_first_misses_wait_for_the_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg: Registry[str] = Registry("thing")

    def slow_load(ep: Any) -> None:
        time.sleep(0.05)  # a plugin that takes a while to import
        reg.register(ep.name, "plugged")

    reg.entry_points = EntryPointGroup("mmtest.slow", slow_load)
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda **kw: [SimpleNamespace(name="p")]
    )
    start = threading.Barrier(6)
    results: list[object] = []

    def lookup() -> None:
        start.wait()
        try:
            results.append(reg.get("p"))
        except mm.ConfigError as exc:  # pragma: no cover - the failure this test guards
            results.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["plugged"] * 6
