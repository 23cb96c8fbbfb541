"""How reads of personal data are recorded: decided, their access events stored durably,
and only then answered (fail closed).

Concurrent reads are decided and recorded together (services/batching.py): the first reader
to arrive brings the views up to date once, decides every read queued behind it — each in its
own caller's context, so each access event carries its own use case's time — and stores all
their access events in one write. Nobody gets an answer before that write is durable; a read
that fails to be decided fails alone; if the write fails, every read in it fails. A read that
is decided but not answered (`Unanswered`) has its records stored with the others, then fails.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Context, copy_context
from functools import cached_property
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate

from domain.access import Access
from domain.errors import PickledAsItIs
from services.batching import Batcher, Slot
from services.errors import DataKeyMissingError, StoredDataAlteredError, retold
from services.ports import ReadModel
from services.unit import UnitOfWork, receiving_now

T = TypeVar("T")
# A read's decision, given the views: the access records to store, and what to answer with.
Decide = Callable[[ReadModel], tuple[list[Aggregate], Any]]
# The records of a read that failed before it was decided, given why (a `ReadFailure`): one
# `failed` record a subject it was about, naming no policy and no consent (nothing decided).
Attempt = Callable[[str], list[Aggregate]]
Read = Slot[tuple[Context, Decide, Attempt | None], Any]
# What makes a read fail with nothing returned, recorded as failed with the error's `failure`:
# the data it was to use was altered outside backcheck, or a key is gone without an erasure.
READ_FAILURES: tuple[type[Exception], ...] = (StoredDataAlteredError, DataKeyMissingError)
RECORDED = "nothing was returned, and the attempt was recorded"


class Unanswered(PickledAsItIs, Exception):  # noqa: N818  (not an error of its own: it carries one)
    """A read decided but not answered: a value it was to return could not be opened, or it
    names a candidate outside its scoped principal's assignments that is not there. Its
    access records (failed, or refused; nothing returned) are stored as any read's are, and
    then the read fails with `error`."""

    def __init__(self, accesses: list[Aggregate], error: Exception) -> None:
        super().__init__(str(error))
        self.accesses = accesses
        self.error = error


def recorded_failure(error: Exception) -> Exception:
    """The error that stopped a read, saying that the read was recorded (as failed)."""
    if isinstance(error, DataKeyMissingError):
        return error.recorded()
    if isinstance(error, StoredDataAlteredError):
        return error.noted(RECORDED)
    return error


def unrecorded_failure(error: Exception, why: Exception) -> Exception:
    """The error that stopped a read, saying that the attempt could not be recorded."""
    note = f"the attempt could not be recorded either ({type(why).__name__}: {why})"
    if isinstance(error, StoredDataAlteredError):
        return error.noted(note)
    if isinstance(error, DataKeyMissingError):
        unrecorded = DataKeyMissingError(error.candidate_id, error.tier)
        return retold(unrecorded, f"{unrecorded}; {note}")
    return error


def open_or_fail(open_values: Callable[[], T], failed: Callable[[str], Access]) -> T:
    """What `open_values` opens; if a value cannot be opened (its key gone without a
    recorded erasure, its seal or its row altered), the read is unanswered, and recorded as
    `failed(why)` says."""
    try:
        return open_values()
    except READ_FAILURES as error:
        raise Unanswered([failed(failure_of(error))], recorded_failure(error)) from None


def failure_of(error: Exception) -> str:
    return str(getattr(error, "failure"))  # noqa: B009  (READ_FAILURES all carry it)


class RecordedReads(UnitOfWork):
    """The use cases' way to record a read: `_recorded(decide)` answers only once what
    `decide` made of the views is stored (services/queries.py decides each read)."""

    @cached_property
    def recorded_reads(self) -> Batcher[tuple[Context, Decide, Attempt | None], Any]:
        """Concurrent reads, decided and recorded a batch at a time."""
        return Batcher(self._decide_and_record)

    def _recorded(self, decide: Decide, attempt: Attempt | None = None) -> Any:
        """Decides a read on views current with every write committed before this call, and
        stores its access records durably; returns the answer only after that. A read that
        fails before it is decided, on data altered outside backcheck (READ_FAILURES), is
        recorded as `attempt(why)` says, and then fails: every attempt leaves a record."""
        if receiving_now():
            # a delivered command's receipt goes in this use case's own write, alone
            try:
                views = self._deciding_views()
                accesses, answer = self._decide(decide, attempt, views)
            except Unanswered as unanswered:
                self._commit_failed(unanswered)
                raise unanswered.error from None
            self.commit(*accesses)
            return answer
        return self.recorded_reads.submit((copy_context(), decide, attempt))

    def _deciding_views(self) -> ReadModel | Exception:
        """The views, current for deciding; or the error that kept them from being brought
        up to date (a row altered outside backcheck: every read waiting on them fails on it)."""
        try:
            return self.read_model(deciding=True)
        except READ_FAILURES as error:
            return error

    def _decide(self, decide: Decide, attempt: Attempt | None, views: ReadModel | Exception) -> Any:
        """`decide(views)`; a read that fails on altered data is Unanswered, with the
        records `attempt` makes (or, when it can make none, with the error saying so)."""
        try:
            if isinstance(views, Exception):
                raise views
            return decide(views)
        except READ_FAILURES as error:
            if attempt is None:
                raise
            try:
                accesses = attempt(failure_of(error))
            except Exception as why:  # the store cannot say whom it was about
                raise unrecorded_failure(error, why) from None
            raise Unanswered(accesses, recorded_failure(error)) from None

    def _commit_failed(self, unanswered: Unanswered) -> None:
        try:
            self.commit(*unanswered.accesses)
        except Exception as why:  # the store itself cannot take the record
            unanswered.error = unrecorded_failure(_unnoted(unanswered.error), why)

    def _decide_and_record(self, reads: list[Read]) -> None:
        views = self._deciding_views()  # after every read in the batch had started
        decided: list[tuple[Read, Any]] = []
        unanswered: list[tuple[Read, Exception]] = []
        accesses: list[Aggregate] = []
        for read in reads:
            context, decide, attempt = read.item
            try:
                recorded, answer = context.run(self._decide, decide, attempt, views)
            except Unanswered as failed:  # recorded with the others, then it fails
                accesses.extend(failed.accesses)
                unanswered.append((read, failed.error))
                continue
            except Exception as error:  # this read's own fault (not found, invalid): alone
                read.fail(error)
                continue
            decided.append((read, answer))
            accesses.extend(recorded)
        if accesses:
            try:
                self.commit(*accesses)  # durably recorded before anything is returned
            except Exception as why:
                for read, cause in unanswered:  # each says its attempt is not recorded
                    read.fail(unrecorded_failure(_unnoted(cause), why))
                raise  # the decided reads fail with it: nothing was recorded
        for read, answer in decided:
            read.succeed(answer)
        for read, cause in unanswered:
            read.fail(cause)


def _unnoted(error: Exception) -> Exception:
    """`error` without the note that its attempt was recorded (it turned out not to be)."""
    if isinstance(error, DataKeyMissingError):
        return DataKeyMissingError(error.candidate_id, error.tier)
    if isinstance(error, StoredDataAlteredError) and error.args:
        return retold(error, str(error).removesuffix(f"; {RECORDED}"))
    return error
