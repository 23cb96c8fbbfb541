"""What a value may look like on a terminal (infra/terminal.py), and the demo's narrator
telling what a step showed: markup shown as typed, control characters as escapes."""

from __future__ import annotations

import io
import json

from rich.console import Console

from infra.demo.narrator import Narrator
from infra.terminal import json_text, markup_safe, visible
from services.application import Backcheck


def test_control_characters_are_shown_as_escapes_and_line_feed_and_tab_kept() -> None:
    assert visible("a\x1b[2Jb\x07\x7f\x9b\u202e\ud800\rc\n\td") == (
        "a\\x1b[2Jb\\x07\\x7f\\x9b\\u202e\\ud800\\x0dc\n\td"
    )
    assert visible("王芳 — ordinary text") == "王芳 — ordinary text"


def test_markup_in_a_value_prints_as_typed() -> None:
    out = io.StringIO()
    typed = "[/x] [bold]b\\"  # a closing tag of nothing, and a trailing backslash

    Console(file=out, width=200).print("[green]ok[/] [dim]" + markup_safe(typed) + "[/] done")

    assert out.getvalue() == f"ok {typed} done\n"


def test_json_shown_to_a_person_keeps_letters_and_escapes_controls() -> None:
    shown = json_text(json.dumps({"name": "王芳\x9b\u202e"})).plain

    assert "王芳" in shown
    assert "\x9b" not in shown
    assert "\u202e" not in shown
    assert json.loads(shown) == {"name": "王芳\x9b\u202e"}


def test_the_narrator_shows_what_a_step_showed_as_text(sqlite_app: Backcheck) -> None:
    out = io.StringIO()
    narrator = Narrator(sqlite_app, Console(file=out, width=200))

    narrator.detail("hr:[/y] read it\x1b[2J")

    assert out.getvalue() == "      hr:[/y] read it\\x1b[2J\n"
