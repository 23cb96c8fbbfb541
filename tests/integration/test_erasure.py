"""Crypto-shredding: after erasure no plaintext of the subject is left anywhere in the store,
the hash chain still verifies, and the subject's non-personal history still replays."""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from pathlib import Path
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from domain.candidate import Candidate, ErasureGround, ErasureReceipt
from domain.check import SourceRole
from domain.classification import ERASED_VALUE
from domain.errors import (
    AlreadyErasedError,
    CandidateErasedError,
    ErasureBlockedByLegalHoldError,
    PortalClosedError,
)
from domain.principal import portal_name
from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.outbox.links import FOLDER
from infra.privacy.sealing import SealBrokenError
from projections.read_views import VIEWS
from services.application import Backcheck
from services.dto import (
    EraseSubject,
    GiveFeedback,
    IssuePortalLink,
    LegalHold,
    RaiseDispute,
    ReleaseLegalHold,
)
from services.errors import AuthenticationError
from services.principals import ERASED_REASON
from tests import marked_story as ms
from tests import story as s
from tests.conftest import PG_URL, FakeClock

NAME, EMAIL, NOTES = "Li Lei", "li.lei@example.com", "reliable, left on good terms"
FEEDBACK, DISPUTE = "Could you call my old team lead?", "My contract ran until June"


class ErasureContract(ABC):
    settings: Settings

    @abstractmethod
    def raw_bytes(self) -> bytes:
        """Every byte the backend holds for the store, as an attacker would read it."""

    @pytest.fixture
    def app(self, backend: Settings, clock: FakeClock, tmp_path: Path) -> Backcheck:
        self.settings = backend
        application = build_app(backend, clock=clock)
        yield application  # type: ignore[misc]
        application.close()

    def test_before_erasure_values_are_sealed_at_rest_yet_readable_through_the_app(
        self, app: Backcheck
    ) -> None:
        st = s.investigation_under_way(app)
        s.record_finding(app, st, SourceRole.HR)

        candidate = app.load(Candidate, st.candidate_id)
        profile = app.read_model().get("profile", str(st.candidate_id))

        assert {f.value for f in candidate.identity} == {NAME, EMAIL}
        assert profile is not None  # the views hold the values too, sealed the same way
        assert {f.value for f in profile["identity"]} == {NAME, EMAIL}
        raw = self.raw_bytes()
        for secret in (NAME, EMAIL, NOTES):
            assert secret.encode() not in raw

    def test_erasure_leaves_no_plaintext_and_the_history_still_verifies_and_replays(
        self, app: Backcheck
    ) -> None:
        st = s.investigation_under_way(app)
        s.record_finding(app, st, SourceRole.HR)
        app.give_feedback(
            GiveFeedback(investigation_id=st.investigation, text=FEEDBACK, actor=s.CANDIDATE)
        )
        app.raise_dispute(
            RaiseDispute(
                investigation_id=st.investigation,
                check_id=st.check_id,
                statement=DISPUTE,
                actor=s.CANDIDATE,
            )
        )
        assert DISPUTE.encode() not in self.raw_bytes()  # sealed at rest already
        events_before = [(e.position, e.event) for e in app.timeline(st.candidate_id)]

        result = app.erase_subject(
            EraseSubject(candidate_id=st.candidate_id, reason="candidate request", actor="dpo")
        )

        # a key per category: identity (name, e-mail), the notes, the finding's source (its
        # organisation and reference), the feedback and dispute
        assert result.keys_destroyed == len(result.categories_shredded)
        assert result.categories_shredded == [
            "user.contact.email",
            "user.employment.evaluation",
            "user.name",
            "user.organisation",
            "user.reference.identity",
            "user.statement",
        ]
        assert result.tiers_shredded == []  # no value was sealed with a tier's key
        views = app.read_model()
        profile, investigation = (
            views.get("profile", str(st.candidate_id)),
            views.get("investigation", str(st.investigation)),
        )
        assert profile is not None
        assert investigation is not None
        assert profile["erased"]
        assert {f.value for f in profile["identity"]} == {ERASED_VALUE}
        assert investigation["feedback"][0]["text"].value == ERASED_VALUE
        raw = self.raw_bytes()
        assert s.RECRUITER.encode() in raw  # the scan does see what is stored in the clear
        for secret in (NAME, EMAIL, NOTES, FEEDBACK, DISPUTE):
            assert secret.encode() not in raw
        assert app.keys is not None
        assert not app.keys.has_keys(st.candidate_id)
        candidate = app.load(Candidate, st.candidate_id)
        assert {f.value for f in candidate.identity} == {ERASED_VALUE}
        with open_source(self.settings) as source:
            assert verify(source).intact
        events_after = [(e.position, e.event) for e in app.timeline(st.candidate_id)]
        assert events_after[:-1] == events_before
        assert events_after[-1][1] == "Candidate.Erased"
        assert list(app.violations()) == []

    def test_erasure_leaves_nothing_the_subject_gave_and_the_audit_still_holds(
        self, app: Backcheck
    ) -> None:
        """Issue 21: every value the subject gave carries a marker (tests/marked_story.py):
        names, contacts, claims, the organisations the consent excludes and names as third
        parties, the referees and where they speak from, feedback, disputes and answers, the
        disclosure's organisation, the withdrawal's reason. Sealed at rest from the start;
        after the erasure none is anywhere in the backend's bytes or the views, the chain
        verifies, the rules find nothing broken and the non-personal timeline replays."""
        marked = ms.tell(app)
        views = app.read_model()
        subject = str(marked.candidate_id)
        # the events hold every marker, the views those they show, all sealed at rest
        assert ms.found_in(repr([event for _, event in app.replay()])) == list(ms.MARKERS)
        opened = repr([views.of_subject(view, subject) for view in VIEWS])
        assert {ms.NAME, ms.EXCLUDED, ms.THIRD_PARTY, ms.FEEDBACK} <= set(ms.found_in(opened))
        assert ms.found_in(self.raw_bytes()) == []
        timeline_before = [(e.position, e.event, e.who) for e in app.timeline(marked.candidate_id)]

        app.erase_subject(
            EraseSubject(candidate_id=marked.candidate_id, reason="candidate request", actor="dpo")
        )

        raw = self.raw_bytes()
        assert ms.AGENT.encode() in raw  # the scan does see what is stored in the clear
        assert ms.found_in(raw) == []
        assert ms.found_in(repr([views.of_subject(view, subject) for view in VIEWS])) == []
        replayed = [event for _, event in app.replay()]
        assert ms.found_in(repr(replayed)) == []
        timeline = list(app.timeline(marked.candidate_id))
        assert [(e.position, e.event, e.who) for e in timeline][:-1] == timeline_before
        assert timeline[-1].event == "Candidate.Erased"
        assert ms.found_in(repr(timeline)) == []
        with open_source(self.settings) as source:
            assert verify(source).intact
        assert list(app.violations()) == []

    def test_the_erasure_receipt_is_signed_by_the_store_key(self, app: Backcheck) -> None:
        st = s.consented_candidate(app)

        result = app.erase_subject(
            EraseSubject(candidate_id=st.candidate_id, reason="retention ended", actor="dpo")
        )

        public = load_pem_public_key(self.settings.verify_key_path.read_bytes())
        public.verify(  # type: ignore[union-attr,call-arg]
            base64.b64decode(result.receipt_signature), result.receipt_statement.encode()
        )
        assert str(st.candidate_id) in result.receipt_statement

    def test_a_legal_hold_blocks_erasure_and_nothing_is_destroyed(self, app: Backcheck) -> None:
        st = s.compiled_report(app)
        app.place_legal_hold(LegalHold(report_id=st.report, reason="litigation", actor="legal"))
        before = app.recorder.max_notification_id()

        with pytest.raises(ErasureBlockedByLegalHoldError, match=str(st.report)):
            app.erase_subject(
                EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
            )

        assert app.recorder.max_notification_id() == before
        assert app.keys is not None
        assert app.keys.has_keys(st.candidate_id)
        app.release_legal_hold(ReleaseLegalHold(report_id=st.report, actor="legal"))
        app.erase_subject(
            EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
        )
        assert not app.keys.has_keys(st.candidate_id)

    def test_nothing_more_is_collected_about_an_erased_candidate(self, app: Backcheck) -> None:
        st = s.consented_candidate(app)
        app.erase_subject(
            EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
        )

        with pytest.raises(CandidateErasedError):
            s.request_consent(app, st.candidate_id)

    def test_erasure_revokes_the_portal_link_and_takes_back_the_one_waiting_to_be_sent(
        self, app: Backcheck
    ) -> None:
        # given: the consent request sent the candidate their link, and it signs in
        st = s.consented_candidate(app)
        waiting = self.settings.outbox_dir / FOLDER / f"{st.candidate_id}.json"
        url = json.loads(waiting.read_bytes())["url"]
        token = url.partition("#token=")[2]
        portal = portal_name(st.candidate_id)
        assert app.authenticate(token).principal == portal
        before = app.recorder.max_notification_id() or 0

        # when
        result = app.erase_subject(
            EraseSubject(candidate_id=st.candidate_id, reason="candidate request", actor="dpo")
        )

        # then: revoked in the erasure's own write, as any revocation is (an event), the file
        # gone, and the token signs in nowhere
        stored = [(type(e).__qualname__, e) for _, e in app.replay(start=before + 1)]
        assert [name for name, _ in stored] == ["Candidate.Erased", "Principal.Revoked"]
        assert stored[1][1].reason == ERASED_REASON
        assert stored[1][1].revoked_by == "dpo"
        assert result.portal_link_revoked
        assert result.portal_link_withdrawn == f"outbox/{FOLDER}/{st.candidate_id}.json"
        assert not waiting.exists()
        with pytest.raises(AuthenticationError, match="token revoked"):
            app.authenticate(token)
        listed = {p.name: p for p in app.list_principals()}[portal]
        assert listed.revoked
        assert listed.revoked_reason == ERASED_REASON
        with pytest.raises(PortalClosedError, match="closed for good"):
            app.issue_portal_link(IssuePortalLink(candidate_id=st.candidate_id, actor="hr"))

    def test_an_erased_candidate_who_never_had_a_link_is_issued_none(self, app: Backcheck) -> None:
        candidate_id = s.register(app)
        result = app.erase_subject(
            EraseSubject(candidate_id=candidate_id, reason="candidate request", actor="dpo")
        )
        before = app.recorder.max_notification_id()

        with pytest.raises(PortalClosedError, match=str(candidate_id)):
            app.issue_portal_link(IssuePortalLink(candidate_id=candidate_id, actor="hr"))

        assert not result.portal_link_revoked
        assert result.portal_link_withdrawn is None
        assert app.recorder.max_notification_id() == before

    def test_erasing_again_closes_the_portal_an_earlier_erasure_left_open(
        self, app: Backcheck
    ) -> None:
        # given: an erasure recorded before erasure revoked the link (its keys destroyed,
        # its link still signing in and waiting in the outbox)
        st = s.consented_candidate(app)
        waiting = self.settings.outbox_dir / FOLDER / f"{st.candidate_id}.json"
        token = json.loads(waiting.read_bytes())["url"].partition("#token=")[2]
        candidate = app.load(Candidate, st.candidate_id)
        statement = json.dumps({"erased_at": app.clock().isoformat()})
        receipt = ErasureReceipt(statement, "k", "s")
        candidate.erase(ErasureGround.CANDIDATE_REQUEST, "dpo", [], receipt)
        app.commit(candidate)
        app.keys.destroy(st.candidate_id)
        assert app.authenticate(token).principal == portal_name(st.candidate_id)

        # when
        result = app.erase_subject(
            EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
        )

        # then
        assert result.resumed
        assert result.portal_link_revoked
        assert result.keys_destroyed == 0
        assert not waiting.exists()
        with pytest.raises(AuthenticationError, match="token revoked"):
            app.authenticate(token)
        with pytest.raises(AlreadyErasedError):  # and now it is finished
            app.erase_subject(
                EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
            )

    def test_a_sealed_value_cannot_be_moved_to_another_event(self, app: Backcheck) -> None:
        candidate_id = s.register(app)
        other_id = s.register(app, "Han Mei")
        stored = app.recorder.select_events(candidate_id)[0]
        forged = type(stored)(other_id, 1, stored.topic, stored.state)

        with pytest.raises(SealBrokenError, match="altered or moved"):
            app.mapper.to_domain_event(forged)

        assert isinstance(other_id, UUID)


class TestErasureOnSQLite(ErasureContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Settings:
        return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)

    def raw_bytes(self) -> bytes:
        return ms.raw_bytes(self.settings)


@pytest.mark.postgres
class TestErasureOnPostgres(ErasureContract):
    @pytest.fixture
    def backend(self, pg_schema: str, tmp_path: Path) -> Settings:
        return Settings(database_url=f"{PG_URL}?schema={pg_schema}", data_dir=tmp_path)

    def raw_bytes(self) -> bytes:
        return ms.raw_bytes(self.settings)
