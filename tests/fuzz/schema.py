"""JSON Schema -> Hypothesis strategy: enough of it for the Open Responses OpenAPI document and
msgspec's schema of our own request types, with small sizes so every example is cheap.

Handles `$ref` (to `#/components/schemas/…` or `#/$defs/…`), `anyOf`/`oneOf` (one branch),
`allOf` (the first branch), `enum`, `const`, `type` (one or a list), `properties`/`required`,
`additionalProperties`, `items`, and the numeric and length bounds; `pattern` only when asked
(`patterns=True`: half the strings then match it). Keywords it does not know (`format`, …) are
ignored: a value breaking them is a fine fuzz input too.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

MAX_ITEMS = 3
MAX_DEPTH = 8  # a reference chain deeper than this generates null (no schema here needs more)

# Text that exercises encodings and the gateway's own syntax, in a few characters.
_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))
TEXT = st.one_of(
    st.text(_ALPHABET, max_size=12),
    st.sampled_from(["", "resp_", "msg_" + "0" * 52, "\u0000", "\ud7ff", "💥", "a" * 300, "[reasoning]"]),
)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
ANY_JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=MAX_ITEMS), st.dictionaries(TEXT, inner, max_size=MAX_ITEMS)
    ),
    max_leaves=10,
)


class SchemaStrategies:
    """Strategies for the schemas of one document (its refs resolve against `root`)."""

    def __init__(self, root: dict[str, Any], *, patterns: bool = False) -> None:
        self.root = root
        self.patterns = patterns

    def for_ref(self, ref: str) -> st.SearchStrategy[Any]:
        return self.build({"$ref": ref}, 0)

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict)
        return node

    def build(self, schema: Any, depth: int) -> st.SearchStrategy[Any]:
        if not isinstance(schema, dict) or not schema:
            return ANY_JSON
        if depth > MAX_DEPTH:
            return st.none()
        if "$ref" in schema:
            target = self._resolve(schema["$ref"])
            return st.deferred(lambda: self.build(target, depth + 1))
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return st.one_of([self.build(s, depth + 1) for s in schema[key]])
        if "allOf" in schema:
            return self.build(schema["allOf"][0], depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self.build({**schema, "type": k}, depth) for k in kind])
        if kind == "object" or "properties" in schema:
            return self._object(schema, depth)
        if kind == "array":
            return st.lists(
                self.build(schema.get("items", {}), depth + 1),
                min_size=min(schema.get("minItems", 0), MAX_ITEMS),
                max_size=min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS),
            )
        if kind == "string":
            if self.patterns and isinstance(schema.get("pattern"), str):
                return st.from_regex(schema["pattern"], fullmatch=True) | TEXT
            return TEXT
        if kind == "integer":
            return st.integers(schema.get("minimum"), schema.get("maximum")) | st.integers()
        if kind == "number":
            bounded = st.floats(
                schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False
            )
            return bounded | st.floats(allow_nan=False, allow_infinity=False)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return ANY_JSON

    def _object(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
        props: dict[str, Any] = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in props]
        optional = [k for k in props if k not in required]
        fixed = st.fixed_dictionaries(
            {k: self.build(props[k], depth + 1) for k in required},
            optional={k: self.build(props[k], depth + 1) for k in optional},
        )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            return st.dictionaries(TEXT, self.build(extra, depth + 1), max_size=MAX_ITEMS)
        return fixed
