"""Text that cannot be sent: strings that are not valid Unicode.

Python strings may hold lone surrogates (``"caf\\ud800"``, from a bad decode or a JSON
``"\\ud800"`` escape); they cannot be encoded as UTF-8, so no provider request can carry them.
multimodel refuses them before sending, naming the field, rather than replacing them silently:
a prompt changed behind the caller's back would be answered as if it were what they meant.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..types import ChatRequest

__all__ = ["find_unencodable", "unencodable_field"]

# ChatRequest fields that may hold text, besides the messages (checked first, on every call).
_OTHER_TEXT = ("stop", "tools", "tool_choice", "response_format", "user", "metadata", "tags",
               "openai_params", "extra_body")  # fmt: skip
_other_text = operator.itemgetter(*_OTHER_TEXT)


def unencodable_field(request: ChatRequest) -> str | None:
    """The dotted path of the first text of ``request`` that cannot be encoded as UTF-8.

    Cheap for the common case (one ``isascii`` per message and per set field); the full walk,
    with paths, runs only where something is not ASCII.
    """
    fields = request.__dict__  # dict reads: a model's attribute read passes its __getattr__ hook
    for index, message in enumerate(fields["messages"]):
        parts = message.__dict__
        content = parts["content"]
        if content.__class__ is str and content.isascii() and not parts["tool_calls"]:
            continue
        bad = find_unencodable(message, f"messages.{index}")
        if bad is not None:
            return bad
    values = _other_text(fields)
    # Most requests set none of these: one C call reads them all, one more counts the unset
    # ones (a loop of dict reads and tests costs a third more).
    if values.count(None) == len(_OTHER_TEXT):
        return None
    for name, value in zip(_OTHER_TEXT, values, strict=True):
        if value is not None:
            bad = find_unencodable(value, name)
            if bad is not None:
                return bad
    return None


def find_unencodable(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string in ``value`` (nested models, mappings, lists) that
    cannot be encoded as UTF-8, or ``None`` when every one can."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "value"
        return None
    if isinstance(value, BaseModel):
        items: Any = value.__dict__.items()
    elif isinstance(value, Mapping):
        items = value.items()
        for key in value:
            if isinstance(key, str) and find_unencodable(key) is not None:
                return _join(path, key)
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if item is None or isinstance(item, (bool, int, float)):
            continue
        bad = find_unencodable(item, _join(path, key))
        if bad is not None:
            return bad
    return None


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
