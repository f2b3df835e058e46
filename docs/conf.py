"""Sphinx configuration for the multimodel documentation.

Build: ``nox -s docs``, or ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
The build needs no network: there is no intersphinx, and every page is Markdown (MyST).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))  # works without an editable install too

project = "multimodel"
author = "multimodel developers"
copyright = "multimodel developers"

try:
    release = _version("multimodel")
except PackageNotFoundError:  # building from a bare checkout
    release = "0.1.0.dev0"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- MyST --------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# -- autodoc / napoleon ------------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# No network: no intersphinx, and references that cannot be resolved stay plain text.
nitpicky = False

# -- HTML --------------------------------------------------------------------------------------
html_theme = "furo"
html_title = "multimodel"
html_static_path: list[str] = []

# ``performance.md`` is written separately; list it in the toctree only once it exists.
_OPTIONAL_PAGES = ("performance",)


# Top-level names that a subpackage section of api.md documents too; the ``multimodel``
# section skips them, so every object is described once (no duplicate-object warnings).
_SECTIONS = (
    "multimodel.errors",
    "multimodel.strategies",
    "multimodel.catalog",
    "multimodel.tracking",
    "multimodel.testing",
    "multimodel.cache",
    "multimodel.embeddings",
    "multimodel.security",
    "multimodel.resilience.shared",
    "multimodel.reports",
)


def _documented_elsewhere() -> str:
    import importlib

    import multimodel

    elsewhere = {"errors"}
    for name in _SECTIONS:
        elsewhere.update(getattr(importlib.import_module(name), "__all__", ()))
    return ", ".join(sorted(elsewhere & set(multimodel.__all__)))


def _fill_api_page(source: list[str]) -> None:
    source[0] = source[0].replace("%%DOCUMENTED_ELSEWHERE%%", _documented_elsewhere())


def _drop_missing_pages(app, docname, source):  # type: ignore[no-untyped-def]
    if docname == "api":
        _fill_api_page(source)
    if docname != "index":
        return
    lines = source[0].splitlines(keepends=True)
    keep = [
        line
        for line in lines
        if line.strip() not in _OPTIONAL_PAGES or (DOCS / f"{line.strip()}.md").exists()
    ]
    source[0] = "".join(keep)


def _defining_module(app, modname, fullname):  # type: ignore[no-untyped-def]
    """The private module whose source defines ``fullname``, for the [source] links of classes
    whose ``__module__`` is the package that re-exports them (the error classes report
    ``multimodel.errors``); each private module's ``__all__`` lists what it defines."""
    import importlib
    import pkgutil

    if not modname:
        return None
    name = fullname.split(".")[0]
    try:
        # A lazy attribute whose optional dependency is missing (multimodel.cache.RedisCache
        # without redis, in the docs environment) raises ConfigError, not AttributeError.
        obj = getattr(importlib.import_module(modname), name, None)
        home = getattr(obj, "__module__", None)
        package = importlib.import_module(home) if isinstance(home, str) else None
    except Exception:  # noqa: BLE001 - no link is better than a failed build
        return None
    if package is None or not hasattr(package, "__path__"):
        return None  # defined where it says: viewcode's own lookup finds it
    for info in pkgutil.iter_modules(package.__path__, f"{home}."):
        short = info.name.rpartition(".")[2]
        if not short.startswith("_") or short.startswith("__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001, S112 - a module needing a missing extra
            continue
        if name in getattr(module, "__all__", ()) and getattr(module, name, None) is obj:
            return info.name
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("source-read", _drop_missing_pages)
    app.connect("viewcode-follow-imported", _defining_module)
    return {"parallel_read_safe": True}
