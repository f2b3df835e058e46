"""The public surface: exports are complete and sorted; importing does no I/O."""

from __future__ import annotations

import subprocess
import sys

import multimodel


def test_all_is_sorted_and_complete() -> None:
    assert multimodel.__all__ == sorted(multimodel.__all__)
    public = {n for n in dir(multimodel) if not n.startswith("_")}
    # every exported name exists, and nothing public is left unexported but submodules
    assert set(multimodel.__all__) <= public
    modules = {
        n
        for n in public - set(multimodel.__all__)
        if type(getattr(multimodel, n)).__name__ == "module"
    }
    assert public - set(multimodel.__all__) == modules


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
