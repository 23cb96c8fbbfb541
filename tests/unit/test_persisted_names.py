"""Names that are stored or published never change when the code moves.

Event topics are inside every stored record and its chain digest; Kafka topic names, table
names and the views' tracking name are where other processes and earlier data find things;
Cedar policy ids and the policy-set hash are in every recorded access decision. A module may
move, a name in this file may not (add a new one when something new is persisted).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventsourcing.domain import DomainEvent
from eventsourcing.postgres import PostgresRecorder
from eventsourcing.utils import resolve_topic

import domain
from domain.access import Authentication
from domain.duty import DUTY_NAMESPACE, run_id
from domain.principal import PRINCIPAL_NAMESPACE, portal_name, principal_id, sender_key_id
from domain.redrive import REDRIVE_NAMESPACE
from domain.sender import REFUSAL_NAMESPACE, refusal_id
from infra.access.cedar import CedarDecisionPoint
from infra.config import Settings
from infra.kafka.cloudevent import ACCEPTED, REFUSED
from infra.kafka.dead_letters import REDRIVEN_FROM
from infra.kafka.intake import DLQ_TOPIC
from infra.kafka.outcome import OUTCOME_NAMESPACE
from infra.kafka.relay_store import RELAY_STATE_TABLE
from infra.kafka.signatures import KEYID, SIGNATURE, signed_bytes
from infra.kafka.topics import COMMANDS_TOPIC, EVENTS_TOPIC, OUTCOMES_TOPIC
from infra.privacy.keystore import KEY_CHECK_SCHEME, KEY_CHECK_TABLE
from infra.problem import TYPE_PREFIX
from infra.views.kept import DASHBOARD, KEPT
from infra.views.postgres import PostgresViewStore
from projections.events import stored_event_types
from projections.read_views import ReadViews
from services.application import Backcheck
from services.identity import ASSIGNMENTS_POLICY
from services.principals import new_token, token_hash

STORED_EVENT_TOPICS = frozenset(
    {
        "domain.access:Access.Created",
        "domain.access:Access.Recorded",
        "domain.access:DataDisclosure.Created",
        "domain.access:DataDisclosure.DataDisclosed",
        "domain.candidate:Candidate.CategoriesShredded",
        "domain.candidate:Candidate.ClaimsSubmitted",
        "domain.candidate:Candidate.Created",
        "domain.candidate:Candidate.Erased",
        "domain.candidate:Candidate.ErasureRequested",
        "domain.candidate:Candidate.Registered",
        "domain.candidate:Candidate.TierShredded",
        "domain.consent:Consent.Created",
        "domain.consent:Consent.Expired",
        "domain.consent:Consent.Granted",
        "domain.consent:Consent.ReliedUpon",
        "domain.consent:Consent.Requested",
        "domain.consent:Consent.Withdrawn",
        "domain.duty:DutyRun.Claimed",
        "domain.duty:DutyRun.Created",
        "domain.duty:DutyRun.Finished",
        "domain.duty:DutyRun.TakenOver",
        "domain.master_key:MasterKeyRotation.Abandoned",
        "domain.master_key:MasterKeyRotation.Created",
        "domain.master_key:MasterKeyRotation.Finished",
        "domain.master_key:MasterKeyRotation.Started",
        "domain.master_key:MasterKeyRotation.StartedAgain",
        "domain.intake:CommandReceipt.Applied",
        "domain.intake:CommandReceipt.Created",
        "domain.migration:StoreMigration.Created",
        "domain.migration:StoreMigration.Migrated",
        "domain.redrive:DeadLetterRedrive.Created",
        "domain.redrive:DeadLetterRedrive.Redriven",
        "domain.redrive:DeadLetterRedrive.RedrivenAgain",
        "domain.investigation:Investigation.Cancelled",
        "domain.investigation:Investigation.CandidateNotified",
        "domain.investigation:Investigation.CheckConcluded",
        "domain.investigation:Investigation.Completed",
        "domain.investigation:Investigation.Created",
        "domain.investigation:Investigation.DisputeRaised",
        "domain.investigation:Investigation.DisputeResolved",
        "domain.investigation:Investigation.FeedbackAnswered",
        "domain.investigation:Investigation.FeedbackGiven",
        "domain.investigation:Investigation.FindingRecorded",
        "domain.investigation:Investigation.InvestigatorAssigned",
        "domain.investigation:Investigation.Planned",
        "domain.investigation:Investigation.Resumed",
        "domain.investigation:Investigation.Started",
        "domain.investigation:Investigation.Suspended",
        "domain.principal:Principal.Added",
        "domain.principal:Principal.Created",
        "domain.principal:Principal.Revoked",
        "domain.principal:Principal.SenderKeyIssued",
        "domain.principal:Principal.SenderKeyRevoked",
        "domain.principal:Principal.SenderKeyRotated",
        "domain.principal:Principal.SessionClosed",
        "domain.principal:Principal.SessionOpened",
        "domain.principal:Principal.TokenRotated",
        "domain.report:Report.Amended",
        "domain.report:Report.Approved",
        "domain.report:Report.ChangesRequested",
        "domain.report:Report.Compiled",
        "domain.report:Report.Created",
        "domain.report:Report.Destroyed",
        "domain.report:Report.Disclosed",
        "domain.report:Report.DisputeRejected",
        "domain.report:Report.Disputed",
        "domain.report:Report.LegalHoldPlaced",
        "domain.report:Report.LegalHoldReleased",
        "domain.report:Report.SharedWithCandidate",
        "domain.sender:SenderRefusal.Created",
        "domain.sender:SenderRefusal.Refused",
    }
)

POLICY_IDS = (
    "recruiter-reads-general-of-own-candidates",
    "investigator-reads-assigned-cases",
    "investigator-reads-secret-only-where-plan-and-consent-include-it",
    "reviewer-reads-what-the-report-contains",
    "hiring-manager-reads-only-what-was-disclosed-to-them",
    "candidate-reads-own-data",
    "compliance-reads-values-only-with-recorded-break-glass",
    "compliance-may-break-the-glass",
    "break-glass-is-for-compliance-only",
    "no-read-without-active-consent",
    "no-read-for-a-purpose-the-consent-does-not-name",
    "sensitive-and-consent-required-data-only-when-the-consent-names-it",
    "hiring-manager-reads-secret-data-only-in-the-disclosed-report",
    "prohibited-data-never",
    "candidate-reads-own-access-log",
    "compliance-reads-access-logs",
    "candidate-reads-own-consents",
    "recruiter-reads-consents-of-own-candidates",
    "investigator-reads-consents-of-assigned-cases",
    "compliance-reads-consent-registers",
)
# Changed deliberately with the break-glass policies (issue 17, defect 13): access events
# recorded before carry the old hash b3de90e2…; and again when a hiring manager stopped
# reading secret values outside the disclosed report (2026-12-05, eighth session): a131e678…
# before, this one after.
POLICY_SET_HASH = "94ee00dbe007191c123eab94b57eb6a6d7347b1c4002c957273bcae15ab630f6"


def _concrete_domain_events() -> set[str]:
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    found: set[str] = set()
    pending = list(DomainEvent.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        topic = f"{cls.__module__}:{cls.__qualname__}"
        # Aggregates' base event classes and the upcasting mixins are never stored themselves.
        is_base = cls.__qualname__.endswith(".Event") or "." not in cls.__qualname__
        is_base = is_base or cls.__qualname__.startswith(
            ("SubjectAggregate.", "RecordedAggregate.")
        )
        if cls.__module__.startswith("domain.") and not is_base:
            found.add(topic)
    return found


def test_every_stored_event_topic_still_names_an_event_class() -> None:
    for topic in sorted(STORED_EVENT_TOPICS):
        assert issubclass(resolve_topic(topic), DomainEvent), topic


def test_the_domain_declares_exactly_the_event_topics_listed_here() -> None:
    assert _concrete_domain_events() == STORED_EVENT_TOPICS


def test_a_stored_or_relayed_topic_is_looked_up_among_exactly_these() -> None:
    assert set(stored_event_types()) == STORED_EVENT_TOPICS


@pytest.mark.parametrize("backend_url", [None, "postgresql://postgres@127.0.0.1:5432/test"])
def test_every_configured_module_path_resolves(tmp_path: Path, backend_url: str | None) -> None:
    settings = Settings(data_dir=tmp_path, database_url=backend_url)
    env = settings.store_env()
    for name, value in env.items():
        if name.endswith("_TOPIC"):
            assert resolve_topic(value) is not None, name
    module = env["PERSISTENCE_MODULE"]
    assert resolve_topic(module) if ":" in module else importlib.import_module(module)


def test_cedar_policy_ids_and_the_policy_set_hash_are_unchanged() -> None:
    policy = CedarDecisionPoint()
    assert policy.policy_set_hash == POLICY_SET_HASH
    assert tuple(re.findall(r'@id\("([^"]+)"\)', policy.text)) == POLICY_IDS


def test_kafka_topics_tables_and_the_views_tracking_name_are_unchanged() -> None:
    assert (EVENTS_TOPIC, COMMANDS_TOPIC, DLQ_TOPIC) == (
        "backcheck.events.v1",
        "backcheck.commands.v1",
        "backcheck.commands.dlq.v1",
    )
    assert RELAY_STATE_TABLE == "backcheck_relay_state"
    # the master key's check value: where it is kept, and the label its HMAC is taken over
    assert (KEY_CHECK_TABLE, KEY_CHECK_SCHEME) == (
        "backcheck_key_check",
        "hmac-sha256:backcheck master key check v1",
    )
    # The in-process views track under "<app>.views.v<projection version>": a new version
    # rebuilds every view, so it changes only on purpose (and this line with it).
    assert f"{Backcheck.name}.views.v{ReadViews.version}" == "Backcheck.views.v11"
    assert "backcheck_views" in inspect.signature(PostgresViewStore).parameters["table"].default


def test_the_kept_views_tables_files_and_tracking_names_are_unchanged() -> None:
    """Each of the kept views (infra/views/kept.py) is found by these names, in process and in
    the workers' stores; a new projection version rebuilds that one alone, on purpose, and
    its workers start from a store named by that version."""
    settings = Settings(data_dir=Path("/data"))
    found = [
        (
            kept.name,
            kept.tracking_name(Backcheck.name, kept.projection().version),
            kept.table,
            kept.stream_table(),
            kept.path(settings).name,
            kept.stream_path(settings).name,
        )
        for kept in KEPT
    ]
    assert found == [
        (
            "views",
            "Backcheck.views.v11",
            "backcheck_views",
            "backcheck_stream_views_v11",
            "backcheck.views.sqlite",
            "backcheck.stream-views-v11.sqlite",
        ),
        (
            "dashboard",
            "Backcheck.dashboard.views.v3",
            "backcheck_dashboard",
            "backcheck_stream_dashboard_v3",
            "backcheck.dashboard.sqlite",
            "backcheck.stream-dashboard-v3.sqlite",
        ),
    ]


def test_the_workers_store_of_each_version_has_a_name_postgresql_can_hold() -> None:
    """An earlier version's store keeps its name (left in place, never written again); every
    table a version's store makes on PostgreSQL (rows, tracking, index) is within its
    identifiers' 63 bytes."""
    settings = Settings(data_dir=Path("/data"))
    assert DASHBOARD.stream_table(2) == "backcheck_stream_dashboard_v2"
    assert DASHBOARD.stream_path(settings, 2).name == "backcheck.stream-dashboard-v2.sqlite"
    for kept in KEPT:
        table = kept.stream_table(kept.version + 1000)  # room for versions to come
        names = [table, f"{table}_tracking", f"{table}_by_subject"]
        assert max(len(name.encode()) for name in names) <= PostgresRecorder.MAX_IDENTIFIER_LEN


def test_sender_key_ids_refusal_ids_and_the_signature_layout_are_unchanged() -> None:
    # senders put the key id in ce_keyid; refusals are found by where the message was
    assert sender_key_id("A" * 43 + "=") == "66687aadf862bd776c8fc18b8e9f8e20"
    assert str(REFUSAL_NAMESPACE) == "0b7e4f2a-93c1-5d8e-a6f4-2c9d1e3b7a50"
    assert str(refusal_id("backcheck.commands.v1/0@0")) == "18cbfe45-461c-54a3-a031-0f60662cfedf"
    # what senders sign: a published layout (infra/kafka/signatures.py)
    found = {"ce_id": b"c-1", "ce_source": b"svc:ats", "ce_type": b"t", "ce_time": b""}
    assert signed_bytes(found, b"{}") == (
        b"30:backcheck-command-signature-v1,3:c-1,7:svc:ats,1:t,0:,2:{},"
    )
    assert (KEYID, SIGNATURE) == ("ce_keyid", "ce_signature")


def test_duty_run_ids_are_unchanged() -> None:
    # a run's id is derived from its duty and slot: every scheduler must derive the same one
    assert str(DUTY_NAMESPACE) == "3f6f0c52-88a1-4d0e-b7c5-2a9d41e6c7b8"
    slot = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
    assert str(run_id("retention", slot)) == "49c55e63-c74b-58a5-b54a-9012fa5bc323"


def test_principal_ids_token_layout_and_authentication_names_are_unchanged() -> None:
    # a principal's id is derived from its name: issued principals are found under it
    assert str(PRINCIPAL_NAMESPACE) == "8c4f6a1e-2d3b-5f70-9a8e-4b1c7d2e9f03"
    assert str(principal_id("hr:li.na")) == "b72a9311-460b-518e-915c-38b43ed0104a"
    subject = principal_id("x")
    assert portal_name(subject) == f"candidate:{subject}"
    # a token names its principal; the store keeps the SHA-256 hex of all of it
    token = new_token(subject)
    assert re.fullmatch(rf"bck_{subject.hex}_[A-Za-z0-9_-]{{43}}", token)
    assert token_hash("bck_x") == (
        "3e4567e10f92c0188cb141302f2564fd1f024f14a4bc8872c23a79fab13345c7"
    )
    # recorded in access events, and in refusals by assignment
    assert [a.value for a in Authentication] == [
        "token",
        "oidc",
        "portal-link",
        "operator",
        "asserted",
        "signed-message",
        "unknown",
    ]
    assert ASSIGNMENTS_POLICY == "principal-assignments"


def test_command_outcomes_and_redrives_keep_their_names() -> None:
    """Senders subscribe to the outcomes topic, dispatch on its types and match problem types;
    an outcome's id and a redrive's aggregate id are derived from these namespaces."""
    assert OUTCOMES_TOPIC == "backcheck.command-outcomes.v1"
    assert (ACCEPTED, REFUSED) == ("backcheck.command.accepted.v1", "backcheck.command.refused.v1")
    assert TYPE_PREFIX == "tag:backcheck.invalid,2026:problems/"
    assert str(OUTCOME_NAMESPACE) == "3b8f4f0e-2c1d-4b7a-9e55-6a0d3c9e7f12"
    assert str(REDRIVE_NAMESPACE) == "8a2e6f5c-1b3d-4e7f-a9c0-5d4b3a2f1e60"
    assert REDRIVEN_FROM == "backcheck_redriven_from"


def test_master_key_rotation_ids_columns_and_check_schemes_are_unchanged() -> None:
    # a rotation's id is derived from the key it rotates to: a rerun finds the unfinished one
    from domain.master_key import ROTATION_NAMESPACE, rotation_id
    from infra.privacy.keystore import KEY_CHECK_SCHEME, ROTATION_COLUMNS
    from infra.privacy.pkcs11 import CHECK_SCHEME

    assert str(ROTATION_NAMESPACE) == "6b1d2f0e-57c4-4a8e-9c3b-0f7e2d9a4c61"
    assert str(rotation_id("file:0011223344556677")) == "072de346-10fb-53a4-b14e-9f03026f8868"
    assert [c for c, _ in ROTATION_COLUMNS] == ["master", "next_wrapped", "next_master"]
    assert KEY_CHECK_SCHEME == "hmac-sha256:backcheck master key check v1"
    assert CHECK_SCHEME == "aes-cmac:backcheck master key check v1"


def test_a_report_disclosures_id_in_the_access_log_is_unchanged() -> None:
    # handed out as the entry's access_id, and derived again on every rebuild of the views
    from uuid import UUID

    from projections.access_log import DISCLOSURE_NAMESPACE, report_disclosure_id

    assert str(DISCLOSURE_NAMESPACE) == "5d0e8a3c-7b41-4f26-9c8e-1a2b3c4d5e6f"
    report = UUID("00000000-0000-4000-8000-000000000001")
    assert str(report_disclosure_id(report, 7)) == "7f3508c2-bcfd-5e14-a4f3-3fc9bc701c1d"
