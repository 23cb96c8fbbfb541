"""The backcheck application: every use case over one event store."""

from __future__ import annotations

from services.audit_reads import AuditReads
from services.candidates import CandidateUseCases
from services.consent_expiry import ConsentExpiryUseCases
from services.consents import ConsentUseCases
from services.history import HistoryQueries
from services.investigations import InvestigationUseCases
from services.lists import ListQueries
from services.principals import PrincipalUseCases
from services.read_log import ReadLogQueries
from services.redrives import RedriveUseCases
from services.refusals import RefusalQueries
from services.reports import ReportUseCases
from services.retention import RetentionUseCases
from services.senders import SenderUseCases
from services.state_reads import StateReads
from services.subject_export import SubjectExports
from services.visibility import VisibilityQueries


class Backcheck(
    StateReads,  # `show`, over the use cases of each aggregate
    SubjectExports,
    VisibilityQueries,
    CandidateUseCases,
    ConsentUseCases,
    ConsentExpiryUseCases,
    InvestigationUseCases,
    ReportUseCases,
    AuditReads,
    RefusalQueries,  # and the dashboard's queries (services/dashboard.py)
    ReadLogQueries,  # the recorded reads by time (`backcheck audit reads`)
    RetentionUseCases,
    HistoryQueries,
    PrincipalUseCases,
    SenderUseCases,
    ListQueries,
    RedriveUseCases,  # an operator's redrives of dead letters (`backcheck dlq redrive`)
):
    """Composed from one mixin per aggregate; all share one store and one unit of work."""
