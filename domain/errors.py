"""Domain errors, each named after the rule it enforces.

Every error carries the ids involved as attributes and a message a person can act on.
The HTTP/CLI layers map the three families below to responses in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class DomainError(Exception):
    """Root of every error backcheck raises on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        for key, value in details.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as it is, not by calling the subclass's own `__init__` with `args` (which
        holds only the message: a `ConcurrentChangeError` rebuilt that way took its message
        for its list of ids). An error raised in a worker process reaches its parent so: made
        without `__init__`, then given back its attributes (message, details and each detail)."""
        return (_rebuilt, (type(self), self.message), self.__dict__)


def _rebuilt(cls: type[DomainError], message: str) -> DomainError:
    return cls.__new__(cls, message)  # BaseException.__new__ sets `args`; pickle the rest


class PickledAsItIs:
    """Mixed into an error of ours that is not a DomainError (a ValueError, a RuntimeError)
    and whose `__init__` takes other arguments than its `args` (the message): pickled as
    DomainError is, made again without `__init__` from its `args`, then given back its
    attributes. Without it an error crossing processes (a verifier's or a rebuild's worker)
    came back by calling `__init__` with its message alone: a TypeError for a missing
    argument instead of the error, or the message wrapped in itself."""

    args: tuple[Any, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_made_again, (type(self), *self.args), self.__dict__)


def _made_again(cls: type[BaseException], *args: Any) -> BaseException:
    return cls.__new__(cls, *args)  # BaseException.__new__ sets `args`; pickle the rest


class RuleBrokenError(DomainError):
    """A business rule refused the command; nothing was recorded."""


class InvalidInputError(DomainError):
    """The command's data is malformed or outside what the domain accepts."""


class NotFoundError(DomainError):
    """The command or query named something that does not exist."""


class ForbiddenError(DomainError):
    """The principal may not have what they asked for; the refusal itself was recorded."""


class AccessRefusedError(ForbiddenError):
    def __init__(
        self, candidate_id: object, view: str, reasons: list[str], *, named: bool = True
    ) -> None:
        # `named=False`: the reader asked by the record's own id, and whom it is about is not
        # theirs to learn (a candidate putting another's investigation id in the address)
        whose = f"candidate {candidate_id}" if named else "a candidate you may not read"
        super().__init__(
            f"reading the {view} of {whose} was refused "
            f"({'; '.join(reasons)}); the refusal was recorded",
            candidate_id=candidate_id,
            view=view,
            reasons=reasons,
        )


# --- collection and classification -------------------------------------------------------


class UnknownDataCategoryError(InvalidInputError):
    def __init__(self, field: str, category: str) -> None:
        super().__init__(
            f"field {field!r}: {category!r} is not a known data category; "
            "use one of the categories listed by `backcheck categories` (and in the "
            "`category` schema of the AsyncAPI and OpenAPI documents)",
            field=field,
            category=category,
        )


class ProhibitedCategoryError(RuleBrokenError):
    def __init__(self, field: str, category: str) -> None:
        super().__init__(
            f"field {field!r}: data of category {category!r} is prohibited; it has no bearing "
            "on employment and is never collected or stored",
            field=field,
            category=category,
        )


class ProhibitedContentError(RuleBrokenError):
    def __init__(self, field: str, category: str, mention: str) -> None:
        super().__init__(
            f"field {field!r}: the text mentions {mention!r}, which is {category!r} — a "
            "prohibited category; rephrase without it (nothing was stored)",
            field=field,
            category=category,
            mention=mention,
        )


class ConsentRequiredForCategoryError(RuleBrokenError):
    def __init__(self, field: str, category: str) -> None:
        super().__init__(
            f"field {field!r}: category {category!r} may only be collected with an active "
            "consent that names it explicitly; request a consent that includes it first",
            field=field,
            category=category,
        )


class EmptyClaimError(InvalidInputError):
    def __init__(self, claim_id: object) -> None:
        super().__init__(f"claim {claim_id}: a claim needs at least one field", claim_id=claim_id)


class DuplicateClaimError(RuleBrokenError):
    def __init__(self, claim_id: object) -> None:
        super().__init__(
            f"claim {claim_id} was already submitted; claims are immutable, submit a new one",
            claim_id=claim_id,
        )


class CandidateErasedError(RuleBrokenError):
    def __init__(self, candidate_id: object) -> None:
        super().__init__(
            f"candidate {candidate_id} has requested erasure; no further personal data "
            "may be collected",
            candidate_id=candidate_id,
        )


class PersonalDataShreddedError(RuleBrokenError):
    """New personal data of a category (or a tier) whose key a recorded erasure or retention
    run destroyed. A new key under the same (subject, category) would make every older value
    of it look altered rather than erased, and break every replay of the subject: it is
    refused. `scope` names the key: a category, or a tier; `tier`, the category's tier."""

    def __init__(self, candidate_id: object, scope: str, tier: str | None = None) -> None:
        named = f"{scope} ({tier})" if tier and tier != scope else scope
        super().__init__(
            f"candidate {candidate_id}'s {named} personal data was erased (its key destroyed "
            f"by a recorded erasure or retention run); no new {scope} value can be recorded "
            "for them",
            candidate_id=candidate_id,
            tier=tier or scope,
            **({"category": scope} if tier and tier != scope else {}),
        )


class ErasureBlockedByLegalHoldError(RuleBrokenError):
    def __init__(self, candidate_id: object, report_ids: list[str]) -> None:
        super().__init__(
            f"candidate {candidate_id} cannot be erased: report(s) {', '.join(report_ids)} are "
            "under legal hold; release the hold first",
            candidate_id=candidate_id,
            report_ids=report_ids,
        )


class AlreadyErasedError(RuleBrokenError):
    def __init__(self, candidate_id: object) -> None:
        super().__init__(f"candidate {candidate_id} is already erased", candidate_id=candidate_id)


class TextNamesTheSubjectError(InvalidInputError):
    """Text the audit keeps in clear (a read's or a disclosure's purpose) may not name the
    candidate: it would outlive their erasure. Nothing is decided or recorded."""

    def __init__(self, field: str, candidate_id: object) -> None:
        super().__init__(
            f"field {field!r}: it is kept in clear for the audit, after the candidate's "
            f"erasure too, so it may not name candidate {candidate_id} (their name, e-mail, "
            "phone or address); say why without it",
            field=field,
            candidate_id=candidate_id,
        )


class JustificationNotKeptError(InvalidInputError):
    """A break-glass justification is sealed with the candidate's data; once that data's key
    is gone (erasure, or retention of case notes) it cannot be recorded, nor is anything
    left to break the glass for. Refused before anything is decided."""

    def __init__(self, candidate_id: object) -> None:
        super().__init__(
            f"field 'break_glass': candidate {candidate_id}'s data was erased (or their case "
            "notes shredded by retention), so a justification can no longer be recorded with "
            "it; read without one",
            field="break_glass",
            candidate_id=candidate_id,
        )


class PortalClosedError(RuleBrokenError):
    """An erased candidate's portal is closed for good: no link is issued for them again."""

    def __init__(self, candidate_id: object) -> None:
        super().__init__(
            f"candidate {candidate_id} was erased: their portal is closed for good, and no "
            "portal link is issued for them",
            candidate_id=candidate_id,
        )


class ErasureAlreadyRequestedError(RuleBrokenError):
    def __init__(self, candidate_id: object) -> None:
        super().__init__(
            f"candidate {candidate_id} already requested erasure", candidate_id=candidate_id
        )


# --- consent ------------------------------------------------------------------------------


class ConsentNotPendingError(RuleBrokenError):
    def __init__(self, consent_id: object, status: str) -> None:
        super().__init__(
            f"consent {consent_id} is {status}; only a requested consent can be granted",
            consent_id=consent_id,
            status=status,
        )


class ConsentGrantExceedsRequestError(RuleBrokenError):
    def __init__(self, consent_id: object, scope: str, extra: list[str]) -> None:
        super().__init__(
            f"consent {consent_id}: the grant goes beyond the request's {scope}: "
            f"{', '.join(extra)}; the candidate can narrow a request, never widen it",
            consent_id=consent_id,
            scope=scope,
            extra=extra,
        )


class GrantNotOfTheDocumentShownError(InvalidInputError):
    """A clickwrap grant the candidate makes with their portal link signs the document the
    portal showed them: its hash is that document's."""

    def __init__(self, consent_id: object, field: str, rule: str) -> None:
        super().__init__(
            f"consent {consent_id}: field {field!r}: {rule}",
            consent_id=consent_id,
            field=field,
            rule=rule,
        )


class InvalidValidityWindowError(InvalidInputError):
    def __init__(self, consent_id: object) -> None:
        super().__init__(
            f"consent {consent_id}: valid_until must be later than valid_from",
            consent_id=consent_id,
            field="valid_until",
        )


class ValidityWindowOverError(InvalidInputError):
    """A grant whose window has ended before it is recorded would be stored expired, using up
    the request for nothing: it is refused, and the request stays open for a proper grant."""

    def __init__(self, consent_id: object, valid_until: datetime, now: datetime) -> None:
        super().__init__(
            f"field 'valid_until': consent {consent_id}: a grant must still be valid when it "
            f"is recorded; valid_until {valid_until.isoformat()} is not after now "
            f"({now.isoformat()})",
            consent_id=consent_id,
            field="valid_until",
            valid_until=valid_until,
        )


class ConsentNotActiveError(RuleBrokenError):
    def __init__(self, consent_id: object, status: str, *, withdrawing: bool = False) -> None:
        # withdrawing one already ended (a second click) is done, not a need for a new grant
        message = (
            f"consent {consent_id} is already {status}; nothing is left to withdraw"
            if withdrawing
            else f"consent {consent_id} is {status}, not active; a new, granted consent is needed"
        )
        super().__init__(message, consent_id=consent_id, status=status)


class ConsentNotExpiredError(RuleBrokenError):
    def __init__(self, consent_id: object, valid_until: object) -> None:
        super().__init__(
            f"consent {consent_id} is valid until {valid_until}; it cannot be expired earlier "
            "(withdraw it instead)",
            consent_id=consent_id,
            valid_until=valid_until,
        )


class ConsentDoesNotCoverCheckError(RuleBrokenError):
    def __init__(self, consent_id: object, check_type: str, missing: str) -> None:
        super().__init__(
            f"consent {consent_id} does not cover the {check_type} check: {missing}",
            consent_id=consent_id,
            check_type=check_type,
            missing=missing,
        )


class ConsentBelongsToAnotherCandidateError(RuleBrokenError):
    def __init__(self, consent_id: object, candidate_id: object) -> None:
        super().__init__(
            f"consent {consent_id} was not given by candidate {candidate_id}",
            consent_id=consent_id,
            candidate_id=candidate_id,
        )


class ConsentBelongsToAnotherInvestigationError(RuleBrokenError):
    def __init__(self, consent_id: object, investigation_id: object) -> None:
        super().__init__(
            f"consent {consent_id} is not the consent investigation {investigation_id} acts under",
            consent_id=consent_id,
            investigation_id=investigation_id,
        )


class CandidateAlreadyRegisteredError(RuleBrokenError):
    def __init__(self, candidate_id: object) -> None:
        super().__init__(
            f"candidate {candidate_id} is already registered", candidate_id=candidate_id
        )


class PurposeNotConsentedError(RuleBrokenError):
    def __init__(self, consent_id: object, purpose: str) -> None:
        super().__init__(
            f"consent {consent_id} does not include the purpose {purpose!r}",
            consent_id=consent_id,
            purpose=purpose,
        )


# --- investigation --------------------------------------------------------------------------


class EmptyPlanError(InvalidInputError):
    def __init__(self) -> None:
        super().__init__("an investigation plan needs at least one check and one investigator")


class InvalidPlanError(InvalidInputError):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"plan field {field!r}: {rule}", field=field, rule=rule)


class InvestigationStateError(RuleBrokenError):
    def __init__(self, investigation_id: object, status: str, action: str) -> None:
        super().__init__(
            f"investigation {investigation_id} is {status}; cannot {action}",
            investigation_id=investigation_id,
            status=status,
            action=action,
        )


class CandidateNotNotifiedError(RuleBrokenError):
    def __init__(self, investigation_id: object) -> None:
        super().__init__(
            f"investigation {investigation_id}: the candidate must be told the purpose, process, "
            "content and time needed before the checks start",
            investigation_id=investigation_id,
        )


class UnknownCheckError(NotFoundError):
    def __init__(self, investigation_id: object, check_id: object) -> None:
        super().__init__(
            f"investigation {investigation_id} has no check {check_id}",
            investigation_id=investigation_id,
            check_id=check_id,
        )


class InvestigatorNotAssignedError(RuleBrokenError):
    def __init__(self, investigation_id: object, investigator: str) -> None:
        super().__init__(
            f"{investigator!r} is not assigned to investigation {investigation_id}",
            investigation_id=investigation_id,
            investigator=investigator,
        )


class MethodNotInPlanError(RuleBrokenError):
    def __init__(self, check_id: object, method: str) -> None:
        super().__init__(
            f"check {check_id}: method {method!r} is not in the plan for this check; "
            "amend the plan before using it",
            check_id=check_id,
            method=method,
        )


class RefereeNotPermittedError(RuleBrokenError):
    """The organisation is never named: a refusal is kept where erasure does not reach (a
    command's outcome, a log), and the organisation is the candidate's personal data."""

    def __init__(
        self, consent_id: object, role: str, *, excluded_organisation: bool = False
    ) -> None:
        what = (
            "referees at the source's organisation (the candidate excluded it)"
            if excluded_organisation
            else f"a referee in the role {role!r}"
        )
        super().__init__(
            f"consent {consent_id} does not allow contacting {what}",
            consent_id=consent_id,
            role=role,
            excluded_organisation=excluded_organisation,
        )


class PersonalValueUnreadableError(RuleBrokenError):
    """A rule compares personal values (organisations) and one of them can no longer be read:
    erased with the candidate's keys, or their tier shredded. The rule refuses (fails closed)
    rather than take an erased value as matching nothing."""

    def __init__(self, consent_id: object, field: str) -> None:
        super().__init__(
            f"field {field!r}: consent {consent_id}'s rule compares organisations, and a value "
            "it needs was erased (the candidate's personal data is shredded): refused",
            consent_id=consent_id,
            field=field,
        )


class RecordingNotConsentedError(RuleBrokenError):
    def __init__(self, consent_id: object) -> None:
        super().__init__(
            f"consent {consent_id} does not allow recording conversations",
            consent_id=consent_id,
        )


class CheckAlreadyConcludedError(RuleBrokenError):
    def __init__(self, check_id: object) -> None:
        super().__init__(f"check {check_id} is already concluded", check_id=check_id)


class ConclusionNeedsCorroborationError(RuleBrokenError):
    def __init__(self, check_id: object, outcome: str, have: str) -> None:
        super().__init__(
            f"check {check_id}: concluding {outcome!r} needs two independent sources of "
            f"different roles or one authoritative source agreeing; have {have}",
            check_id=check_id,
            outcome=outcome,
            have=have,
        )


class NegativeConclusionNeedsSecondSourceError(ConclusionNeedsCorroborationError):
    """A discrepancy must never rest on one witness."""


class NoAttemptRecordedError(RuleBrokenError):
    def __init__(self, check_id: object) -> None:
        super().__init__(
            f"check {check_id}: record at least one attempt to verify before concluding "
            "'unverifiable'",
            check_id=check_id,
        )


class ChecksStillOpenError(RuleBrokenError):
    def __init__(self, investigation_id: object, open_checks: list[str]) -> None:
        super().__init__(
            f"investigation {investigation_id} still has open checks: {', '.join(open_checks)}",
            investigation_id=investigation_id,
            open_checks=open_checks,
        )


class ThirdPartyNotConsentedError(RuleBrokenError):
    """Neither the organisation nor the consented third parties are named (see
    RefereeNotPermittedError)."""

    def __init__(self, consent_id: object, consented: int) -> None:
        super().__init__(
            "field 'recipient_organisation': the organisation is outside the employer and not "
            f"a third party named in consent {consent_id} ({consented} named); personal data "
            "goes to no other organisation without the candidate's consent",
            consent_id=consent_id,
            consented=consented,
        )


class OpenDisputeError(RuleBrokenError):
    def __init__(self, subject: object, dispute_ids: list[str], action: str) -> None:
        super().__init__(
            f"{subject} has open disputes ({', '.join(dispute_ids)}); answer them before "
            f"you {action}",
            subject=subject,
            dispute_ids=dispute_ids,
            action=action,
        )


class UnknownDisputeError(NotFoundError):
    def __init__(self, owner: object, dispute_id: object) -> None:
        super().__init__(f"{owner} has no dispute {dispute_id}", owner=owner, dispute_id=dispute_id)


class DisputeAlreadyResolvedError(RuleBrokenError):
    def __init__(self, dispute_id: object) -> None:
        super().__init__(f"dispute {dispute_id} is already resolved", dispute_id=dispute_id)


class UnknownFeedbackError(NotFoundError):
    def __init__(self, investigation_id: object, feedback_id: object) -> None:
        super().__init__(
            f"investigation {investigation_id} has no feedback {feedback_id}",
            investigation_id=investigation_id,
            feedback_id=feedback_id,
        )


class FeedbackAlreadyAnsweredError(RuleBrokenError):
    def __init__(self, feedback_id: object) -> None:
        super().__init__(f"feedback {feedback_id} was already answered", feedback_id=feedback_id)


# --- report -------------------------------------------------------------------------------


class InvestigationNotCompletedError(RuleBrokenError):
    def __init__(self, investigation_id: object, status: str) -> None:
        super().__init__(
            f"investigation {investigation_id} is {status}; a report is compiled only from a "
            "completed investigation",
            investigation_id=investigation_id,
            status=status,
        )


class ReportStateError(RuleBrokenError):
    def __init__(self, report_id: object, status: str, action: str) -> None:
        super().__init__(
            f"report {report_id} is {status}; cannot {action}",
            report_id=report_id,
            status=status,
            action=action,
        )


class SelfReviewError(RuleBrokenError):
    def __init__(self, report_id: object, reviewer: str) -> None:
        super().__init__(
            f"report {report_id}: {reviewer!r} wrote or amended this report and cannot review "
            "it; assign another reviewer",
            report_id=report_id,
            reviewer=reviewer,
        )


class ReportNotSharedWithCandidateError(RuleBrokenError):
    def __init__(self, report_id: object) -> None:
        super().__init__(
            f"report {report_id} has not been shared with the candidate yet",
            report_id=report_id,
        )


class UnknownReportItemError(NotFoundError):
    def __init__(self, report_id: object, check_id: object) -> None:
        super().__init__(
            f"report {report_id} has no item for check {check_id}",
            report_id=report_id,
            check_id=check_id,
        )


class LegalHoldError(RuleBrokenError):
    def __init__(self, report_id: object) -> None:
        super().__init__(
            f"report {report_id} is under legal hold and cannot be destroyed until the hold "
            "is released",
            report_id=report_id,
        )


# --- principals ------------------------------------------------------------------------------


class InvalidPrincipalError(InvalidInputError):
    """A principal's name, kind, assignments or token hash outside what the domain accepts."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"field {field!r}: {rule}", field=field, rule=rule)


class PrincipalAlreadyExistsError(RuleBrokenError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"principal {name!r} exists already; a name is given once (rotate its token with "
            "`backcheck principals rotate`, or choose another name)",
            name=name,
        )


class PrincipalRevokedError(RuleBrokenError):
    def __init__(self, name: str, action: str) -> None:
        super().__init__(
            f"principal {name!r} was revoked; a revoked principal cannot {action} (revocation "
            "is final: add a principal under another name)",
            name=name,
            action=action,
        )
