"""Chapter 4: findings from several sources, cross-verified.

Education rests on one authoritative source; employment on two witnesses of different roles
(after the rules turn away an excluded referee, a recording and a single witness); references
on a possibly biased peer and the direct supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import errors
from domain.check import Method, Outcome, SourceRole
from infra.demo.narrator import Narrator
from infra.demo.plan import PlanIds
from infra.demo.script import INVESTIGATOR
from services import dto
from services.application import Backcheck

ACME = "Acme Logistics"


@dataclass(frozen=True)
class FindingIds:
    """The findings recorded, in the order the witnesses were heard."""

    finding_ids: tuple[UUID, ...]


def cross_verify(app: Backcheck, n: Narrator, planned: PlanIds) -> FindingIds:
    """Needs the investigation started (chapter 2); concludes every check."""
    n.chapter("4. Findings from several sources, cross-verified")
    registrar = _finding(
        planned,
        planned.education_check_id,
        dto.SourceIn(
            role=SourceRole.REGISTRAR, reference="fudan-registry", organisation="Fudan University"
        ),
        Method.REGISTRY,
        Outcome.CONFIRMED,
    )
    n.do("the Fudan registrar confirms the degree", lambda: app.record_finding(registrar))
    n.do(
        "education concluded: confirmed on one authoritative source",
        lambda: app.conclude_check(
            _conclusion(planned, planned.education_check_id, Outcome.CONFIRMED)
        ),
    )
    employment = _hear_employment_witnesses(app, n, planned)
    references = _hear_referees(app, n, planned)
    return FindingIds(finding_ids=(registrar.finding_id, *employment, *references))


def _hear_employment_witnesses(app: Backcheck, n: Narrator, planned: PlanIds) -> list[UUID]:
    check = planned.employment_check_id
    acme_hr = _acme(SourceRole.HR, "ref-1")
    n.refused(
        "call a referee at Nimbus Tech, the current employer the candidate excluded",
        errors.RefereeNotPermittedError,
        lambda: app.record_finding(
            _finding(
                planned,
                planned.reference_check_id,
                dto.SourceIn(
                    role=SourceRole.DIRECT_SUPERVISOR, reference="ref-9", organisation="Nimbus Tech"
                ),
                Method.PHONE,
                Outcome.CONFIRMED,
            )
        ),
    )
    n.refused(
        "record the phone call with the Acme HR officer (recording not consented)",
        errors.RecordingNotConsentedError,
        lambda: app.record_finding(
            _finding(
                planned,
                check,
                acme_hr,
                Method.PHONE,
                Outcome.DISCREPANCY,
                conversation_recorded=True,
            )
        ),
    )
    hr = _finding(
        planned,
        check,
        acme_hr,
        Method.PHONE,
        Outcome.DISCREPANCY,
        notes="HR records show last working day 2020-12-31",
    )
    n.do("Acme HR says employment ended 2020-12, not 2021-06", lambda: app.record_finding(hr))
    n.refused(
        "conclude a discrepancy on that one witness",
        errors.NegativeConclusionNeedsSecondSourceError,
        lambda: app.conclude_check(_conclusion(planned, check, Outcome.DISCREPANCY)),
    )
    supervisor = _hear(
        app,
        n,
        "the former direct supervisor, by email, gives the same end date",
        _finding(
            planned,
            check,
            _acme(SourceRole.DIRECT_SUPERVISOR, "ref-2"),
            Method.EMAIL,
            Outcome.DISCREPANCY,
            notes="left the team at the end of 2020",
        ),
    )
    n.do(
        "employment concluded: discrepancy, on two sources of different roles",
        lambda: app.conclude_check(_conclusion(planned, check, Outcome.DISCREPANCY)),
    )
    return [hr.finding_id, supervisor]


def _hear_referees(app: Backcheck, n: Narrator, planned: PlanIds) -> list[UUID]:
    check = planned.reference_check_id
    peer = _hear(
        app,
        n,
        "a peer praises the candidate's work (flagged: close friend, possible bias)",
        _finding(
            planned,
            check,
            _acme(SourceRole.PEER, "ref-3"),
            Method.INTERVIEW,
            Outcome.CONFIRMED,
            notes="reliable, led the routing rewrite",
            possible_bias=True,
        ),
    )
    supervisor = _hear(
        app,
        n,
        "the direct supervisor confirms the assessment by phone",
        _finding(
            planned,
            check,
            _acme(SourceRole.DIRECT_SUPERVISOR, "ref-2"),
            Method.PHONE,
            Outcome.CONFIRMED,
            notes="strong engineer, would rehire",
        ),
    )
    n.do(
        "references concluded: confirmed",
        lambda: app.conclude_check(_conclusion(planned, check, Outcome.CONFIRMED)),
    )
    return [peer, supervisor]


def _hear(app: Backcheck, n: Narrator, what: str, finding: dto.RecordFinding) -> UUID:
    """A witness heard: the finding recorded, its id returned."""
    n.do(what, lambda: app.record_finding(finding))
    return finding.finding_id


def _acme(role: SourceRole, reference: str) -> dto.SourceIn:
    return dto.SourceIn(role=role, reference=reference, organisation=ACME)


def _finding(
    planned: PlanIds,
    check_id: UUID,
    source: dto.SourceIn,
    method: Method,
    outcome: Outcome,
    *,
    notes: str | None = None,
    conversation_recorded: bool = False,
    possible_bias: bool = False,
) -> dto.RecordFinding:
    return dto.RecordFinding(
        investigation_id=planned.investigation_id,
        check_id=check_id,
        source=source,
        method=method,
        outcome=outcome,
        notes=notes,
        conversation_recorded=conversation_recorded,
        possible_bias=possible_bias,
        actor=INVESTIGATOR,
    )


def _conclusion(planned: PlanIds, check_id: UUID, outcome: Outcome) -> dto.ConcludeCheck:
    return dto.ConcludeCheck(
        investigation_id=planned.investigation_id,
        check_id=check_id,
        outcome=outcome,
        actor=INVESTIGATOR,
    )
