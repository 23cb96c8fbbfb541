"""How errors are told to people and machines: one table, used by the CLI (and HTTP later).

A domain error is never a crash: not found 404, rule broken 409, invalid input 422. The
adapters' errors a person can act on (a broker down, a relay already running, an unusable key
or checkpoint) have their row here too; any other exception is a bug and crashes loudly.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
from pydantic import ValidationError

from domain.errors import (
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RuleBrokenError,
)
from infra.audit.chain import ChainBrokenError
from infra.audit.checkpoint import CheckpointError
from infra.audit.cosignatures import CosignatureError, NotCosignedError
from infra.audit.evidence import BundleError
from infra.audit.log_checkpoint import ForkError
from infra.audit.merkle import ProofError
from infra.audit.outputs import OutputPathError
from infra.config import ConfigError
from infra.http.errors import PortUnavailableError
from infra.inputs import InputError
from infra.kafka.dead_letters import DeadLetterNotFoundError, LetterWithoutValueError
from infra.kafka.refusal import KafkaRefusedError
from infra.kafka.relay import PartitionCountError, RelayBusyError, RelayFailedError
from infra.kafka.topics import BrokerUnavailableError, MissingTopicError, OutcomeTimeoutError
from infra.privacy.keystore import WrongMasterKeyError
from infra.privacy.sealing import SealBrokenError
from infra.store.filelock import AlreadyRunningError
from infra.store.migration_errors import SourceNotVerifiedError, TargetNotEmptyError
from infra.store.pool import NotAStoreError
from infra.store.server import StoreMisconfiguredError, StoreUnreachableError
from infra.store.transcoder import UnknownEventTypeError
from infra.store.tree_backfill import TreeBackfillError
from infra.views.integrity import ViewRowAlteredError
from infra.views.kept import KEPT
from infra.views.runner import ViewsFailedError
from services.errors import (
    AggregateMissingError,
    AuthenticationError,
    DataKeyMissingError,
    OutsideAssignmentsError,
    UseCaseNotPermittedError,
    VersionMismatchError,
)

# Exit codes from BSD sysexits.h where one fits; the domain's own below 64.
EX_DATAERR = 65  # the store's data is damaged: a data key gone without a recorded erasure
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73  # an output file refused or not writable (existing, the store's own, no room)
EX_IOERR = 74  # a file or the store could not be read or written (disk full, I/O error)
EX_TEMPFAIL = 75  # busy: another relay or demo runs, the store is locked; try again
# a token that establishes no one (unknown, revoked, expired)
EX_NOPERM = 77
EX_CONFIG = 78  # a setting that cannot be used; every master key fault (a key not the store's)
# The status of a configuration error (exit 78): the service cannot do its work as it is set up,
# as its readiness says (503), until the setting is fixed (no Retry-After: waiting cures
# nothing). Not 500, which says a bug: anything the table does not know.
CONFIG_STATUS = 503


# A problem's `type` is an absolute URI naming its kind, stable across hosts (RFC 4151 tag
# URIs: names, not links); the HTTP API's problem+json and the command outcomes share it.
TYPE_PREFIX = "tag:backcheck.invalid,2026:problems/"


def problem_type(kind: str) -> str:
    return TYPE_PREFIX + kind


@dataclass(frozen=True)
class ProblemDetails:
    """RFC 9457 problem details, and the exit code and one line a command reports it with."""

    status: int
    title: str
    type: str
    detail: str
    exit_code: int
    lead: str = ""
    """What the command line's report starts with, before `: detail` (none: the detail only)."""
    field: str | None = None
    """The field at fault, where one is known (`field_of`)."""

    def body(self) -> dict[str, object]:
        """The problem as a machine reads it (a command's --json, an HTTP problem+json):
        `field` where one is known, as the HTTP API's problem has it."""
        found: dict[str, object] = {
            "status": self.status,
            "title": self.title,
            "type": self.type,
            "detail": self.detail,
            "exit_code": self.exit_code,
        }
        if self.field is not None:
            found["field"] = self.field
        return found

    def line(self) -> str:
        return f"{self.lead}: {self.detail}" if self.lead else self.detail


# What a problem repeats of the sender's own text is bounded: a body's key names the field at
# fault, and a key is whatever the sender wrote (a 1 MiB one fits in a body), as long as a
# Kafka header a refusal repeats (infra/kafka/senders.py); a message may quote what was sent
# (a validator's words, a name that is no use case's). Each is cut, "..." marking the cut, by
# the one owner of the problem's shape: the HTTP problem+json (infra/http/problems.py), a
# command outcome (infra/kafka/outcome.py), and the command line's line and `--json`
# (`problem_for`) all take them from here.
MAX_FIELD = 120  # characters of a field's name, then "..."
MAX_MESSAGE = 300  # characters of the message about one field (`errors[].message`), then "..."
MAX_DETAIL = 2_000  # characters of a problem's `detail` (our own advice runs past 300), then "..."
MAX_ERRORS = 50  # fields listed in an invalid input's problem; the rest are counted
CUT = "..."


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` whole, or its first `limit` characters and "..." (a message: MAX_MESSAGE)."""
    return text if len(text) <= limit else f"{text[:limit]}{CUT}"


def field_name(location: Iterable[object]) -> str:
    """A field's place as a problem names it: its path joined with dots (an item of a list by
    its index), `(body)` for the body as a whole, cut at MAX_FIELD characters."""
    return bounded(".".join(str(p) for p in location) or "(body)", MAX_FIELD)


def unlisted(errors: Sized) -> str:
    """What the detail of an invalid input adds for the fields past MAX_ERRORS (none: "")."""
    more = len(errors) - MAX_ERRORS
    return f"; and {more:,} more field(s) not listed" if more > 0 else ""


def invalid_detail(listed: Iterable[tuple[str, str]], errors: Sized) -> str:
    """The detail of an invalid input: `field F: message` for each (field, message) listed
    (the first MAX_ERRORS of `errors`), each message cut at MAX_MESSAGE, the whole at
    MAX_DETAIL with the count of fields not listed kept at its end."""
    more = unlisted(errors)
    text = "; ".join(f"field {field}: {bounded(message)}" for field, message in listed)
    return bounded(text, MAX_DETAIL - len(CUT) - len(more)) + more


def _rule(error: Exception) -> str:
    return type(error).__name__.removesuffix("Error")


_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}


def field_message(error: Any) -> str:
    """One of a ValidationError's errors as its sender would say it: a command that is no JSON
    object is told so, not pydantic's "a valid dictionary or instance of RegisterCandidate"."""
    if error["type"] == "model_type" and not error["loc"]:
        kind = _JSON_KINDS.get(type(error["input"]), "null" if error["input"] is None else "")
        return f"the command is a JSON object of its fields, not {kind or 'this'}"
    return str(error["msg"])


def _fields(error: Exception) -> str:
    if not isinstance(error, ValidationError):
        return str(error)
    errors = error.errors()
    return invalid_detail(
        ((field_name(e["loc"]), field_message(e)) for e in errors[:MAX_ERRORS]), errors
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _sqlite_code(error: BaseException) -> int | None:
    """The primary SQLite result code behind a store error (the library wraps sqlite3's)."""
    for cause in _causes(error):
        if isinstance(cause, sqlite3.Error) and cause.sqlite_errorcode is not None:
            return cause.sqlite_errorcode & 0xFF
    return None


def _sqlite(*codes: int) -> Callable[[Exception], bool]:
    return lambda error: _sqlite_code(error) in codes


def _server_gone(error: Exception) -> bool:
    return any(
        isinstance(c, psycopg.OperationalError | psycopg_pool.PoolTimeout) for c in _causes(error)
    )


def _store_busy(error: Exception) -> str:
    return (
        f"another process holds the store's lock ({error}); nothing was recorded: try again "
        "when it is done"
    )


def _store_full(error: Exception) -> str:
    return f"the store could not be written: the disk is full ({error}); nothing was recorded"


def _store_io(error: Exception) -> str:
    return f"the store could not be read or written ({error})"


def _server_lost(error: Exception) -> str:
    return (
        f"PostgreSQL stopped answering ({error}); a write under way may or may not have been "
        "recorded: look (`backcheck events`) before running it again"
    )


def _views_failed(error: Exception) -> str:
    return (
        f"{error}; what the log holds stands, and the views catch up at the next read once "
        "the fault is gone (`backcheck views status` shows how far behind they are)"
    )


def _chain_broken(error: Exception) -> str:
    return f"{error}; nothing of this command was recorded"


def _unknown_event_type(error: Exception) -> str:
    return (
        f"{error}: the store holds a record this backcheck cannot read, written by a newer "
        "version of it or around its recorder (`backcheck audit verify` tells which)"
    )


def _file(error: Exception) -> str:
    """A file the command needed: which, and what is wrong with it, in the system's words."""
    if not isinstance(error, OSError):
        return str(error)
    reason = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def _always(_: Exception) -> bool:
    return True


_SQLITE_ERROR, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 1, 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


def _not_a_store(error: Exception) -> bool:
    """A file that is not an SQLite database, a damaged one, or one without the store's
    tables (an empty file, another program's database)."""
    code = _sqlite_code(error)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    return code == _SQLITE_ERROR and "no such table" in str(error)


def _store_damaged(error: Exception) -> str:
    if _sqlite_code(error) == _SQLITE_ERROR:
        what = f"it holds no backcheck store ({error})"
    else:
        what = f"it is not an SQLite database, or it is damaged ({error})"
    return (
        f"the store file cannot be used: {what}; check BACKCHECK_DATABASE_URL, or restore "
        "the file from a backup"
    )


# The kept views' own tables, by what each holds: in a views file beside an SQLite store
# (infra/views/sqlite.py), or in a PostgreSQL store's schema (infra/views/postgres.py: each
# kept views' table, its tracking, and a rebuild's table aside). A store's own tables are
# told apart from them: a store without those is `not-a-store`.
_ROWS, _TRACKING, _ASIDE = "rows", "tracking", "aside"
_SQLITE_VIEWS_TABLES = {"view_rows": _ROWS, "tracking": _TRACKING, "view_rows_aside": _ASIDE}
_PG_VIEWS_TABLES = {
    f"{kept.table}{end}": held
    for kept in KEPT
    for end, held in (("", _ROWS), ("_tracking", _TRACKING), ("_aside", _ASIDE))
}
_SQLITE_MISSING = re.compile(r"no such table: (?:main\.)?(\w+)$")
_PG_MISSING = re.compile(r'relation "(?:([^".]+)\.)?([^".]+)" does not exist')


def _missing_views_table(error: BaseException) -> tuple[str, str] | None:
    """What the table of the kept views `error` says is missing held (`_ROWS`, `_TRACKING`,
    `_ASIDE`), and which table it is, where, as a phrase; None if it says nothing of the kind
    (infra/store/pool.py names the file of an SQLite table missing)."""
    for cause in _causes(error):
        if isinstance(cause, sqlite3.Error):
            code = getattr(cause, "sqlite_errorcode", None)
            found = _SQLITE_MISSING.search(str(cause))
            if code is not None and code & 0xFF == _SQLITE_ERROR and found:
                held = _SQLITE_VIEWS_TABLES.get(found[1])
                if held is None:
                    return None
                file = getattr(cause, "database", None)
                where = f"the views file {file}" if file else "a views file beside the store"
                return held, f"{where} lacks its table {found[1]}"
        if isinstance(cause, psycopg.errors.UndefinedTable):
            found = _PG_MISSING.search(cause.diag.message_primary or str(cause))
            held = _PG_VIEWS_TABLES.get(found[2]) if found else None
            if found is None or held is None:
                return None
            schema = f" of the schema {found[1]}" if found[1] else ""
            return held, f"the views table {found[2]}{schema} is missing"
    return None


def _views_table_missing(error: Exception) -> bool:
    return _missing_views_table(error) is not None


_INTACT = "The event store is intact, and the views are made from its events: "
_REMEDY = {
    # the views' set-up makes a missing table again when a process opens them, and drops
    # their tracking with it: they apply the log again from its start
    _ROWS: "the kept views cannot be read or brought up to date without it. "
    + _INTACT
    + "`backcheck views rebuild` makes the table again with every row (so does opening the "
    "store again, restarting this process: the views then apply the log again from its "
    "start)",
    # made again empty on opening, the views then apply the log again from its start over
    # the rows they hold (their handlers are idempotent): whole again
    _TRACKING: "the kept views cannot tell how far they stand without it. "
    + _INTACT
    + "`backcheck views rebuild` makes it again with the views afresh (so does opening the "
    "store again, restarting this process: the views then apply the log again from its "
    "start)",
    _ASIDE: "the rebuild writing into it stopped, and the views in use are as they were. "
    + _INTACT
    + "run `backcheck views rebuild` again",
}


def _views_without_table(error: Exception) -> str:
    held, where = _missing_views_table(error) or (_ROWS, "a table of the kept views is missing")
    return f"{where} (removed outside backcheck): {_REMEDY[held]}"


@dataclass(frozen=True)
class _Row:
    family: type[Exception]
    status: int
    title: str
    exit_code: int
    type: str | None = None  # None: the broken rule, named by the error's class
    lead: str | None = None  # None: "title (type)"; "": the detail alone
    detail: Callable[[Exception], str] = str
    when: Callable[[Exception], bool] = _always  # which errors of the family the row takes


# The first row whose family the error belongs to decides: a subclass before its base.
_TABLE: tuple[_Row, ...] = (
    _Row(ValidationError, 422, "Invalid input", 2, "validation", detail=_fields),
    _Row(InputError, 422, "Invalid input", 2, "input"),
    _Row(ConfigError, CONFIG_STATUS, "Configuration error", EX_CONFIG, "config"),
    _Row(WrongMasterKeyError, CONFIG_STATUS, "Wrong master key", EX_CONFIG, "wrong-master-key"),
    _Row(StoreUnreachableError, 503, "Store unreachable", EX_UNAVAILABLE, "store-unreachable"),
    _Row(
        StoreMisconfiguredError,
        CONFIG_STATUS,
        "Store misconfigured",
        EX_CONFIG,
        "store-misconfigured",
    ),
    _Row(KafkaRefusedError, 503, "Kafka refused", EX_NOPERM, "kafka-refused", lead="Kafka refused"),
    _Row(
        BrokerUnavailableError,
        503,
        "Kafka unavailable",
        EX_UNAVAILABLE,
        "broker-unavailable",
        lead="Kafka unavailable",
    ),
    _Row(
        RelayFailedError,
        503,
        "Kafka unavailable",
        EX_UNAVAILABLE,
        "relay-failed",
        lead="Kafka unavailable",
    ),
    _Row(MissingTopicError, 503, "Kafka topic missing", EX_UNAVAILABLE, "topic-missing"),
    _Row(DeadLetterNotFoundError, 404, "Not found", 4, "dead-letter-not-found", lead=""),
    _Row(LetterWithoutValueError, 409, "Nothing to send back", EX_DATAERR, "no-value", lead=""),
    _Row(OutcomeTimeoutError, 504, "No answer", EX_TEMPFAIL, "outcome-timeout", lead=""),
    _Row(RelayBusyError, 409, "Relay busy", EX_TEMPFAIL, "relay-busy", lead="relay not started"),
    _Row(
        PartitionCountError,
        CONFIG_STATUS,
        "Partition count differs",
        EX_CONFIG,
        "partition-count",
        lead="relay stopped",
    ),
    _Row(CheckpointError, 422, "Checkpoint or key unusable", 2, "checkpoint"),
    _Row(CosignatureError, 422, "Cosignature refused", 2, "cosignature"),
    _Row(NotCosignedError, 409, "Not cosigned", EX_TEMPFAIL, "not-cosigned", lead="not exported"),
    _Row(BundleError, 422, "Evidence bundle unusable", 2, "bundle"),
    _Row(ForkError, 409, "Checkpoints disagree", EX_DATAERR, "fork", lead="fork"),
    _Row(ProofError, 422, "No such proof", 2, "proof"),
    _Row(OutputPathError, 409, "Output refused", EX_CANTCREAT, "output-path", lead="not written"),
    _Row(DataKeyMissingError, 500, "Data key missing", EX_DATAERR, "data-key-missing"),
    _Row(SealBrokenError, 500, "Sealed value altered", EX_DATAERR, "seal-broken"),
    _Row(ViewRowAlteredError, 500, "Views altered", EX_DATAERR, "views-altered"),
    # the events' own transaction found records stored around the recorder and rolled back:
    # the store's trail is damaged, not the caller's command: writing stops until it is verified
    _Row(ChainBrokenError, 500, "Chain broken", EX_DATAERR, "chain-broken", detail=_chain_broken),
    # a stored record no event of this backcheck: written by a newer version, or around the
    # recorder; the views cannot apply it, so every read that catches them up meets it
    _Row(
        UnknownEventTypeError,
        500,
        "Unknown event type",
        EX_DATAERR,
        "unknown-event-type",
        detail=_unknown_event_type,
    ),
    _Row(TreeBackfillError, 500, "Tree not built", EX_DATAERR, "tree-backfill", lead="stopped"),
    _Row(
        TargetNotEmptyError,
        409,
        "Target not empty",
        EX_CANTCREAT,
        "migration-target",
        lead="not migrated",
    ),
    _Row(
        SourceNotVerifiedError,
        409,
        "Store does not verify",
        EX_DATAERR,
        "migration-source",
        lead="not migrated",
    ),
    _Row(
        PortUnavailableError,
        503,
        "Port unavailable",
        EX_UNAVAILABLE,
        "port-unavailable",
        lead="not serving",
    ),
    _Row(AlreadyRunningError, 409, "Already running", EX_TEMPFAIL, "busy", lead="not started"),
    # the store's drivers' errors, wrapped by the library or not, told by what caused them
    _Row(
        Exception,
        503,
        "Store busy",
        EX_TEMPFAIL,
        "store-busy",
        detail=_store_busy,
        when=_sqlite(_SQLITE_BUSY, _SQLITE_LOCKED),
    ),
    _Row(
        Exception,
        507,
        "Store full",
        EX_IOERR,
        "store-full",
        detail=_store_full,
        when=_sqlite(_SQLITE_FULL),
    ),
    # a table of the kept views gone (dropped by hand): the views', not the store's, whatever
    # the driver's error (on SQLite the store's own "no such table" below, on PostgreSQL none)
    _Row(
        Exception,
        500,
        "Views failed",
        EX_IOERR,
        "views-failed",
        detail=_views_without_table,
        when=_views_table_missing,
    ),
    _Row(NotAStoreError, 500, "Not a store", EX_DATAERR, "not-a-store"),
    _Row(
        Exception,
        500,
        "Not a store",
        EX_DATAERR,
        "not-a-store",
        detail=_store_damaged,
        when=_not_a_store,
    ),
    _Row(
        Exception,
        500,
        "Store unusable",
        EX_IOERR,
        "store-io",
        detail=_store_io,
        when=_sqlite(_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN),
    ),
    _Row(
        Exception,
        503,
        "Store unreachable",
        EX_UNAVAILABLE,
        "store-unreachable",
        detail=_server_lost,
        when=_server_gone,
    ),
    # the kept views' store refused their catch-up for another reason (a table that refuses a
    # row, a damaged views file): after the store's own rows above, which tell a busy, full,
    # read-only or unreachable store by the cause, whichever store it is
    _Row(ViewsFailedError, 500, "Views failed", EX_IOERR, "views-failed", detail=_views_failed),
    _Row(UseCaseNotPermittedError, 403, "Forbidden", 5, "use-case-not-permitted"),
    _Row(OutsideAssignmentsError, 403, "Forbidden", 5, "outside-assignments"),
    _Row(VersionMismatchError, 412, "Precondition failed", 3, "version-mismatch"),
    _Row(AuthenticationError, 401, "Unauthenticated", EX_NOPERM, "unauthenticated"),
    _Row(NotFoundError, 404, "Not found", 4),
    _Row(ForbiddenError, 403, "Forbidden", 5),
    _Row(RuleBrokenError, 409, "Rule broken", 3),
    _Row(InvalidInputError, 422, "Invalid input", 2),
    _Row(DomainError, 422, "Refused", 2),
    # last: a file the command needed and could not use (a subclass above decides first)
    _Row(OSError, 500, "File unusable", EX_IOERR, "file", detail=_file),
)


def kind_exit_code(kind: str) -> int | None:
    """The exit code of the row of this kind (the `type` URI's tail an answer carries); None
    when no row has it (a broken rule's kind is the rule's name)."""
    return next(
        (row.exit_code for row in _TABLE if row.type is not None and row.type == kind), None
    )


def status_exit_code(status: int) -> int | None:
    """The exit code of the broken rules' family of this status (404 not found, 403
    forbidden, 409 a rule, 422 invalid); None when no family has it."""
    families = {row.status: row.exit_code for row in _TABLE if row.type is None}
    return families.get(status)


def family_exit_code(family: type[Exception]) -> int:
    """The exit code of the first row of `family` (e.g. `InvalidInputError`'s, 2)."""
    return next(row.exit_code for row in _TABLE if row.family is family)


# Where a client finds the ids of each kind: the API's route that lists them. The command
# line's words (services/errors.py) name `backcheck events`, a command of the operator's
# machine; whoever calls from elsewhere — a client of the HTTP API, a service whose command
# the intake answers on the outcomes topic — is told the route instead. A kind no route
# lists is told no place.
LISTED_BY_ROUTE = {
    "candidate": "list with `GET /v1/candidates`",
    "investigation": "list with `GET /v1/investigations`",
    "report": "list with `GET /v1/reports`",
    "consent": "list with `GET /v1/candidates/{candidate_id}/consents`",
}


def told_away_from_the_store(error: Exception) -> Exception:
    """`error` as a caller with no shell on the store's machine is told it (over HTTP, or on
    the command outcomes topic): an unknown id names the route that lists ids of its kind;
    any other error is itself."""
    if isinstance(error, AggregateMissingError):
        return error.listed_by(LISTED_BY_ROUTE.get(error.kind))
    return error


def field_of(error: Exception) -> str | None:
    """The field an error blames: a domain error's `field`, or invalid input's first field
    (the one its detail starts with); None when it blames none."""
    if isinstance(error, ValidationError):
        errors = error.errors()
        return field_name(errors[0]["loc"]) if errors else None
    if isinstance(error, DomainError) and isinstance(error.details.get("field"), str):
        return field_name([error.details["field"]])
    return None


def problem_for(error: Exception) -> ProblemDetails | None:
    """The problem report for an expected error; None for a bug (let it crash loudly)."""
    for row in _TABLE:
        if isinstance(error, row.family) and row.when(error):
            kind = row.type or _rule(error)
            lead = f"{row.title} ({kind})" if row.lead is None else row.lead
            return ProblemDetails(
                row.status,
                row.title,
                kind,
                bounded(row.detail(error), MAX_DETAIL),
                row.exit_code,
                lead,
                field_of(error),
            )
    return None
