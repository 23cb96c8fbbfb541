"""What a value may look like on a terminal: the one place the command line and the demo turn
stored text into something printed.

A stored value is data, never instructions to the terminal or to rich. Text written before the
control-character rule (services/text.py), or by another writer, may hold an ESC sequence, a
carriage return, a bidirectional override or a lone surrogate; any text may hold rich markup
(`[/x]` is ordinary text). So every value is shown with its control characters as visible
escapes (`\\x1b`, `\\u202e`) and its markup escaped; only line feed and tab pass as they are.
"""

from __future__ import annotations

import json
import unicodedata

from rich.highlighter import JSONHighlighter
from rich.markup import escape
from rich.text import Text

# Format characters that reorder what follows them on screen (the "trojan source" ones).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_AS_IS = frozenset("\n\t")


def _shown_escaped(char: str) -> bool:
    return char not in _AS_IS and (char in _BIDI or unicodedata.category(char) in ("Cc", "Cs"))


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def visible(value: object) -> str:
    """`value` as text whose every control character is shown, not obeyed: C0 and C1 controls
    (but line feed and tab), DEL, bidirectional overrides and lone surrogates become `\\xNN` /
    `\\uNNNN`. Plain text, for a `Text` or anything not parsed as markup."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: nothing to look at twice
        return text
    return "".join(_escaped(c) if _shown_escaped(c) else c for c in text)


def markup_safe(value: object) -> str:
    """`value` to put inside a markup string (an f-string given to `console.print`, a table
    cell given as str): control characters shown, markup escaped."""
    return escape(visible(value))


def cell(value: object) -> Text:
    """One table cell or printed value: a `Text` as it is (styled by us), anything else shown
    as plain text, never parsed as markup."""
    return value if isinstance(value, Text) else Text(visible(value))


def cells(*values: object) -> list[Text]:
    """A table row, every value a `cell`: `table.add_row(*cells(a, b, c))`."""
    return [cell(v) for v in values]


def dim(text: str) -> Text:
    """Our own words in a table (withheld, not yet answered), dimmed."""
    return Text(text, style="dim")


def json_text(document: str) -> Text:
    """A JSON document indented and highlighted for a person: its strings keep their letters
    (any script), and every control character in them is a `\\uNNNN` escape, still valid JSON."""
    shown = json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    if not shown.isprintable():
        shown = "".join(f"\\u{ord(c):04x}" if _shown_escaped(c) else c for c in shown)
    return JSONHighlighter()(Text(shown))
