"""JSON Schema adjustments for each provider's structured-output mode (no I/O).

* :func:`openai_strict_schema`: OpenAI's ``strict: true`` rules: every object has
  ``additionalProperties: false`` and lists every property in ``required``; ``$ref`` with sibling
  keywords is inlined (strict mode rejects siblings); keywords strict mode does not support
  (:data:`OPENAI_UNSUPPORTED`: ``default``, ``minLength``, ``not`` ...) are dropped, and
  ``oneOf`` becomes ``anyOf``. Validation of the answer still enforces what was dropped.
  A schema with free-form objects (``dict`` fields) cannot be strict
  (:func:`openai_strict_expressible`): it is sent as given, with ``strict: false``.
* :func:`gemini_schema`: the subset Gemini's ``responseJsonSchema`` accepts: ``$ref``\\ s into
  ``$defs`` are inlined (recursive schemas are refused), keywords outside the subset are dropped.

Both return new dicts and never modify their argument. Results are cached by the schema's JSON
text, so a schema reused across calls is converted once.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from ..errors import InvalidRequestError

__all__ = [
    "GEMINI_KEYWORDS",
    "OPENAI_UNSUPPORTED",
    "gemini_schema",
    "openai_strict_expressible",
    "openai_strict_schema",
]

GEMINI_KEYWORDS = frozenset(
    {
        "type",
        "title",
        "description",
        "properties",
        "required",
        "items",
        "prefixItems",
        "enum",
        "format",
        "nullable",
        "anyOf",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "propertyOrdering",
        "additionalProperties",
        "const",
    }
)
"""The JSON Schema keywords kept for Gemini's ``responseJsonSchema`` (others are dropped)."""


OPENAI_UNSUPPORTED = frozenset(
    {
        "default",
        "examples",
        "minLength",
        "maxLength",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "contains",
        "if",
        "then",
        "else",
        "not",
        "$schema",
        "$id",
        "readOnly",
        "writeOnly",
        "deprecated",
        "contentEncoding",
        "contentMediaType",
    }
)
"""Keywords OpenAI's strict mode rejects; they are dropped from the wire schema (a pydantic
model still enforces them when the answer is validated, and a failure is fed back)."""


def _key(schema: dict[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"), default=str)


def openai_strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` adjusted to OpenAI's strict structured-output rules (a new dict)."""
    return copy.deepcopy(_openai_strict(_key(schema)))


@functools.lru_cache(maxsize=256)
def _openai_strict(text: str) -> dict[str, Any]:
    root = json.loads(text)
    defs = root.get("$defs") or root.get("definitions") or {}
    return _strict_node(root, defs, root)  # type: ignore[no-any-return]


def _strict_node(node: Any, defs: dict[str, Any], root: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict_node(item, defs, root) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in OPENAI_UNSUPPORTED}
    if "oneOf" in node and "anyOf" not in node:  # strict mode has anyOf only
        node["anyOf"] = node.pop("oneOf")
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1:
        # Strict mode rejects keywords beside $ref: inline the target, siblings win.
        target = _resolve(ref, root)
        node.pop("$ref")
        node = {**target, **node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {k: _strict_node(v, defs, root) for k, v in value.items()}
        else:
            out[key] = _strict_node(value, defs, root)
    if out.get("type") == "object" or "properties" in out:
        props = out.get("properties") or {}
        out["properties"] = props
        out["required"] = list(props)
        out["additionalProperties"] = False
    return out


def openai_strict_expressible(schema: dict[str, Any]) -> bool:
    """Whether strict mode can hold ``schema`` without changing what it allows.

    Strict mode requires ``additionalProperties: false`` on every object, so an object whose
    keys are free (a ``dict[str, int]`` field: ``additionalProperties`` a schema or ``true``)
    cannot be strict: forcing ``false`` there would allow only ``{}``, and the model would
    have to drop every entry. Such a schema is sent with ``strict: false`` instead (the
    answer is still validated, and a failure fed back)."""
    return _expressible(_key(schema))


@functools.lru_cache(maxsize=256)
def _expressible(text: str) -> bool:
    return not _free_keys(json.loads(text))


def _free_keys(node: Any) -> bool:
    if isinstance(node, list):
        return any(_free_keys(item) for item in node)
    if not isinstance(node, dict):
        return False
    extra = node.get("additionalProperties", False)
    if extra is not False and extra is not None:
        return True
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            if any(_free_keys(v) for v in value.values()):
                return True
        elif isinstance(value, (dict, list)) and _free_keys(value):
            return True
    return False


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        raise InvalidRequestError(
            f"response_format schema: only local $refs ('#/...') are supported, got {ref!r}",
            field="response_format",
        )
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise InvalidRequestError(
                f"response_format schema: $ref {ref!r} points nowhere", field="response_format"
            )
        node = node[part]
    if not isinstance(node, dict):
        raise InvalidRequestError(
            f"response_format schema: $ref {ref!r} is not a schema", field="response_format"
        )
    return node


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` in the subset Gemini's ``responseJsonSchema`` accepts (a new dict).

    Raises:
        InvalidRequestError: the schema is recursive (a ``$ref`` to an enclosing definition),
            which this subset cannot express.
    """
    return copy.deepcopy(_gemini(_key(schema)))


@functools.lru_cache(maxsize=256)
def _gemini(text: str) -> dict[str, Any]:
    root = json.loads(text)
    return _gemini_node(root, root, ())  # type: ignore[no-any-return]


def _gemini_node(node: Any, root: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_gemini_node(item, root, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in seen:
            raise InvalidRequestError(
                f"response_format schema is recursive ({ref}): Gemini's schema subset cannot "
                "express it",
                field="response_format",
            )
        target = _resolve(ref, root)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _gemini_node({**target, **siblings}, root, (*seen, ref))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in GEMINI_KEYWORDS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _gemini_node(v, root, seen) for k, v in value.items()}
        elif key == "additionalProperties" and isinstance(value, bool):
            out[key] = value
        else:
            out[key] = _gemini_node(value, root, seen)
    return out
