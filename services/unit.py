"""The unit of work every use case shares: load aggregates, let reactions follow, save once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError, Recording
from eventsourcing.utils import EnvType

from domain.access import Access, Authenticated, Authentication
from domain.intake import CommandReceipt
from domain.retention import RetentionSchedule
from domain.subject import recorded_at, recording_time
from services.access import DecisionPoint
from services.dto import Reader
from services.errors import (
    AggregateMissingError,
    ConcurrentChangeError,
    DataKeyRaceError,
    InternalConflictError,
    OutsideAssignmentsError,
    VersionMismatchError,
)
from services.identity import check_reader, check_scope, current_identity
from services.ports import (
    DashboardModel,
    KeyStore,
    LinkDelivery,
    ReadModel,
    ReceiptSigner,
    SubjectLog,
)
from services.reaction import Reaction, default_reactions
from services.versions import WeakTag, expected_version, note_written

A = TypeVar("A", bound=Aggregate)
U = TypeVar("U", bound="UnitOfWork")
C = TypeVar("C")
R = TypeVar("R")
P = ParamSpec("P")
Clock = Callable[[], datetime]


OPERATOR = "operator"  # the principal of the command line on the store's own machine
# How many times a use case is decided again after its write collided only with a concurrent
# change to what it writes on its own account (see `UnitOfWork.commit`'s `internal`).
INTERNAL_RETRIES = 3
# tries of a write whose new data key another writer made first (the key is theirs the next time)
KEY_RACE_TRIES = 3


def use_case(method: Callable[Concatenate[U, C, P], R]) -> Callable[Concatenate[U, C, P], R]:
    """Runs a use case at one moment of the application's clock: its events carry that time.
    Under an authenticated identity, a read stating another principal or role is refused,
    and so is a command naming a candidate outside the identity's assignments
    (services/identity.py: check_reader, check_scope).

    A write that collided only with a concurrent change to an aggregate the use case writes
    on its own account, one its caller never named (a candidate's portal link, issued with a
    consent request), is decided again, the same command on a fresh load, up to
    INTERNAL_RETRIES times: the caller could do nothing about it but send the command again.
    Each try loads afresh, so an `If-Match` the caller sent is held to the new state too
    (`expecting`), and a collision on anything the caller did name stays theirs to hear."""

    @functools.wraps(method)
    def run(self: U, command: C, /, *args: P.args, **kwargs: P.kwargs) -> R:
        check_reader(command)
        check_scope(command)
        commanding = _commanding.set(not isinstance(command, Reader))
        tries = 0
        try:
            while True:
                try:
                    with recorded_at(self.clock(), by=caller_now()):
                        return method(self, command, *args, **kwargs)
                except InternalConflictError as e:
                    tries += 1
                    if tries > INTERNAL_RETRIES:
                        raise ConcurrentChangeError(list(e.details["aggregate_ids"])) from None
        finally:
            _commanding.reset(commanding)

    return run


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Collaborators:
    """What the use cases need besides the event store, every one of them present: the data
    keys personal values are sealed with, the erasure receipts' signer, the read views, the
    access decision point, how long each tier of personal data is kept, where candidates'
    portal links go, and the log read by data subject; and the dashboard's views (counts
    only), if this application keeps them."""

    keys: KeyStore
    signer: ReceiptSigner
    views: ReadModel
    decision_point: DecisionPoint
    retention: RetentionSchedule
    links: LinkDelivery
    subjects: SubjectLog
    dashboard: DashboardModel | None = None


# Builds the collaborators on the application's own event store, once it is open: the key
# store may share its connections, the views read its log (infra/bootstrap.py).
Wiring = Callable[[Application[UUID]], Collaborators]


@dataclass(frozen=True)
class Delivery:
    """A command as another service delivered it: the sender, the sender's id for the
    command, the use case it names, where it came from (e.g. topic/partition@offset), and how
    the sender was known (`signed-message` once its signature verified; else `asserted`)."""

    source: str
    command_id: str
    command_type: str
    channel: str
    authentication: Authentication = Authentication.ASSERTED


@dataclass
class Receiving:
    """A delivered command being applied; `receipt` is set once its receipt is committed, and
    `stored` then holds (event id, log position) of every event of that write, the receipt's
    last (an event id is `originator id:version`, as the relay publishes it)."""

    delivery: Delivery
    actor: str
    receipt: UUID | None = None
    stored: tuple[tuple[str, int], ...] = ()


_receiving: ContextVar[Receiving | None] = ContextVar("receiving", default=None)
# set while a command (not a read) runs: what it loads is held to the caller's assignments
_commanding: ContextVar[bool] = ContextVar("commanding", default=False)


def receiving_now() -> bool:
    """Whether the running use case applies a delivered command (see `receiving`)."""
    return _receiving.get() is not None


def caller_now() -> Authenticated:
    """Who the caller of the running use case was known to be, and how, for its command's
    events: an authenticated identity (token, OIDC, portal link); else a delivered command's
    sender (its signature verified, or asserted); else the operator on the store's machine —
    whatever actor the command names (an operator typing a candidate's id is the operator)."""
    identity = current_identity()
    if identity is not None:
        return Authenticated(identity.principal, identity.authentication.value)
    receiving = _receiving.get()
    if receiving is not None:
        delivery = receiving.delivery
        return Authenticated(delivery.source, delivery.authentication.value)
    return Authenticated(OPERATOR, Authentication.OPERATOR.value)


def _loaded_within_assignments(aggregate: Aggregate) -> None:
    """A command from a principal confined to some candidates that names another's consent,
    investigation or report by its id is refused as soon as it is loaded, before any rule
    is checked: a rule's answer (not active, wider than asked, no such check) would tell the
    caller about someone else's records. Reads are decided, and recorded, by the decision
    point instead (`AssignedDecisions`)."""
    if _commanding.get():
        _within_assignments((aggregate,))


def _within_assignments(aggregates: Iterable[Aggregate]) -> None:
    """A principal confined to some candidates changes nothing about anyone else (reactions
    included). Access records are the exception: a read outside the assignments is refused by
    the decision point (`AssignedDecisions`) and that refusal is recorded; and reads are saved
    in batches, each decided in its own reader's context, not this one."""
    identity = current_identity()
    if identity is None or not identity.assignments:
        return
    for aggregate in aggregates:
        subject = getattr(aggregate, "candidate_id", None)
        if (
            isinstance(subject, UUID)
            and subject not in identity.assignments
            and not isinstance(aggregate, Access)
        ):
            raise OutsideAssignmentsError(identity.principal, subject)


class ReceiptError(RuntimeError):
    """A bug, not a refusal: a use case run for a delivered command must write exactly once,
    about one data subject, so its receipt can go with that write."""


class UnitOfWork(Application[UUID]):
    """Base of the backcheck application: one event store, one notification log, one chain.

    Every use case saves exactly once, so a refused command leaves the store untouched and a
    reaction (services/reaction.py) is recorded atomically with the event that caused it.
    """

    name = "backcheck"
    is_snapshotting_enabled = False

    def __init__(self, env: EnvType, wiring: Wiring, clock: Clock = system_clock) -> None:
        """Opens the event store `env` names, then has `wiring` build the collaborators on
        it; if that fails, the store is closed again."""
        super().__init__(env)
        self.clock = clock
        self.reactions: tuple[Reaction, ...] = default_reactions()
        try:
            made = wiring(self)
        except BaseException:
            super().close()
            raise
        self.keys: KeyStore = made.keys
        self.signer: ReceiptSigner = made.signer
        self.views: ReadModel = made.views
        self.decision_point: DecisionPoint = made.decision_point
        self.retention: RetentionSchedule = made.retention
        self.links: LinkDelivery = made.links
        self.subjects: SubjectLog = made.subjects
        self.dashboard_views: DashboardModel | None = made.dashboard

    @property
    def kept_views(self) -> list[ReadModel]:
        """Every view model this application keeps from its log, the read views first: each
        is told what this process committed, and closed with the application."""
        dashboard = [] if self.dashboard_views is None else [self.dashboard_views]
        return [self.views, *dashboard]

    def now(self) -> datetime:
        """The one moment the running use case is decided at: the time its events carry.
        Every rule a use case checks against the time (a consent's window, what is due)
        asks this, never the clock again, so replaying the stored events judges each by the
        same moment the decision used (`audit check` agrees with what was allowed)."""
        return recording_time() or self.clock()

    def load(self, cls: type[A], aggregate_id: UUID) -> A:
        kind = cls.__name__.lower()
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, projector_func=_project)
        except AggregateNotFoundError:
            raise AggregateMissingError(kind, aggregate_id) from None
        if not isinstance(aggregate, cls):
            raise AggregateMissingError(kind, aggregate_id)
        wanted = expected_version(aggregate_id)
        _loaded_within_assignments(aggregate)
        if wanted is not None and (isinstance(wanted, WeakTag) or aggregate.version != wanted):
            raise VersionMismatchError(aggregate_id, wanted, aggregate.version)
        return aggregate

    def version_of(self, aggregate_id: UUID) -> int | None:
        """The aggregate's current version (None: no such aggregate), without loading it."""
        last = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return last[0].originator_version if last else None

    def of_subject(self, cls: type[A], candidate_id: UUID) -> list[A]:
        """The subject's consents, investigations or reports, found through the views."""
        view = cls.__name__.lower()
        found = self.read_model().of_subject(view, candidate_id, frozenset())  # ids alone
        return [self.load(cls, UUID(doc[f"{view}_id"])) for doc in found]

    def read_model(self, *, deciding: bool = False) -> ReadModel:
        """The views, brought up to date with every write committed before this call.

        `deciding`: only the views a read decision rests on need to be current; the access
        log may still lack this process's own latest access records (they are applied in
        batches, and before any query of the log)."""
        if deciding:
            self.views.catch_up_for_decisions()
        else:
            self.views.catch_up()
        return self.views

    def close(self) -> None:
        """Lets go of the views (applying what this process committed), the keys and the
        store; once: a second call (the library's destructor after an explicit close) does
        nothing, also when the first one failed."""
        if self.__dict__.get("_closed"):
            return
        self._closed = True
        with ExitStack() as closing:  # each closed, whichever fails: the store last
            closing.callback(super().close)
            closing.callback(self.keys.close)
            for model in reversed(self.kept_views):
                closing.callback(model.close)

    def replay(self, start: int = 1, subject: UUID | None = None) -> Iterator[tuple[int, Any]]:
        """(position, domain event) for every stored event, in notification-log order; or,
        given a data subject, for those naming that subject alone (read by the subject
        index: the cost is the subject's events, not the log's)."""
        while True:
            page = (
                self.recorder.select_notifications(start=start, limit=500)
                if subject is None
                else self.subjects.select_subject_notifications(subject, start, 500)
            )
            if not page:
                return
            for n in page:
                yield n.id, self.mapper.to_domain_event(n)
            start = page[-1].id + 1

    def exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def _save(self, aggregates: list[Aggregate]) -> list[Recording[UUID]]:
        """`Application.save` for aggregates only. The library's version first asks of each
        object whether it is an event or an aggregate through runtime-checked protocols,
        which on Python 3.11 costs more than the rest of a small save (bench/access_reads)."""
        processing = ProcessingEvent[UUID]()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        for attempt in range(1, KEY_RACE_TRIES + 1):
            try:
                with self.keys.with_the_write():  # new data keys stored with the events
                    recordings = self._record(processing)
                break
            except DataKeyRaceError:
                if attempt == KEY_RACE_TRIES:  # never seen: a new subject's keys race once
                    raise
        note_written(aggregates)
        self._notify(recordings)
        return recordings

    @contextmanager
    def receiving(self, delivery: Delivery, actor: str) -> Iterator[Receiving]:
        """While inside, the one write of the use case also stores the command's receipt
        (`domain/intake.py`): applied and receipted together, or neither."""
        state = Receiving(delivery, actor)
        token = _receiving.set(state)
        try:
            yield state
        finally:
            _receiving.reset(token)

    def commit(
        self, *aggregates: Aggregate, internal: Collection[Aggregate] = ()
    ) -> list[Aggregate]:
        """Save the aggregates and whatever the reactions changed, in one write.
        A delivered command's receipt (see `receiving`) is saved in the same write, so a
        second delivery of it conflicts with the receipt and records nothing.

        `internal`: aggregates among them the use case writes on its own account, which its
        command does not name. A write that collides with a concurrent change to these alone
        raises InternalConflictError, which `use_case` decides again; any other collision is
        a ConcurrentChangeError for the caller.

        Returns the aggregates the reactions changed, so callers can report them."""
        touched: dict[UUID, Aggregate] = {a.id: a for a in aggregates}
        reacted: dict[UUID, Aggregate] = {}

        def load(cls: type[A], aggregate_id: UUID) -> A:
            found = touched.get(aggregate_id) or self.load(cls, aggregate_id)
            if not isinstance(found, cls):
                raise AggregateMissingError(cls.__name__.lower(), aggregate_id)
            touched[aggregate_id] = found
            return found

        queue = [e for a in aggregates for e in a.pending_events]
        seen: set[int] = set()
        while queue:
            event = queue.pop(0)
            seen.add(id(event))
            for reaction in self.reactions:
                for changed in reaction.react(event, load):
                    reacted[changed.id] = changed
                    queue.extend(e for e in changed.pending_events if id(e) not in seen)
        _within_assignments(touched.values())
        receiving = _receiving.get()
        receipt = None
        if receiving is not None:
            caused = [f"{e.originator_id}:{e.originator_version}" for e in _pending(touched)]
            receipt = self._receipt(receiving, aggregates, tuple(caused))
        if receipt is not None:
            touched[receipt.id] = receipt
        loaded_at = {
            a.id: a.pending_events[0].originator_version - 1
            for a in touched.values()
            if a.pending_events
        }
        try:
            recordings = self._save(list(touched.values()))
        except RecordConflictError:
            ids = [str(a) for a in touched]
            moved = {i for i, v in loaded_at.items() if (self.version_of(i) or 0) != v}
            if moved and moved <= {a.id for a in internal}:
                raise InternalConflictError(ids) from None
            raise ConcurrentChangeError(ids) from None
        if receiving is not None and receipt is not None:
            receiving.receipt = receipt.id
            receiving.stored = tuple(
                (
                    f"{r.domain_event.originator_id}:{r.domain_event.originator_version}",
                    r.notification.id,
                )
                for r in recordings
            )
        committed = [(r.notification.id, r.domain_event, r.notification.state) for r in recordings]
        for model in self.kept_views:
            model.observe(committed)
        return list(reacted.values())

    @staticmethod
    def _receipt(
        receiving: Receiving, aggregates: tuple[Aggregate, ...], caused: tuple[str, ...]
    ) -> CommandReceipt:
        if receiving.receipt is not None:
            raise ReceiptError(
                f"{receiving.delivery.command_type} wrote twice for command "
                f"{receiving.delivery.command_id}; a use case saves once"
            )
        subject = getattr(aggregates[0], "candidate_id", None) if aggregates else None
        if not isinstance(subject, UUID):
            raise ReceiptError(
                f"{receiving.delivery.command_type} saved nothing about a data subject; "
                "a delivered command's receipt needs one"
            )
        d = receiving.delivery
        return CommandReceipt.record(
            subject, d.source, d.command_id, d.command_type, receiving.actor, d.channel, caused
        )


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector (`project_aggregate`) without its per-event check against a
    runtime protocol, which on Python 3.11 cost more than applying a small event: the events
    come from our own mapper, and one that could not mutate fails on the call alike."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _pending(aggregates: dict[UUID, Aggregate]) -> Iterator[Any]:
    """The events about to be saved, in the order `_save` collects them."""
    for aggregate in aggregates.values():
        yield from aggregate.pending_events
