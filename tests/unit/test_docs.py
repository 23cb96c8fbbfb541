"""The project documents itself, and its documents stay true.

README.md and docs/ link only to files in this repository, every path they name exists,
every `backcheck …` command they name is one the CLI has, the README's CLI section lists
every command with options it really takes, and the architecture page states the persisted
names the code really uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from infra.access.cedar import CedarDecisionPoint
from infra.cli import app
from infra.config import Settings
from infra.kafka.topics import COMMANDS_TOPIC, EVENTS_TOPIC, OUTCOMES_TOPIC, dead_letter_topic
from infra.views.kept import KEPT
from projections.read_views import ReadViews
from services.application import Backcheck

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
DECISIONS = sorted((ROOT / "docs" / "decisions").glob("[0-9][0-9][0-9][0-9]-*.md"))

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
# a path inside the repository named in backticks, e.g. `infra/store/recorder.py`, `domain/*.py`
_REPO_PATH = re.compile(
    r"`((?:domain|projections|services|infra|tests|bench|docs)/[A-Za-z0-9_.*/-]*)[`\s]"
)
_COMMAND = re.compile(r"`backcheck ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text outside fenced code blocks (where a link is a link)."""
    return _CODE_BLOCK.sub("", text)


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", _prose(markdown), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found


def _cli() -> Any:
    return get_command(app)


def _leaf_commands() -> dict[str, Any]:
    """'events', 'audit verify', … → the click command."""
    leaves: dict[str, Any] = {}
    for name, command in _cli().commands.items():
        for sub, leaf in getattr(command, "commands", {}).items():
            leaves[f"{name} {sub}"] = leaf
        if not hasattr(command, "commands"):
            leaves[name] = command
    return leaves


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_relative_link_resolves_to_a_file_in_the_repository(doc: Path) -> None:
    text = doc.read_text()
    for target in _LINK.findall(_prose(text)):
        assert not re.match(r"[a-z][a-z0-9+.-]*:", target), f"{_name(doc)} links out: {target}"
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.is_relative_to(ROOT), f"{_name(doc)}: {target} leaves the repository"
        assert resolved.is_file(), f"{_name(doc)}: {target} is not a file in the repository"
        if anchor:
            assert anchor in _anchors(resolved.read_text()), f"{_name(doc)}: no heading #{anchor}"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_no_document_points_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert not re.search(r"https?://", text), f"{_name(doc)} names a web address"
    assert "../shared" not in text, f"{_name(doc)} names a file outside the repository"
    assert "DESIGN.md" not in text, f"{_name(doc)} names a design file outside the repository"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_path_a_document_names_exists(doc: Path) -> None:
    for named in _REPO_PATH.findall(doc.read_text()):
        assert any(ROOT.glob(named.rstrip("/"))), f"{_name(doc)} names {named}: no such path"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_backcheck_command_a_document_names_exists(doc: Path) -> None:
    commands = _cli().commands
    for first, second in _COMMAND.findall(doc.read_text()):
        command = commands.get(first)
        assert command is not None, f"{_name(doc)} names `backcheck {first}`: no such command"
        if hasattr(command, "commands") and second:
            assert second in command.commands, f"{_name(doc)}: no `backcheck {first} {second}`"


def test_the_readme_cli_section_lists_every_command_with_options_it_takes() -> None:
    block = _CODE_BLOCK.findall(_section((ROOT / "README.md").read_text(), "CLI"))[0]
    leaves = _leaf_commands()
    listed: set[str] = set()
    usage: list[tuple[str, str]] = []  # (command, its usage: the line and its continuations)
    for line in block.splitlines():
        if line.startswith("backcheck "):
            words = line.split()[1:3]
            name = " ".join(words) if " ".join(words) in leaves else words[0]
            assert name in leaves, f"the README's CLI section names `{line}`"
            listed.add(name)
            usage.append((name, line))
        elif usage and line.strip().startswith("["):
            usage[-1] = (usage[-1][0], f"{usage[-1][1]} {line}")
    assert listed == set(leaves), f"not in the README's CLI section: {set(leaves) - listed}"
    for name, line in usage:
        takes = {opt for param in leaves[name].params for opt in param.opts}
        for option in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", line.split(None, 1)[1]):
            assert option in takes, f"`backcheck {name}` takes no {option}"


def test_the_quick_start_says_where_make_installs_backcheck() -> None:
    quick_start = _section((ROOT / "README.md").read_text(), "Two commands")
    assert ".venv/bin/activate" in quick_start
    assert ".venv/bin/backcheck" in quick_start


def test_the_architecture_page_states_the_persisted_names_the_code_uses() -> None:
    persisted = _section(
        (ROOT / "docs" / "architecture.md").read_text(), "Persisted names that must never change"
    )
    names = (
        EVENTS_TOPIC,
        COMMANDS_TOPIC,
        dead_letter_topic(COMMANDS_TOPIC),
        dead_letter_topic(EVENTS_TOPIC),
        OUTCOMES_TOPIC,
        f"{Backcheck.name}.views.v{ReadViews.version}",
        CedarDecisionPoint().policy_set_hash,
        # the workers' stores, named by this version of each projection
        *(kept.stream_table() for kept in KEPT),
        *(kept.stream_path(Settings(data_dir=Path("/data"))).name for kept in KEPT),
    )
    for name in names:
        assert f"`{name}`" in persisted, name


def test_each_decision_record_has_its_parts_and_is_in_the_index() -> None:
    index = (ROOT / "docs" / "decisions" / "README.md").read_text()
    assert DECISIONS
    for number, record in enumerate(DECISIONS, start=1):
        text = record.read_text()
        assert record.name.startswith(f"{number:04d}-"), f"{record.name}: numbered in order"
        assert text.startswith(f"# {number:04d}. "), f"{record.name}: title"
        for part in ("Context", "Decision", "Consequences", "Where in the code"):
            assert f"\n## {part}\n" in text, f"{record.name}: no '{part}' section"
        assert f"]({record.name})" in index, f"{record.name} is not in the index"


def test_every_test_the_changelog_names_exists() -> None:
    """Each fix in the changelog names the test that failed before it: that test is there."""
    text = (ROOT / "docs" / "changelog.md").read_text()
    named = re.findall(r"(tests/[\w/]+\.py)((?:::[\w\[\]]+)*)", text)
    assert len(named) > 20
    for path, names in named:
        source = (ROOT / path).read_text()
        for name in filter(None, names.split("::")):
            found = rf"(def|class) {re.escape(name.split('[')[0])}\b"
            assert re.search(found, source), f"{path}::{name}"
