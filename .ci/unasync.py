"""Generate the sync client, stream and OpenAI-shaped surface from their async source.

    python .ci/unasync.py           # rewrite src/multimodel/_client/_sync/
    python .ci/unasync.py --check   # exit 1 when a generated file is stale (CI)

The async code in ``src/multimodel/_client/_async/`` is the only one written by hand (as
httpcore does with its ``scripts/unasync.py``). Each rule below renames an async spelling to
its sync one, token by token; what cannot be renamed lives in ``_client/_primitives.py`` as
``async_X`` / ``X`` pairs. Standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "multimodel" / "_client"
SOURCE, TARGET = ROOT / "_async", ROOT / "_sync"

RULES: list[tuple[str, str]] = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\baclose\b", "close"),
    (r"\baread\b", "read"),
    (r"\baiter_bytes\b", "iter_bytes"),
    (r"\balookup\b", "lookup"),
    (r"\bastore\b", "store"),
    (r"\baget_bytes_many\b", "get_bytes_many"),
    (r"\baset_bytes_many\b", "set_bytes_many"),
    (r"\basend_http\b", "send_http"),
    (r"\bhandle_async_request\b", "handle_request"),
    (r"\bAsync([A-Z]\w*)", r"\1"),  # AsyncClient, AsyncStream, AsyncIterator, httpx.Async...
    (r"\basync_(\w+)", r"\1"),  # the paired primitives and transport tables
]
_COMPILED = [(re.compile(pattern), repl) for pattern, repl in RULES]
_DOCSTRING = re.compile(r'\A"""(.*?)"""', re.DOTALL)


def unasync(source: str, name: str) -> str:
    """The sync version of one async module (``name``: its file name, for the header)."""
    header = (
        f'"""Generated from ``_async/{name}`` by ``.ci/unasync.py``: do not edit.\n\n'
        f"Edit ``_async/{name}``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).\n"
        '"""'
    )
    text = _DOCSTRING.sub(lambda _: header, source, count=1)
    for pattern, repl in _COMPILED:
        text = pattern.sub(repl, text)
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale: list[str] = []
    TARGET.mkdir(exist_ok=True)
    for path in sorted(SOURCE.glob("*.py")):
        target = TARGET / path.name
        if path.name == "__init__.py":
            wanted = '"""The sync client, generated from ``_async/`` (see ``.ci/unasync.py``)."""\n'
        else:
            wanted = unasync(path.read_text(encoding="utf-8"), path.name)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != wanted:
            stale.append(str(target.relative_to(ROOT.parent.parent.parent)))
            if not check:
                target.write_text(wanted, encoding="utf-8")
    extra = sorted({p.name for p in TARGET.glob("*.py")} - {p.name for p in SOURCE.glob("*.py")})
    if extra:
        stale.extend(f"{TARGET / name} (no async source)" for name in extra)
    if check and stale:
        print("generated sync code is stale; run `nox -s generate`:", *stale, sep="\n  ")
        return 1
    if not check:
        for line in stale:
            print("wrote", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
