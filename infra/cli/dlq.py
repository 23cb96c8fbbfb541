"""The command topic's dead letters: `dlq list|show|redrive`.

A command another service sent that could not be applied lies on `backcheck.commands.dlq.v1`
with why (its sender was answered `refused` on the outcomes topic). An operator lists them,
reads one whole, and once the cause is fixed (the candidate registered, a scope widened, a
bug mended) sends it back to the command topic as it came. Each redrive is recorded in the
store before the letter is sent (who, which letter, when: `audit` shows it), and a letter goes
back once unless --force.

A letter is named PARTITION@OFFSET, as `list` shows it. Exit codes: 0 done; 2 a letter named
wrongly or an option refused; 3 a letter already redriven (without --force); 4 no such letter;
69 no broker answers, or the topic is missing; the store's own as for every command
(75 busy, 69 unreachable).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from infra.cli.common import _Json, app, console, err, fail, open_app, parsed
from infra.inputs import InputError
from infra.terminal import cells, dim, json_text, markup_safe, visible

if TYPE_CHECKING:
    from infra.kafka.dead_letters import DeadLetters, Letter

dlq_cli = typer.Typer(
    help="Dead letters of the command topic: list them, show one, send them back after a fix "
    "(each redrive recorded; exit 3 already redriven, 4 no such letter, 65 a letter "
    "without its value, 69 no broker)."
)
app.add_typer(dlq_cli, name="dlq")

_Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers", help="host:port[,...] (default: BACKCHECK_KAFKA_BOOTSTRAP)"
    ),
]
_Topic = Annotated[str, typer.Option("--topic", help="the dead-letter topic")]
_Limit = Annotated[int, typer.Option(min=1, max=1000, help="letters at most (a page)")]
_From = Annotated[
    str | None,
    typer.Option("--from", help="start at this letter, PARTITION@OFFSET (default: the first)"),
]
_DLQ = "backcheck.commands.dlq.v1"


def _open(bootstrap_servers: str | None, topic: str) -> DeadLetters:
    from infra.config import Settings, parse_bootstrap
    from infra.kafka.dead_letters import DeadLetters

    bootstrap = parse_bootstrap(bootstrap_servers or Settings.load().kafka_bootstrap)
    return DeadLetters(bootstrap, topic)


def _named(text: str | None, option: str) -> None:
    """A letter named wrongly is refused before the broker is asked: exit 2, broker or not."""
    from infra.kafka.dead_letters import LetterReferenceError, letter_named

    if text is None:
        return
    try:
        letter_named(text)
    except LetterReferenceError as e:
        raise InputError(f"{option}: {e}") from None


def _where(text: str, letters: DeadLetters, option: str) -> tuple[int, int]:
    """The letter `text` names on the topic (an offset alone: on a topic of one partition)."""
    from infra.kafka.dead_letters import LetterReferenceError, parse_letter

    try:
        return parse_letter(text, letters.partitions)
    except LetterReferenceError as e:
        raise InputError(f"{option}: {e}") from None


def _summary(letter: Letter, redriven: int) -> dict[str, Any]:
    why, command = letter.why(), letter.command
    return {
        "letter": letter.ref,
        "time": (why.time if why else letter.time).isoformat(),
        "reason": why.reason.value if why else None,
        "type": command.get("ce_type"),
        "source": command.get("ce_source"),
        "id": command.get("ce_id"),
        "error": why.error if why else None,
        "redriven": redriven,
    }


@dlq_cli.command("list")
def dlq_list(
    limit: _Limit = 50,
    start: _From = None,
    topic: _Topic = _DLQ,
    bootstrap_servers: _Bootstrap = None,
    as_json: _Json = False,
) -> None:
    """List dead letters: where, when, why, which command, how often redriven.

    By partition, then offset; a page at most --limit long, the next starting at the letter
    printed after it (--from)."""
    try:
        _named(start, "--from")
        letters = _open(bootstrap_servers, topic)
        try:
            first = _where(start, letters, "--from") if start else None
            page, following = letters.page(first, limit)
        finally:
            letters.close()
        application, _ = open_app(existing=True)
        redriven = application.redriven(letter.redrives for letter in page)
    except Exception as e:
        fail(e, as_json)
    rows = [_summary(letter, redriven.get(letter.identity, 0)) for letter in page]
    if as_json:
        sys.stdout.write(orjson.dumps({"letters": rows, "next": following}).decode() + "\n")
        return
    table = Table("letter", "dead-lettered (UTC)", "reason", "type", "command", "redriven")
    for row in rows:
        table.add_row(
            *cells(
                row["letter"],
                row["time"][:19].replace("T", " "),
                row["reason"] or dim("(not the intake's)"),
                row["type"] or dim("—"),
                f"{row['id'] or '—'} from {row['source'] or '—'}",
                f"{row['redriven']} time(s)" if row["redriven"] else "",
            )
        )
    console.print(table)
    more = f"; next page: --from {following}" if following else ""
    console.print(f"{len(rows)} letter(s) on {markup_safe(topic)}{more}")


def _header(value: bytes) -> str:
    try:
        return visible(value.decode("utf-8"))
    except UnicodeDecodeError:
        return f"(bytes) {value.hex()}"


def _body(value: bytes | None) -> Text:
    if value is None:
        return dim("(no value)")
    try:
        return json_text(value.decode("utf-8"))
    except ValueError:  # not UTF-8 (UnicodeDecodeError), or not JSON
        try:
            return Text(visible(value.decode("utf-8")))
        except UnicodeDecodeError:
            return Text(f"(bytes, {len(value)}) {value.hex()}")


@dlq_cli.command("show")
def dlq_show(
    letter: Annotated[str, typer.Argument(help="PARTITION@OFFSET, as `dlq list` shows it")],
    topic: _Topic = _DLQ,
    bootstrap_servers: _Bootstrap = None,
    as_json: _Json = False,
) -> None:
    """Show one dead letter whole: its key, every header in order, and its body."""
    try:
        _named(letter, "LETTER")
        letters = _open(bootstrap_servers, topic)
        try:
            found = letters.one(*_where(letter, letters, "LETTER"))
        finally:
            letters.close()
    except Exception as e:
        fail(e, as_json)
    if as_json:
        document = {
            "letter": found.ref,
            "key": found.key.decode("utf-8", "replace") if found.key else None,
            "headers": [[n, v.decode("utf-8", "replace")] for n, v in found.headers],
            "value": found.value.decode("utf-8", "replace") if found.value else None,
        }
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
        return
    console.print(f"[bold]{markup_safe(found.place)}[/]  key {markup_safe(_key(found))}")
    table = Table("header", "value")
    for name, value in found.headers:
        table.add_row(*cells(name, _header(value)))
    console.print(table)
    console.print(_body(found.value))


def _key(letter: Letter) -> str:
    return _header(letter.key) if letter.key is not None else "(none)"


@dlq_cli.command("redrive")
def dlq_redrive(
    letters_named: Annotated[
        list[str] | None,
        typer.Argument(metavar="[LETTER]...", help="PARTITION@OFFSET of each letter"),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="or: every letter of this reason in the page read")
    ] = None,
    command_type: Annotated[
        str | None, typer.Option("--type", help="or: every letter of this command type")
    ] = None,
    start: _From = None,
    limit: _Limit = 50,
    force: Annotated[
        bool, typer.Option("--force", help="send letters that were redriven before again")
    ] = False,
    actor: Annotated[str, typer.Option("--actor", help="who is acting (recorded)")] = "operator",
    to_topic: Annotated[
        str, typer.Option("--to-topic", help="the command topic")
    ] = "backcheck.commands.v1",
    topic: _Topic = _DLQ,
    bootstrap_servers: _Bootstrap = None,
) -> None:
    """Send dead letters back to the command topic after a fix, each redrive recorded.

    The letters named, or those of a page (--from, --limit) matching --reason and/or --type,
    go back as they came. Each is recorded in the store before it is sent; if one was
    redriven before, nothing is sent unless --force."""
    if not letters_named and reason is None and command_type is None:
        raise typer.BadParameter("name letters, or select them with --reason and/or --type")
    _check_reason(reason)
    from infra.kafka.dead_letters import CommandTopic, LetterWithoutValueError
    from services.redrives import RecordRedrive

    try:
        for text in letters_named or []:
            _named(text, "LETTER")
        _named(start, "--from")
        application, _ = open_app()
        letters = _open(bootstrap_servers, topic)
        try:
            chosen = _chosen(letters, letters_named or [], reason, command_type, start, limit)
        finally:
            letters.close()
        for letter in chosen:  # sent back empty, it would be refused, a signed one as forged
            if not letter.value:
                raise LetterWithoutValueError(
                    f"letter {letter.ref} holds no value (its command was too large to keep: "
                    "see its dlq_error); nothing was sent: its sender sends the command again"
                )
        if not force:  # nothing is sent if one of them was sent back before
            application.refuse_redriven(letter.redrives for letter in chosen)
        target = CommandTopic(letters.bootstrap, to_topic)
        try:
            for letter in chosen:
                command = letter.command
                application.record_redrive(
                    parsed(
                        RecordRedrive,
                        letter=letter.identity,
                        command_id=command.get("ce_id", ""),
                        command_source=command.get("ce_source", ""),
                        command_type=command.get("ce_type", ""),
                        to_topic=to_topic,
                        actor=actor,
                        force=force,
                    )
                )
                partition, offset = target.send_back(letter)
                console.print(
                    f"redriven {letter.ref} ({markup_safe(command.get('ce_type', '?'))} "
                    f"{markup_safe(command.get('ce_id', '?'))}) to "
                    f"{markup_safe(to_topic)}/{partition}@{offset}"
                )
        finally:
            target.close()
    except Exception as e:
        fail(e)
    if not chosen:
        err.print("no letter matched; nothing was sent")


def _check_reason(reason: str | None) -> None:
    from infra.kafka.cloudevent import DeadLetterReason

    known = [r.value for r in DeadLetterReason]
    if reason is not None and reason not in known:
        raise typer.BadParameter(f"{reason!r}: one of {', '.join(known)}", param_hint="--reason")


def _chosen(
    letters: DeadLetters,
    named: list[str],
    reason: str | None,
    command_type: str | None,
    start: str | None,
    limit: int,
) -> list[Letter]:
    """The letters named (each must exist), else those of one page matching the filters."""
    if named:
        return [letters.one(*_where(text, letters, "LETTER")) for text in named]
    first = _where(start, letters, "--from") if start else None
    page, _ = letters.page(first, limit)
    found = []
    for letter in page:
        why = letter.why()
        if reason is not None and (why is None or why.reason.value != reason):
            continue
        if command_type is not None and letter.command.get("ce_type") != command_type:
            continue
        found.append(letter)
    return found
