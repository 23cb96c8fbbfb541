"""What every command shares: the typer app, the consoles, opening the store, turning an
error into its problem and exit code, and the options of a recorded read."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console
from rich.text import Text

from infra.terminal import visible

if TYPE_CHECKING:
    from pydantic import BaseModel

    from infra.config import Settings
    from infra.problem import ProblemDetails
    from services.application import Backcheck

app = typer.Typer(
    name="backcheck",
    help="Employment background checks under strict privacy management (event-sourced).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def one_line_summaries(group: typer.Typer) -> None:
    """Each command's line in its group's list of commands: its help's first paragraph, on
    one line. Typer's rich help keeps a docstring's line breaks there, so a summary wrapped
    in the source broke mid-sentence in `backcheck --help`; the command's own `--help`
    reflows it already. A summary given explicitly is kept."""
    for command in group.registered_commands:
        if command.short_help is None:
            text = command.help or inspect.getdoc(command.callback) or ""
            command.short_help = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
    for sub in group.registered_groups:
        if isinstance(sub.typer_instance, typer.Typer):
            one_line_summaries(sub.typer_instance)


# Piped or redirected, a line stays whole for grep, cut and awk, and a table as wide as its
# cells; at a terminal, both fit its width.
_UNWRAPPED = 100_000


def _console(*, stderr: bool = False) -> Console:
    # No :emoji: codes: a stored ":smile:" is shown as typed.
    console = Console(stderr=stderr, emoji=False)
    if not console.is_terminal:
        console.width = _UNWRAPPED
        console.soft_wrap = True
    return console


console = _console()
err = _console(stderr=True)


def _print_version() -> None:
    from importlib.metadata import version  # reads the installed metadata: only when asked

    console.print(f"backcheck {version('backcheck')}")


def _version(asked: bool) -> None:
    if asked:
        _print_version()
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    pass


@app.command("version")
def show_version() -> None:
    """Print the installed version (the same as --version)."""
    _print_version()


_opened: list[Backcheck] = []


def open_app(*, existing: bool = False, serving: str | None = None) -> tuple[Backcheck, Settings]:
    """The application on the configured store; closed when the command ends
    (`close_opened`). The composition root is imported here, by the commands that open the
    store, so that `--help` and `--version` load no driver, policy engine or cipher.

    `existing`: the command only reads the store (a check, a replay, a read, an export), so an
    embedded store that is not there is said in one line naming where it was looked for
    (exit 74, as `audit verify` says it), before anything is made: no empty store, key or
    directory is left behind by a mistyped path.

    `serving`: the address `backcheck serve` listens on; portal links then open it, unless
    BACKCHECK_PUBLIC_URL says where they should (the default's port would be another one
    under `--port 0` or any other port)."""
    from infra.bootstrap import build_app

    settings = load_settings(existing=existing)
    if serving is not None and "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": serving})
    application = build_app(settings)
    _opened.append(application)
    return application, settings


def load_settings(*, existing: bool = False) -> Settings:
    """The configured settings, the directories they name made: one that cannot be is the
    same configuration error (exit 78, naming its setting) whichever command meets it first,
    rather than an unusable file named after whatever was to be made in it (the demo's lock,
    a key). `existing`: an embedded store that is not there is refused first (`open_app`)."""
    from infra.config import Settings

    settings = Settings.load()
    if existing and settings.backend == "sqlite":
        from infra.store.pool import existing_store

        existing_store(settings.sqlite_path)  # before any directory is made for it
    settings.make_directories()
    return settings


def close_opened() -> None:
    """Closes what the command opened, rather than leave it to a destructor at exit: closing
    applies what this process committed to the kept views. If that fails (a full disk),
    nothing is lost, since the views catch up on the next read: their runner says so in one
    line (infra/views/runner.py, decision 0055), and the command's exit code stands. Should
    the rest of closing fail (the key store, the store's connections), it is said here in one
    line, and the exit code stands too: what the command recorded is recorded."""
    while _opened:
        application = _opened.pop()
        try:
            application.close()
        except Exception as e:
            problem = _problem(e)
            if problem is None:
                raise
            err.print(
                Text(
                    f"the store was not closed cleanly ({problem.title}: {visible(e)}); what "
                    "the command recorded stands",
                    style="yellow",
                )
            )


def _problem(error: Exception) -> ProblemDetails | None:
    """The error's row in the problem table. The table names every adapter's errors, so it is
    imported when a command fails, not by every command's start."""
    from infra.problem import problem_for

    return problem_for(error)


def fail(error: Exception, as_json: bool = False) -> NoReturn:
    """Reports an expected error by its row in the problem table (infra/problem.py) and exits
    with its code: one line on stderr, or with --json the problem object on stdout. Any other
    error is a bug and is raised again."""
    problem = _problem(error)
    if problem is None:
        raise error
    if as_json:
        sys.stdout.write(orjson.dumps(problem.body()).decode() + "\n")
    elif problem.lead:
        err.print(Text.assemble((problem.lead, "red"), f": {visible(problem.detail)}"))
    else:
        err.print(Text(visible(problem.detail), style="red"))
    raise typer.Exit(problem.exit_code)


_LONGEST_WORD_SHOWN = 80  # of a value typed, quoted back in an error


def _shortened(message: str) -> str:
    """`message` with each run of more than `_LONGEST_WORD_SHOWN` characters without a space
    (a value typed, quoted back) cut, saying how long it was: the error stays one line."""
    import re

    def cut(found: re.Match[str]) -> str:
        word = found.group(0)
        return f"{word[:_LONGEST_WORD_SHOWN]}… ({len(word):,} characters)"

    return re.sub(rf"\S{{{_LONGEST_WORD_SHOWN + 1},}}", cut, message)


def usage_error(error: Exception) -> int:
    """The exit code of a command line typer could not take (an unknown option, an argument
    missing or of the wrong type), reported in one line as invalid input naming the command
    and the parameter; `--help` for the rest. Any other error is raised again."""
    from typer import _click

    from infra.inputs import InputError

    if isinstance(error, _click.exceptions.NoArgsIsHelpError):
        return error.exit_code  # the help is printed already
    if isinstance(error, typer.Abort):
        err.print(Text("Aborted", style="red"))
        return 1
    if not isinstance(error, _click.exceptions.ClickException):
        raise error
    ctx = getattr(error, "ctx", None)
    command = ctx.command_path if ctx is not None else "backcheck"
    detail = f"{command}: {_shortened(error.format_message())} (see `{command} --help`)"
    try:
        fail(InputError(detail))
    except typer.Exit as e:
        return e.exit_code


# The options every recorded read takes.
_As = Annotated[str, typer.Option("--as", help="who is reading, e.g. hr:li.na or candidate:ID")]
_Purpose = Annotated[str, typer.Option(help="why; recorded with the read")]
_ConsentedPurpose = Annotated[str, typer.Option(help="why; must be a purpose the consent names")]
_BreakGlass = Annotated[
    str | None, typer.Option(help="compliance only: the justification to record")
]
_Json = Annotated[bool, typer.Option("--json", help="the answer as one JSON object")]
# What a command about a subject's history (`events`, `show`, `audit timeline|as-of`) records
# its read with: the operator reads as compliance, authenticated as `operator`.
OPERATOR = "operator"
_Operator = Annotated[
    str, typer.Option("--as", help="who is reading (recorded, as authenticated by operator)")
]
_HistoryPurpose = Annotated[str, typer.Option(help="why; recorded with the read")]
HISTORY_PURPOSE = "audit on the store's own machine"
View = TypeVar("View", bound="BaseModel")
Model = TypeVar("Model", bound="BaseModel")


def parsed(model: type[Model], **fields: Any) -> Model:
    """The command built from what was typed, validated as any transport's would be (a bad
    role or purpose is reported field by field, exit 2)."""
    return model.model_validate(fields)


def recorded_read(as_json: bool, read: Callable[[Backcheck], View]) -> View | None:
    """Runs one recorded read on the configured store: a refusal or an error becomes its
    problem and exit code, and with --json the answer is printed here. Otherwise returns the
    answer for the command to show as tables."""
    try:
        application, _ = open_app(existing=True)
        view = read(application)
    except Exception as e:
        fail(e, as_json)
        return None
    if as_json:
        sys.stdout.write(view.model_dump_json() + "\n")
        return None
    return view
