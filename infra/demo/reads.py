"""Chapter 8: reads of personal data are decided, redacted and recorded.

Every read here, allowed or refused, leaves an access record; the candidate sees them all in
her access log.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import errors
from infra.demo.consent import ConsentIds
from infra.demo.narrator import Narrator
from infra.demo.plan import PlanIds
from infra.demo.script import GROWTH, HR, PURPOSE
from services import dto
from services.access import Role
from services.application import Backcheck


@dataclass(frozen=True)
class ReadIds:
    """The access records of the reads that were allowed (refused reads are recorded too, and
    show in her access log)."""

    profile_access_id: UUID
    access_log_access_id: UUID
    candidate_investigation_access_id: UUID
    recruiter_investigation_access_id: UUID


def read_personal_data(
    app: Backcheck, n: Narrator, consented: ConsentIds, planned: PlanIds
) -> ReadIds:
    """Needs the report disclosed (chapter 6), so the disclosure shows in her access log."""
    n.chapter("8. Reads of personal data are decided, redacted and recorded")
    profile, log = _profile_and_access_log(app, n, consented.candidate_id)
    own, recruiter = _investigation_reads(app, n, consented.candidate_id, planned)
    n.refused(
        "HR looks at who else read Wang Fang's data",
        errors.AccessRefusedError,
        lambda: app.read_access_log(
            _her_access_log(consented.candidate_id).model_copy(
                update={"principal": HR, "role": Role.RECRUITER}
            )
        ),
        stores=1,
    )
    return ReadIds(
        profile_access_id=profile,
        access_log_access_id=log,
        candidate_investigation_access_id=own,
        recruiter_investigation_access_id=recruiter,
    )


def _profile_and_access_log(app: Backcheck, n: Narrator, cid: UUID) -> tuple[UUID, UUID]:
    read = dto.ReadProfile(candidate_id=cid, principal=HR, role=Role.RECRUITER, purpose=PURPOSE)
    view = n.do(
        "HR reads Wang Fang's profile for screening (recorded before it is shown)",
        lambda: app.read_profile(read),
    )
    shown = [f.name for f in view.fields if not f.withheld]
    n.detail(f"{len(shown)} general fields shown; nothing more is HR's to see")
    n.refused(
        "the growth team reads the profile for marketing",
        errors.AccessRefusedError,
        lambda: app.read_profile(
            read.model_copy(update={"principal": GROWTH, "purpose": "marketing"})
        ),
        stores=1,
    )
    log = n.do(
        "Wang Fang looks at who accessed her data (that read is recorded too)",
        lambda: app.read_access_log(_her_access_log(cid)),
    )
    for entry in log.entries:
        n.detail(f"{entry.principal} ({entry.role}) for {entry.purpose!r}: {entry.outcome}")
    return view.access_id, log.access_id


def _investigation_reads(
    app: Backcheck, n: Narrator, cid: UUID, planned: PlanIds
) -> tuple[UUID, UUID]:
    """She and HR read the same investigation; each sees what is theirs to see."""
    case = n.do(
        "Wang Fang reads her investigation: where each check stands, her questions answered",
        lambda: app.read_investigation(
            dto.ReadInvestigation(
                investigation_id=planned.investigation_id,
                principal=f"candidate:{cid}",
                role=Role.CANDIDATE,
                purpose="follow my background check",
            )
        ),
    )
    for asked in case.feedback:
        n.detail(f"she asked {asked.words!r}; the answer: {asked.answer!r}")
    hr_case = app.read_investigation(
        dto.ReadInvestigation(
            investigation_id=planned.investigation_id,
            principal=HR,
            role=Role.RECRUITER,
            purpose=PURPOSE,
        )
    )
    concluded = sum(not c.withheld for c in hr_case.checks)
    said = [*hr_case.feedback, *hr_case.disputes]
    n.detail(
        f"HR reads the same investigation ({hr_case.outcome}): {concluded} of "
        f"{len(hr_case.checks)} checks' conclusions; {sum(x.withheld for x in said)} of her "
        f"{len(said)} questions and disputes withheld"
    )
    return case.access_id, hr_case.access_id


def _her_access_log(cid: UUID) -> dto.ReadAccessLog:
    return dto.ReadAccessLog(
        candidate_id=cid,
        principal=f"candidate:{cid}",
        role=Role.CANDIDATE,
        purpose="see who accessed my data",
    )
