"""`show`: the current state of a candidate, consent, investigation or report, recorded.

A state holds no personal value (ids, categories, statuses, the steps of an erasure), but it
tells who is being checked and how far: like the timeline (services/audit_reads.py), it is
read as the access log is, and a read of the candidate it is about is recorded first.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from pydantic import BaseModel

from domain.errors import NotFoundError
from services.audit_reads import AuditReads
from services.candidates import CandidateUseCases
from services.consents import ConsentUseCases
from services.dto import Reader
from services.investigations import InvestigationUseCases
from services.recording import READ_FAILURES
from services.reports import ReportUseCases
from services.unit import use_case

STATE_VIEW = "state"


class ShowState(Reader):
    """The current state of a candidate, consent, investigation or report (ids, statuses)."""

    aggregate_id: UUID


class StateReads(
    CandidateUseCases, ConsentUseCases, InvestigationUseCases, ReportUseCases, AuditReads
):
    @use_case
    def show_state(self, cmd: ShowState) -> BaseModel:
        """The current state of a candidate, consent, investigation or report; a read of the
        candidate it is about is recorded first."""
        getters: tuple[Callable[[UUID], BaseModel], ...] = (
            self.get_candidate,
            self.get_consent,
            self.get_investigation,
            self.get_report,
        )
        for get in getters:
            try:
                state = get(cmd.aggregate_id)
            except NotFoundError:
                continue
            except READ_FAILURES as error:  # its events do not open: recorded as failed
                subject = self._stored_subject(cmd.aggregate_id)
                if subject is None:
                    raise
                raise self._record_failure(cmd, STATE_VIEW, subject, error) from None
            subject = getattr(state, "candidate_id", cmd.aggregate_id)
            self._read_subjects(cmd, [subject], STATE_VIEW)
            return state
        raise NotFoundError(f"nothing with id {cmd.aggregate_id} in the store")
