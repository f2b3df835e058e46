"""The provider schema adjustments (strict mode for OpenAI, the subset for Gemini) and the light
JSON-schema check used for schema dicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multimodel._client.structured import validate_json
from multimodel.errors import InvalidRequestError
from multimodel.providers._schema import GEMINI_KEYWORDS, gemini_schema, openai_strict_schema

leaf = st.sampled_from(
    [
        {"type": "string"},
        {"type": "integer", "default": 3},
        {"type": "number", "minimum": 0},
        {"type": "boolean", "examples": [True]},
        {"enum": ["a", "b"]},
    ]
)
schemas = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(
            lambda props, req: {
                "type": "object",
                "properties": props,
                "required": [k for k in props if req],
            },
            st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), inner, max_size=4),
            st.booleans(),
        ),
        st.builds(lambda item: {"type": "array", "items": item}, inner),
        st.builds(lambda a, b: {"anyOf": [a, b]}, inner, inner),
    ),
    max_leaves=12,
)


def objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [o for item in node for o in objects(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == "object" else []
    for key, value in node.items():
        if key == "properties":
            found += [o for v in value.values() for o in objects(v)]
        else:
            found += objects(value)
    return found


@given(schemas)
def test_strict_schema_rules_hold_on_every_object(schema: dict[str, Any]) -> None:
    before = json.dumps(schema)
    strict = openai_strict_schema(schema)
    assert json.dumps(schema) == before  # the argument is not modified
    for obj in objects(strict):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    assert '"default"' not in json.dumps(strict)
    assert '"oneOf"' not in json.dumps(strict)


def test_strict_drops_what_strict_mode_rejects_and_keeps_property_names() -> None:
    schema = {
        "type": "object",
        "properties": {
            "default": {"type": "string", "minLength": 2, "default": "x"},
            "n": {"oneOf": [{"type": "integer"}, {"type": "null"}], "not": {"const": 3}},
        },
    }
    strict = openai_strict_schema(schema)
    assert strict["properties"]["default"] == {"type": "string"}
    assert strict["properties"]["n"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert strict["required"] == ["default", "n"]


@given(schemas)
def test_gemini_schema_keeps_only_its_keywords(schema: dict[str, Any]) -> None:
    out = gemini_schema(schema)

    def keys(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                keys(item)
        elif isinstance(node, dict):
            assert set(node) <= GEMINI_KEYWORDS
            for key, value in node.items():
                if key == "properties":
                    for v in value.values():
                        keys(v)
                elif key != "enum":
                    keys(value)

    keys(out)


def test_strict_inlines_a_ref_with_siblings() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A", "description": "the a"}},
        "$defs": {"A": {"type": "object", "properties": {"x": {"type": "integer"}}}},
    }
    strict = openai_strict_schema(schema)
    a = strict["properties"]["a"]
    assert "$ref" not in a
    assert a["description"] == "the a"
    assert a["required"] == ["x"]
    assert a["additionalProperties"] is False


def test_gemini_inlines_refs_and_refuses_recursion() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"type": "string", "title": "A"}},
    }
    assert gemini_schema(schema)["properties"]["a"] == {"type": "string", "title": "A"}
    recursive = {
        "type": "object",
        "properties": {"next": {"$ref": "#"}},
    }
    with pytest.raises(InvalidRequestError, match="recursive"):
        gemini_schema(recursive)


@pytest.mark.parametrize(
    ("value", "locs"),
    [
        ({"x": 1, "y": [1, 2]}, []),
        ({"x": "1", "y": [1]}, [("x",)]),
        ({"y": [1, "2"]}, [("x",), ("y", 1)]),
        ({"x": 1, "y": [], "z": 0}, [("z",)]),
        ({"x": True, "y": []}, [("x",)]),  # a boolean is not an integer
        ({"x": 2.0, "y": []}, []),
        ([], [()]),
    ],
)
def test_validate_json(value: Any, locs: list[tuple[Any, ...]]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "x": {"type": "integer"},
            "y": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["x"],
        "additionalProperties": False,
    }
    assert [tuple(p["loc"]) for p in validate_json(value, schema)] == locs


def test_validate_json_any_of_and_refs() -> None:
    schema = {
        "anyOf": [{"$ref": "#/$defs/N"}, {"type": "null"}],
        "$defs": {"N": {"type": "integer"}},
    }
    assert validate_json(None, schema) == []
    assert validate_json(3, schema) == []
    assert validate_json("3", schema) != []
    assert validate_json("a", {"enum": ["a"]}) == []
    assert validate_json("b", {"const": "a"}) != []
