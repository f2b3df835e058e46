"""Developer tasks and the CI gates.

``nox`` runs the gates, the same ones ``.ci/run`` runs: ``lint``, ``typecheck``, ``tests`` (the
built wheel, core-only and with every extra, branch coverage with a floor on the latter) and
``docs``. Other sessions run on request: ``nox -s bench``. ``nox -l`` lists them.

Every session that needs multimodel installs the wheel built from this checkout (once per nox
run), never an editable install, so what is tested is what would be published. The sessions run
on the interpreter nox runs on; ``nox -s tests --force-python 3.12`` picks another one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.error_on_external_run = True
# The gates, in the order .ci/run reports them (cheapest first).
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]

ROOT = Path(__file__).resolve().parent
LINTED = ["src", "tests", "benchmarks", "examples", "noxfile.py", "docs/conf.py"]
# The gates' tools are pinned: a new ruff or mypy release must not turn a green tree red.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"

_wheel: list[Path] = []  # the wheel built by this nox run (built once, shared by sessions)


def built_wheel(session: nox.Session) -> Path:
    """The wheel of this checkout, built on first use in this nox run."""
    if not _wheel:
        dist = Path(session.cache_dir) / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        session.run(
            "python", "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist),
            str(ROOT),
        )  # fmt: skip
        (wheel,) = dist.glob("multimodel-*.whl")
        _wheel.append(wheel)
    return _wheel[0]


def install_wheel(session: nox.Session, extras: str) -> Path:
    """Install the built wheel with ``extras`` (and force it in over a previous build)."""
    wheel = built_wheel(session)
    session.install(f"{wheel}[{extras}]")
    # A reused venv (nox -r) holds an older build with the same version: replace it.
    session.install("--force-reinstall", "--no-deps", str(wheel))
    return wheel


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install(RUFF)
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", "--diff", *LINTED)
    session.run("python", ".ci/gen_init.py", "--check")  # the re-exports match _LAZY
    session.run("python", ".ci/unasync.py", "--check")  # the sync code matches _async/


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src and tests (configuration in pyproject.toml)."""
    install_wheel(session, "all,test")  # the third-party types the code and the tests use
    session.install(MYPY)
    session.run("mypy", "--strict", *session.posargs)


# `import multimodel` must find the installed wheel, not the src/ tree (argv[1]).
_WHICH = """\
import pathlib, sys, multimodel
where = pathlib.Path(multimodel.__file__).resolve().parent
print("multimodel under test:", where)
src = pathlib.Path(sys.argv[1]).resolve()
sys.exit(f"multimodel was imported from {src}" if src in (where, *where.parents) else 0)
"""


@nox.session
@nox.parametrize("run", [nox.param("core", id="core"), nox.param("all", id="all")])
def tests(session: nox.Session, run: str) -> None:
    """pytest on the built wheel, core-only and with every extra (and coverage).

    ``core``: no extra installed; the tests that need one skip, naming it. ``all``: every
    extra; branch coverage, failing under the floor in pyproject.toml. ``nox -s tests`` runs
    both, ``nox -s "tests(core)"`` one. Arguments after ``--`` go to pytest.
    """
    install_wheel(session, "test" if run == "core" else "all,test,docs")
    env = {"MULTIMODEL_TEST_RUN": run}  # tests/test_ci_run.py checks the run is what it says
    session.run("python", "-c", _WHICH, str(ROOT / "src"), env=env)
    if run == "core":
        session.run("python", "-m", "pytest", *session.posargs, env=env)
        return
    session.run("python", "-m", "coverage", "erase")
    session.run("python", "-m", "coverage", "run", "-m", "pytest", *session.posargs, env=env)
    session.run("python", "-m", "coverage", "combine", "--quiet")
    session.run("python", "-m", "coverage", "report")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site from scratch; any Sphinx warning fails the build."""
    install_wheel(session, "docs")
    out = ROOT / "docs" / "_build" / "html"
    # -E -a: read and write every page, so a warning of an unchanged page is not hidden
    session.run(
        "sphinx-build", "-W", "--keep-going", "-E", "-a", "-q", "-b", "html", "docs", str(out),
        *session.posargs,
    )  # fmt: skip


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark scripts (raw httpx vs multimodel against the local mock server)."""
    install_wheel(session, "aiohttp")
    session.install("httpx-aiohttp")
    session.run("python", "benchmarks/run.py", *session.posargs)
