"""Hypothesis strategies for fuzzing the ways in: commands drawn from their own published JSON
schemas (`backcheck use-cases --schema`), then, often, broken in one place.

A document drawn here is mostly valid in shape, so the fuzz reaches past validation into the
rules; its ids come from a pool of aggregates that exist, so commands meet real candidates,
consents and reports. One mutation in a few breaks it the ways a careless or hostile sender
would: a required field dropped, an unknown one added, a value of the wrong type, a text past
its bound or holding a control character, a list far past its bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

Schema = dict[str, Any]
Path = tuple[str | int, ...]

# Ordinary text and the characters that have broken stores before: quotes, backslashes,
# markup brackets, non-BMP letters, right-to-left marks, line and paragraph separators.
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from("\"\\[]/<>%:'"),
    max_size=40,
)
HOSTILE = st.sampled_from(
    ["\x00", "\x1b[31m", "\u0085", "\ud800", "\x7f", "\r\n", "[/x]", "\u202e", "'; DROP TABLE"]
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def _text(schema: Schema) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 2000)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= high
        )
    # mostly short; sometimes exactly at the bound
    return st.one_of(
        TEXT.filter(lambda s: low <= len(s.strip()) and len(s) <= high),
        st.just("x" * high),
    )


Ids = Mapping[str, Sequence[UUID]]  # known ids by the field that names them: "consent_id"


def value(schema: Schema, defs: Schema, ids: Ids, name: str = "") -> st.SearchStrategy[Any]:
    """A JSON value the schema accepts in shape (a pattern's text, an enum's member, ...);
    an id field `name` mostly draws an id of its kind that exists, sometimes any other."""
    if "$ref" in schema:
        return value(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, ids, name)
    if "anyOf" in schema:
        return st.one_of([value(branch, defs, ids, name) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "string" and schema.get("format") == "uuid":
        pool = ids.get(name.removesuffix("s")) or [i for kind in ids.values() for i in kind]
        known = st.sampled_from(list(pool)) if pool else st.nothing()
        return st.one_of(known, known, known, st.uuids()).map(str)
    if kind == "string" and schema.get("format") == "date-time":
        moments = st.datetimes(datetime(2020, 1, 1), datetime(2032, 1, 1), timezones=st.just(UTC))
        return moments.map(datetime.isoformat)
    if kind == "string":
        return _text(schema)
    if kind == "array":
        low = schema.get("minItems", 0)
        items = value(schema.get("items", {}), defs, ids, name)
        return st.lists(items, min_size=low, max_size=low + 3)
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: value(s, defs, ids, k) for k, s in properties.items() if k in required},
            optional={
                k: value(s, defs, ids, k) for k, s in properties.items() if k not in required
            },
        )
    return ANY_JSON


def _paths(doc: Any, at: Path = ()) -> list[Path]:
    found: list[Path] = [at] if at else []
    if isinstance(doc, dict):
        for key, item in doc.items():
            found += _paths(item, (*at, key))
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            found += _paths(item, (*at, i))
    return found


def _replaced(doc: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if isinstance(doc, dict):
        return {k: _replaced(v, tuple(rest), new) if k == head else v for k, v in doc.items()}
    return [_replaced(v, tuple(rest), new) if i == head else v for i, v in enumerate(doc)]


def _dropped(doc: Any, path: Path) -> Any:
    *parent, last = path
    if not parent:
        return {k: v for k, v in doc.items() if k != last} if isinstance(doc, dict) else doc
    head, *rest = parent
    inner = (*rest, last)
    if isinstance(doc, dict):
        return {k: _dropped(v, inner) if k == head else v for k, v in doc.items()}
    return [_dropped(v, inner) if i == head else v for i, v in enumerate(doc)]


@st.composite
def command(draw: st.DrawFn, schema: Schema, ids: Ids) -> Any:
    """A command document for `schema`: valid in shape, or (one time in three) broken once."""
    defs = schema.get("$defs", {})
    doc = draw(value(schema, defs, ids))
    how = draw(st.sampled_from(["as drawn"] * 6 + ["drop", "extra", "retype", "long", "hostile"]))
    if how == "extra":
        return {**doc, draw(TEXT.filter(lambda k: k not in doc)): draw(ANY_JSON)}
    paths = _paths(doc)
    if how == "as drawn" or not paths:
        return doc
    path = draw(st.sampled_from(paths))
    if how == "drop":
        return _dropped(doc, path)
    if how == "retype":
        return _replaced(doc, path, draw(ANY_JSON))
    if how == "long":
        return _replaced(doc, path, draw(st.sampled_from(["y" * 2001, ["z"] * 51, "w" * 70_000])))
    return _replaced(doc, path, "a" + draw(HOSTILE) + "b")
