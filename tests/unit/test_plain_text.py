"""Every text of every command is ordinary text: a control character (NUL above all, which
PostgreSQL's jsonb refuses) is refused at the boundary, naming the field, however deep in
lists and sub-commands the text is. Found by walking the catalogue's schemas, so a field added
later is covered without a line here."""

from __future__ import annotations

import types
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import uuid4

import pytest
from pydantic import BaseModel, ValidationError

from infra.problem import problem_for
from services import dto
from services.catalogue import USE_CASES

Loc = tuple[str | int, ...]


def _str_like(annotation: Any) -> bool:
    return annotation is str or (
        isinstance(annotation, type)
        and issubclass(annotation, str)
        and issubclass(annotation, Enum)
    )


def _poisoned(annotation: Any, text: str) -> Iterator[tuple[Loc, Any]]:
    """Every place in a value of this type a string can go, with `text` put there: the
    location pydantic reports it at, and the value holding it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        yield from _poisoned(args[0], text)
    elif origin in (Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                yield from _poisoned(arg, text)
    elif origin is list:  # an item of a sub-command is reported at its index, a string at the list
        item_is_model = isinstance(args[0], type) and issubclass(args[0], BaseModel)
        for loc, value in _poisoned(args[0], text):
            yield ((0, *loc) if item_is_model else loc), [value]
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            for loc, value in _poisoned(info.annotation, text):
                yield (name, *loc), {name: value}
    elif _str_like(annotation):
        yield (), text


def string_fields() -> Iterator[Any]:
    commands = {uc.command for uc in USE_CASES.values()}
    for command in sorted(commands, key=lambda c: c.__name__):
        for loc, document in _poisoned(command, "x\u0000y"):
            path = ".".join(str(p) for p in loc)
            yield pytest.param(command, loc, document, id=f"{command.__name__}.{path}")


FIELDS = list(string_fields())


def refusal(command: type[dto.Command], document: dict[str, Any], loc: Loc) -> dict[str, Any]:
    """The error pydantic reports at `loc` (each field's own; the rest are missing)."""
    with pytest.raises(ValidationError) as refused:
        command.model_validate(document)
    found = [e for e in refused.value.errors() if e["loc"] == loc]
    assert found, f"nothing reported at {loc}: {refused.value.errors()}"
    return found[0]


def test_the_walk_finds_the_strings_nested_in_lists_and_sub_commands() -> None:
    ids = {p.id for p in FIELDS}
    assert "RegisterCandidate.actor" in ids
    assert "SubmitClaims.claims.0.fields.0.value" in ids
    assert "GrantConsent.terms.purposes" in ids
    assert "PlanInvestigation.investigators" in ids
    assert "RecordFinding.source.organisation" in ids
    assert "AmendReport.amendments.0.note" in ids
    assert "ReadProfile.principal" in ids
    assert "RegisterCandidate.email" in ids  # optional
    assert "RecordFinding.notes" in ids
    assert len(ids) > 100


@pytest.mark.parametrize(("command", "loc", "document"), FIELDS)
def test_a_nul_in_any_text_of_any_command_is_refused_naming_the_field(
    command: type[dto.Command], loc: Loc, document: dict[str, Any]
) -> None:
    error = refusal(command, document, loc)

    assert error["type"] == "control_character"
    assert "U+0000" in error["msg"]
    assert "x\u0000y" not in error["msg"]  # the error never repeats the value


def test_the_refusal_reaches_people_as_invalid_input_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        dto.RequestErasure.model_validate(
            {"candidate_id": uuid4(), "reason": "asked by email", "actor": "hr:li\u0000.na"}
        )

    problem = problem_for(refused.value)
    assert problem is not None
    assert (problem.status, problem.exit_code) == (422, 2)
    assert problem.detail == (
        "field actor: control character U+0000 at position 5: only ordinary text is accepted"
    )


def test_an_item_of_a_list_is_named_by_its_index() -> None:
    with pytest.raises(ValidationError) as refused:
        dto.ConsentTermsIn.model_validate(
            {"purposes": ["screening", "vetting\u0000"], "check_types": ["employment"]}
        )

    (error,) = refused.value.errors()
    assert error["loc"] == ("purposes",)
    assert error["msg"].startswith("control character U+0000 in [1] at position 7")


REFUSED_EVERYWHERE = [
    "\u0000",
    "\u0007",
    "\u001b",
    "\r",
    "\u000b",
    "\u000c",
    "\u007f",
    "\u0085",
    "\u009b",
]


@pytest.mark.parametrize("char", REFUSED_EVERYWHERE, ids=lambda c: f"U+{ord(c):04X}")
def test_control_characters_are_refused_in_free_text_too(char: str) -> None:
    for document in (
        {"investigation_id": uuid4(), "feedback_id": uuid4(), "answer": f"a{char}b"},
        {"investigation_id": uuid4(), "feedback_id": uuid4(), "answer": f"ab{char}"},
    ):
        error = refusal(dto.AnswerFeedback, {**document, "actor": "hr:li.na"}, ("answer",))
        assert error["type"] == "control_character"


@pytest.mark.parametrize("char", ["\t", "\n"], ids=["tab", "line feed"])
def test_free_text_may_span_lines_and_nothing_else_may(char: str) -> None:
    ids = {"investigation_id": uuid4(), "feedback_id": uuid4()}
    answered = dto.AnswerFeedback.model_validate(
        {**ids, "answer": f"first{char}second", "actor": "hr:li.na"}
    )
    assert answered.answer == f"first{char}second"

    # one-line texts refuse them, even where stripping would have hidden them
    for actor in (f"hr:li{char}na", f"hr:li.na{char}"):
        error = refusal(dto.AnswerFeedback, {**ids, "answer": "ok", "actor": actor}, ("actor",))
        assert error["type"] == "control_character"


def test_ordinary_text_in_any_script_is_accepted() -> None:
    registered = dto.RegisterCandidate(name="李雷 — Zoë O'Brien ✓", actor="hr:li.na")
    assert registered.name == "李雷 — Zoë O'Brien ✓"


def refused_in_free_text_and_one_line(char: str) -> list[dict[str, Any]]:
    """The errors for `char` one character into a free-text field and into a one-line one."""
    ids = {"investigation_id": uuid4(), "feedback_id": uuid4()}
    return [
        refusal(dto.AnswerFeedback, document, (field,))
        for field, document in (
            ("answer", {**ids, "answer": f"a{char}b", "actor": "hr:li.na"}),
            ("actor", {**ids, "answer": "ok", "actor": f"h{char}"}),
        )
    ]


@pytest.mark.parametrize(
    ("char", "said"),
    [
        ("\udcff", "byte 0xFF, which is not UTF-8, at position 1"),
        ("\ud800", "lone surrogate U+D800, which UTF-8 cannot hold, at position 1"),
    ],
    ids=["escaped byte", "lone surrogate"],
)
def test_text_that_is_not_utf8_is_refused_as_such_everywhere(char: str, said: str) -> None:
    for error in refused_in_free_text_and_one_line(char):
        assert error["type"] == "not_utf8"
        assert error["msg"] == f"{said}: text must be UTF-8"


@pytest.mark.parametrize(
    "char", ["\u202a", "\u202e", "\u2066", "\u2069"], ids=lambda c: f"U+{ord(c):04X}"
)
def test_bidirectional_controls_are_refused_and_the_marks_names_need_are_not(char: str) -> None:
    for error in refused_in_free_text_and_one_line(char):
        assert error["type"] == "bidi_control"
        assert error["msg"] == (
            f"bidirectional control U+{ord(char):04X} at position 1: it would show the text "
            "in another order than it is recorded"
        )
    rtl_name = "\u05d3\u05e0\u05d4 \u200f\u05db\u05d4\u05df"
    named = dto.RegisterCandidate(name=rtl_name, actor="hr:li.na")
    assert "\u200f" in named.name  # RLM, which a right-to-left name may need, stays
