"""The public surface: exports are complete, sorted and importable; importing does no I/O.

``multimodel/__init__.py`` writes each public name once, in ``_LAZY`` (name -> defining
module); ``__all__`` is derived from it and the static re-exports for type checkers are
generated from it by ``.ci/gen_init.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import multimodel
from multimodel import errors

ROOT = Path(__file__).resolve().parent.parent
GEN_INIT = ROOT / ".ci" / "gen_init.py"
PUBLIC = set(multimodel.__all__)


def test_all_is_sorted_and_complete() -> None:
    assert multimodel.__all__ == sorted(multimodel.__all__)
    assert sorted(PUBLIC) == sorted([*multimodel._LAZY, *multimodel._SUBMODULES])
    public = {n for n in dir(multimodel) if not n.startswith("_")}
    # every exported name exists, and nothing public is left unexported but submodules
    assert set(multimodel.__all__) <= public
    modules = {
        n
        for n in public - set(multimodel.__all__)
        if type(getattr(multimodel, n)).__name__ == "module"
    }
    assert public - set(multimodel.__all__) == modules


@pytest.mark.parametrize("name", sorted(multimodel._LAZY))
def test_every_name_imports_from_the_module_lazy_names(name: str) -> None:
    module = importlib.import_module(multimodel._LAZY[name], "multimodel")
    obj = getattr(multimodel, name)
    assert obj is getattr(module, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        # _LAZY names the defining module, not a module that re-exports the object.
        assert obj.__module__ == module.__name__, (
            f"{name} is defined in {obj.__module__}: point _LAZY[{name!r}] there, then run "
            "python .ci/gen_init.py"
        )


def test_star_import_in_a_fresh_interpreter() -> None:
    code = (
        "from multimodel import *\n"
        "import multimodel\n"
        "missing = [n for n in multimodel.__all__ if n not in globals()]\n"
        "assert not missing, missing\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Clinet'"):
        multimodel.Clinet  # type: ignore[attr-defined]  # noqa: B018


# -- nothing public is missing -----------------------------------------------------------------


def public_modules() -> Iterator[ModuleType]:
    """Every public module of the package (no ``_private`` part) that imports here."""
    for info in pkgutil.walk_packages(multimodel.__path__, "multimodel."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError:  # an optional extra is not installed
            continue


def test_the_first_level_of_the_error_tree_is_exported() -> None:
    # Deeper errors (RateLimited's siblings...) live in ``multimodel.errors``; the root and its
    # direct children are what callers catch, so they are importable from the top.
    first_level = {
        cls.__name__
        for cls in vars(errors).values()
        if inspect.isclass(cls) and errors.MultimodelError in cls.__bases__
    }
    assert first_level | {"MultimodelError"} <= PUBLIC


@pytest.mark.parametrize("module", ["multimodel.types", "multimodel.config"])
def test_every_class_of_the_core_modules_is_exported(module: str) -> None:
    mod = importlib.import_module(module)
    classes = {n for n in mod.__all__ if inspect.isclass(getattr(mod, n))}
    assert classes - PUBLIC == set()


def test_every_policy_and_registration_function_is_exported() -> None:
    # What users configure a client with (``*Policy``) and the extension points (``register_*``)
    # are top-level names, wherever they are defined.
    wanted = {
        name
        for module in public_modules()
        for name in getattr(module, "__all__", ())
        if name.endswith("Policy") or name.startswith("register_")
    }
    assert wanted, "the walk found no module"
    assert wanted - PUBLIC == set()


_ROLE = re.compile(r"\{[a-z]+\}`~?(?:[^`<]*<)?multimodel\.([A-Za-z_]\w*)")
_ALIAS = re.compile(r"\bmm\.([A-Za-z_]\w*)")


def test_names_the_docs_use_from_the_top_level_are_exported() -> None:
    """``mm.Name`` in the docs, README and examples, and ``{class}`~multimodel.Name``` roles."""
    pages = [
        *sorted((ROOT / "docs").rglob("*.md")),
        ROOT / "README.md",
        *sorted((ROOT / "examples").rglob("*.py")),
    ]
    used: dict[str, str] = {}
    for page in pages:
        text = page.read_text()
        for match in [*_ROLE.finditer(text), *_ALIAS.finditer(text)]:
            used.setdefault(match[1], page.name)
    assert "Client" in used
    submodules = {n for n in used if importlib.util.find_spec(f"multimodel.{n}") is not None}
    missing = {n: page for n, page in used.items() if n not in PUBLIC | submodules}
    assert not missing, f"used as multimodel.<name> in the docs but not exported: {missing}"


# -- the generated re-exports ------------------------------------------------------------------


def test_the_generated_imports_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(GEN_INIT), "--check"], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_generator_detects_and_fixes_a_stale_block(tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    shutil.copy(ROOT / "src" / "multimodel" / "__init__.py", init)
    source = init.read_text()
    init.write_text(source.replace("_LAZY = {\n", '_LAZY = {\n    "Zebra": ".zoo",\n', 1))
    check = subprocess.run(
        [sys.executable, str(GEN_INIT), "--check", str(init)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and "stale" in check.stderr
    subprocess.run([sys.executable, str(GEN_INIT), str(init)], check=True, capture_output=True)
    fixed = init.read_text()
    assert "    from .zoo import Zebra as Zebra\n" in fixed
    assert (
        fixed.replace("    from .zoo import Zebra as Zebra\n", "").replace(
            '    "Zebra": ".zoo",\n', ""
        )
        == source
    )
    again = subprocess.run([sys.executable, str(GEN_INIT), "--check", str(init)], check=False)
    assert again.returncode == 0


def test_version() -> None:
    assert isinstance(multimodel.__version__, str)


def test_import_does_no_network_or_file_io_and_loads_no_adapter() -> None:
    code = (
        "import socket, builtins, sys\n"
        "def no(*a, **k): raise AssertionError('network at import')\n"
        "socket.socket.connect = no\n"
        "socket.create_connection = no\n"
        "real_open = builtins.open\n"
        "opened = []\n"
        "def spy(f, *a, **k):\n"
        "    opened.append(str(f)); return real_open(f, *a, **k)\n"
        "builtins.open = spy\n"
        "import multimodel\n"
        "assert not [f for f in opened if not f.endswith('.py')], opened\n"
        "assert 'multimodel.providers.openai' not in sys.modules\n"
        "assert 'multimodel.providers.anthropic' not in sys.modules\n"
        "assert 'multimodel.testing' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_default_client_does_not_load_intelligent_or_its_learned_choice() -> None:
    # Every import costs time and memory at the first client; these serve one strategy only.
    code = (
        "import sys\n"
        "import multimodel as mm\n"
        "client = mm.Client(deployments=[mm.Deployment(model='gpt-4o-mini', provider='openai',\n"
        "    api_key='sk-test', base_url='http://127.0.0.1:9/v1')])\n"
        "loaded = [m for m in ('multimodel.strategies.intelligent',\n"
        "    'multimodel.strategies._learned', 'multimodel.strategies._groups',\n"
        "    'multimodel.strategies._speeds') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
