"""Use cases of consent: request, grant, withdraw, expire."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from uuid import UUID

from domain.caller import Authentication
from domain.candidate import Candidate
from domain.consent import (
    EXCLUDED,
    THIRD_PARTY,
    Consent,
    ConsentTerms,
    SignatureMethod,
    organisations,
)
from domain.errors import GrantNotOfTheDocumentShownError, PrincipalRevokedError
from domain.investigation import Investigation
from services.dto import (
    ConsentResult,
    ConsentTermsIn,
    ExpireConsent,
    GrantConsent,
    PortalLinkSent,
    RequestConsent,
    WithdrawConsent,
)
from services.ports import PortalLink
from services.principals import PORTAL_DAYS, hand_on, portal_principal
from services.unit import UnitOfWork, caller_now, use_case

_REVOKED = (
    "the candidate's portal link was revoked, and a revoked link is never issued again: no "
    "link was issued; tell the candidate another way"
)


# The terms' keys in the order the portal page writes them (infra/http/static/portal.js,
# `chosenTerms`): the document's text, hence its hash, depends on it.
_DOCUMENT_TERMS = (
    "excluded_organisations",
    "purposes",
    "check_types",
    "categories",
    "referee_roles",
    "third_parties",
    "recording_allowed",
)


def portal_document(consent_id: UUID, terms: ConsentTermsIn) -> str:
    """The document a candidate signs on the portal page: the terms as granted, with the
    consent's id and the method, as `JSON.stringify` writes them (portal.js `documentText`,
    whose SHA-256 the page shows before the candidate agrees): no spaces, non-ASCII as is."""
    dumped = terms.model_dump(mode="json")
    return json.dumps(
        {
            "consent_id": str(consent_id),
            "terms": {key: dumped[key] for key in _DOCUMENT_TERMS},
            "signature_method": SignatureMethod.CLICKWRAP.value,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _check_portal_grant(cmd: GrantConsent) -> None:
    """A grant made with the candidate's portal link, from the page or straight to the API, is
    the portal's clickwrap: it signs the document the portal page showed, never a hash the
    caller picked (which no document need match). A document signed elsewhere (an
    e-signature, a wet-ink form) is attested by whoever saw it signed (the e-signature
    service, the operator), not claimed by the candidate with a hash of their choosing."""
    if cmd.signature_method != SignatureMethod.CLICKWRAP:
        raise GrantNotOfTheDocumentShownError(
            cmd.consent_id,
            "signature_method",
            f"a grant made with the portal link is a clickwrap of the document the portal "
            f"shows, not {cmd.signature_method.value!r}: a document signed elsewhere is "
            "recorded by whoever saw it signed (the e-signature service, the operator); grant "
            "from the portal page",
        )
    shown = hashlib.sha256(portal_document(cmd.consent_id, cmd.terms).encode()).hexdigest()
    if cmd.document_sha256 != shown:
        raise GrantNotOfTheDocumentShownError(
            cmd.consent_id,
            "document_sha256",
            "a clickwrap grant made with the portal link signs the document the portal shows "
            "for the terms granted (the consent's id, those terms and the method, as the page "
            "writes them), and this is not its SHA-256; grant from the portal page",
        )


def terms_from(t: ConsentTermsIn) -> ConsentTerms:
    return ConsentTerms(
        purposes=tuple(t.purposes),
        check_types=tuple(t.check_types),
        categories=tuple(t.categories),
        referee_roles=tuple(t.referee_roles),
        excluded_organisations=organisations(EXCLUDED, t.excluded_organisations),
        recording_allowed=t.recording_allowed,
        third_parties=organisations(THIRD_PARTY, t.third_parties),
    )


class ConsentUseCases(UnitOfWork):
    def consent_result(
        self,
        consent: Consent,
        suspended: list[UUID] | None = None,
        link: PortalLinkSent | None = None,
    ) -> ConsentResult:
        scope = consent.scope_at(self.now())
        return ConsentResult(
            consent_id=consent.id,
            candidate_id=consent.candidate_id,
            status=scope.status.value,
            purposes=list(scope.terms.purposes),
            check_types=[c.value for c in scope.terms.check_types],
            categories=list(scope.terms.categories),
            valid_until=consent.valid_until,
            suspended_investigations=suspended or [],
            portal_link=link,
        )

    @use_case
    def request_consent(self, cmd: RequestConsent) -> ConsentResult:
        """Written consent is asked for before anything else; prohibited data is never asked.

        The candidate is sent their portal link with the request, to read and grant it there:
        issued (or replaced: the old one is refused from then on) in the same write as the
        request, and handed on only once both are recorded, so a link never opens a request
        that was not made. A revoked link is never issued again; the consent is asked for all
        the same. A link that cannot be handed on leaves the request recorded, and says so."""
        candidate = self.load(Candidate, cmd.candidate_id)
        candidate.require_collectable()
        consent = Consent.request(candidate.id, terms_from(cmd.terms), cmd.actor)
        expires_at = self.now() + timedelta(days=PORTAL_DAYS)
        try:
            principal, token = portal_principal(self, candidate.id, expires_at, cmd.actor)
        except PrincipalRevokedError:
            self.commit(consent)
            return self.consent_result(
                consent, link=PortalLinkSent(status="revoked", detail=_REVOKED, expires_at=None)
            )
        # the consent first: a delivered command's receipt is about the subject of the first;
        # the link is the use case's own (its caller named the candidate): a collision on it
        # alone is decided again
        self.commit(consent, principal, internal=(principal,))
        link = PortalLink(candidate.id, token, expires_at, principal.version)
        return self.consent_result(consent, link=hand_on(self, link))

    @use_case
    def grant_consent(self, cmd: GrantConsent) -> ConsentResult:
        """The signed document's hash is recorded; the grant may narrow the request only, and
        a window already over when it is recorded is refused (the request stays open). A
        grant made with the candidate's portal link is a clickwrap that signs the document
        the portal shows: another method, or a hash of any other document, is refused. A
        document signed elsewhere (an e-signature, a wet-ink form) is one backcheck never
        sees: its hash, given by a service, staff or the operator, is recorded as given."""
        consent = self.load(Consent, cmd.consent_id)
        if caller_now().method == Authentication.PORTAL.value:
            _check_portal_grant(cmd)
        consent.grant(
            terms_from(cmd.terms),
            cmd.document_sha256,
            cmd.signature_method,
            cmd.valid_from,
            cmd.valid_until,
            cmd.actor,
            now=self.now(),
            authenticated=caller_now(),
        )
        self.commit(consent)
        return self.consent_result(consent)

    @use_case
    def withdraw_consent(self, cmd: WithdrawConsent) -> ConsentResult:
        """Withdrawal is possible at any time and suspends the investigations relying on it."""
        consent = self.load(Consent, cmd.consent_id)
        consent.withdraw(cmd.reason, self.now(), cmd.actor, caller_now())
        changed = self.commit(consent)
        return self.consent_result(consent, [a.id for a in changed if isinstance(a, Investigation)])

    @use_case
    def expire_consent(self, cmd: ExpireConsent) -> ConsentResult:
        """A consent past its validity window is recorded as expired, with the same effect."""
        consent = self.load(Consent, cmd.consent_id)
        consent.expire(self.now())
        changed = self.commit(consent)
        return self.consent_result(consent, [a.id for a in changed if isinstance(a, Investigation)])

    def get_consent(self, consent_id: UUID) -> ConsentResult:
        return self.consent_result(self.load(Consent, consent_id))
