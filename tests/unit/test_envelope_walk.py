"""The envelope format's tree walks: every personal value found wherever it sits (in dicts,
lists, tuples, dataclasses and their subclasses), bound to its dotted path; everything else
left as it is."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.classification import PersonalField
from infra.privacy import envelope


class Status(StrEnum):
    OPEN = "open"


@dataclass(frozen=True)
class Finding:
    source: PersonalField
    notes: tuple[PersonalField, ...]
    weight: float


@dataclass(frozen=True)
class Marked(PersonalField):
    """A PersonalField subclass (the views' codec has one): still a personal value."""


NAME = PersonalField("name", "user.name", "Li Lei")
EMAIL = PersonalField("email", "user.contact.email", "li@x.cn")


def sealed_at(value: PersonalField, path: str) -> dict[str, Any]:
    return {"sealed": f"{value.value}@{path}"}


def test_every_personal_value_is_sealed_at_its_path_and_the_rest_kept() -> None:
    doc = {
        "id": "c-1",
        "n": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "status": Status.OPEN,
        "identity": (NAME, EMAIL),
        "claims": [{"fields": [PersonalField("employer", "user.employment.employer", "Acme")]}],
        "finding": Finding(Marked("org", "user.organisation", "Nimbus"), (NAME,), 1.0),
        "ordered": OrderedDict(a=EMAIL, b=[1, "x"]),
    }

    got = envelope.seal_tree(doc, "doc", sealed_at)

    assert got == {
        "id": "c-1",
        "n": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "status": Status.OPEN,
        "identity": [{"sealed": "Li Lei@doc.identity.0"}, {"sealed": "li@x.cn@doc.identity.1"}],
        "claims": [{"fields": [{"sealed": "Acme@doc.claims.0.fields.0"}]}],
        "finding": {
            "source": {"sealed": "Nimbus@doc.finding.source"},
            "notes": [{"sealed": "Li Lei@doc.finding.notes.0"}],
            "weight": 1.0,
        },
        "ordered": {"a": {"sealed": "li@x.cn@doc.ordered.a"}, "b": [1, "x"]},
    }
    assert got["status"] is Status.OPEN


def test_a_personal_value_at_the_root_is_sealed_at_the_root_path() -> None:
    assert envelope.seal_tree(NAME, "identity", sealed_at) == {"sealed": "Li Lei@identity"}


def test_opening_finds_each_envelope_at_the_path_it_was_sealed_at() -> None:
    doc = {"a": 1, "b": [None, {"c": {"sealed": "x"}}], "d": {"sealed": "y"}, "e": "text"}

    got = envelope.open_tree(doc, "doc", lambda sealed, path: f"{sealed['sealed']}@{path}")

    assert got == {"a": 1, "b": [None, {"c": "x@doc.b.1.c"}], "d": "y@doc.d", "e": "text"}


def test_opening_in_place_finds_what_opening_a_copy_finds_markers_too() -> None:
    def doc() -> dict[str, Any]:
        erased = {"name": "n", "category": "user.name", "erased": True}
        return {
            "a": 1,
            "b": [None, {"c": {"sealed": "x"}}, [[{"sealed": "z"}]]],
            "d": {"sealed": "y"},
            "erased": False,  # a row's own flag, no marker
            "m": [erased],
        }

    def open_one(found: dict[str, Any], path: str) -> str:
        return f"{found.get('sealed', 'marker')}@{path}"

    parsed = doc()
    got = envelope.open_in_place(parsed, "doc", open_one, markers=True)

    assert got is parsed  # no container copied
    assert got == envelope.open_tree(doc(), "doc", open_one, markers=True)
    assert got["b"][2] == [["z@doc.b.2.0.0"]]
    assert got["m"] == ["marker@doc.m.0"]
    assert envelope.open_in_place({"sealed": "r"}, "doc", open_one) == "r@doc"
