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
from services.batching import Batcher, Slot
from services.errors import DataKeyMissingError
from services.ports import ReadModel
from services.unit import UnitOfWork, receiving_now

T = TypeVar("T")
# A read's decision, given the views: the access records to store, and what to answer with.
Decide = Callable[[ReadModel], tuple[list[Aggregate], Any]]
Read = Slot[tuple[Context, Decide], Any]


class Unanswered(Exception):  # noqa: N818  (not an error of its own: it carries one)
    """A read decided but not answered: a value it was to return could not be opened, or it
    names a candidate outside its scoped principal's assignments that is not there. Its
    access records (failed, or refused; nothing returned) are stored as any read's are, and
    then the read fails with `error`."""

    def __init__(self, accesses: list[Aggregate], error: Exception) -> None:
        super().__init__(str(error))
        self.accesses = accesses
        self.error = error


def open_or_fail(open_values: Callable[[], T], failed: Callable[[], Access]) -> T:
    """What `open_values` opens; if a value's key is gone without a recorded erasure, the
    read is unanswered, and recorded as `failed()` says."""
    try:
        return open_values()
    except DataKeyMissingError as missing:
        raise Unanswered([failed()], missing.recorded()) from None


class RecordedReads(UnitOfWork):
    """The use cases' way to record a read: `_recorded(decide)` answers only once what
    `decide` made of the views is stored (services/queries.py decides each read)."""

    @cached_property
    def recorded_reads(self) -> Batcher[tuple[Context, Decide], Any]:
        """Concurrent reads, decided and recorded a batch at a time."""
        return Batcher(self._decide_and_record)

    def _recorded(self, decide: Decide) -> Any:
        """Decides a read on views current with every write committed before this call, and
        stores its access records durably; returns the answer only after that."""
        if receiving_now():
            # a delivered command's receipt goes in this use case's own write, alone
            try:
                accesses, answer = decide(self.read_model(deciding=True))
            except Unanswered as unanswered:
                self.commit(*unanswered.accesses)
                raise unanswered.error from None
            self.commit(*accesses)
            return answer
        return self.recorded_reads.submit((copy_context(), decide))

    def _decide_and_record(self, reads: list[Read]) -> None:
        views = self.read_model(deciding=True)  # after every read in the batch had started
        decided: list[tuple[Read, Any]] = []
        unanswered: list[tuple[Read, Exception]] = []
        accesses: list[Aggregate] = []
        for read in reads:
            context, decide = read.item
            try:
                recorded, answer = context.run(decide, views)
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
            self.commit(*accesses)  # durably recorded before anything is returned
        for read, answer in decided:
            read.succeed(answer)
        for read, cause in unanswered:
            read.fail(cause)
