"""The narrator of the demo: runs each step, prints it, and counts the steps and refusals.

A refusal is the story trying the wrong thing on purpose: it must be refused by the rule the
story names, and store nothing (or only its own access record, for a refused read).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.rule import Rule

from domain import errors
from infra.terminal import markup_safe
from services.application import Backcheck

T = TypeVar("T")

# A chapter's rule spans the terminal; piped or redirected, where the console does not wrap
# lines (infra/cli/common.py), a rule as wide as that would be 100,000 characters
RULE_WIDTH_OFF_TERMINAL = 80


class DemoFailedError(RuntimeError):
    """The story did not go as the rules say it must: a bug, not a refusal."""


class Narrator:
    """Tells the story on a console (a silent one unless given) as its steps are taken."""

    def __init__(self, app: Backcheck, console: Console | None = None) -> None:
        self.app = app
        self.out = console if console is not None else Console(quiet=True)
        self.refusals: list[str] = []
        self.steps = 0

    def chapter(self, title: str) -> None:
        width = None if self.out.is_terminal else RULE_WIDTH_OFF_TERMINAL
        self.out.print(Rule(f"[bold]{markup_safe(title)}"), width=width)

    def do(self, what: str, call: Callable[[], T]) -> T:
        result = call()
        self.steps += 1
        self.out.print(f"  [green]✓[/] {markup_safe(what)}")
        return result

    def did(self, what: str, steps: int) -> None:
        """Steps taken without telling each one: counted, and told as one line."""
        self.steps += steps
        self.out.print(f"  [green]✓[/] {markup_safe(what)}")

    def detail(self, line: str) -> None:
        """What a step showed, under it (stored values among it shown as text, never markup)."""
        self.out.print(f"      {markup_safe(line)}")

    def refused(
        self,
        what: str,
        expected: type[errors.DomainError],
        call: Callable[[], object],
        *,
        stores: int = 0,
    ) -> None:
        """Try the wrong thing: it must be refused, and store exactly `stores` events (none for
        a command; one, its access record, for a refused read)."""
        before = self.app.recorder.max_notification_id() or 0
        try:
            call()
        except expected as e:
            after = self.app.recorder.max_notification_id() or 0
            if after != before + stores:
                raise DemoFailedError(
                    f"{what}: refused, but {after - before} event(s) stored, not {stores}"
                ) from e
            rule = type(e).__name__.removesuffix("Error")
            self.refusals.append(rule)
            self.out.print(
                f"  [red]✗ refused[/] {markup_safe(what)}\n      [dim]{rule}:[/] {markup_safe(e)}"
            )
            return
        raise DemoFailedError(f"{what}: expected {expected.__name__}, but it was accepted")
