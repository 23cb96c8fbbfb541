"""The whole story: every chapter in order, what it made, and the closing summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from infra.demo.claims import ClaimIds, collect_claims
from infra.demo.consent import ConsentIds, ask_for_consent
from infra.demo.erasure import ErasureIds, erase_on_request
from infra.demo.findings import FindingIds, cross_verify
from infra.demo.hearing import HearingIds, hear_the_candidate
from infra.demo.narrator import Narrator
from infra.demo.plan import PlanIds, plan_within_consent
from infra.demo.reads import ReadIds, read_personal_data
from infra.demo.report import ReportIds, report_and_disclose
from infra.demo.withdrawal import WithdrawalIds, withdraw_another_candidate
from infra.terminal import cells
from services.application import Backcheck


@dataclass(frozen=True)
class DemoRun:
    """What one telling of the story made, chapter by chapter, and how it went."""

    consent: ConsentIds
    plan: PlanIds
    claims: ClaimIds
    findings: FindingIds
    hearing: HearingIds
    report: ReportIds
    withdrawal: WithdrawalIds
    reads: ReadIds
    erasure: ErasureIds
    steps: int
    refusals: tuple[str, ...]  # the rule each refusal enforced, in the order met

    def as_json(self) -> dict[str, object]:
        """The ids of every chapter in one flat object (no two chapters share a field name),
        with the number of steps and refusals and the rules that refused."""
        ids: dict[str, object] = {}
        for chapter in (
            self.consent,
            self.plan,
            self.claims,
            self.findings,
            self.hearing,
            self.report,
            self.withdrawal,
            self.reads,
            self.erasure,
        ):
            ids.update(asdict(chapter))
        return {
            **ids,
            "steps": self.steps,
            "refusals": len(self.refusals),
            "rules": list(dict.fromkeys(self.refusals)),
        }


def tell_story(app: Backcheck, narrator: Narrator | None = None) -> DemoRun:
    """Every chapter in order on `app`'s store; printed as it goes by the narrator, if any
    (without one the story runs silently). Raises DemoFailedError if a rule did not hold."""
    n = narrator or Narrator(app)
    consent = ask_for_consent(app, n)
    plan = plan_within_consent(app, n, consent)
    claims = collect_claims(app, n, consent)
    findings = cross_verify(app, n, plan)
    hearing = hear_the_candidate(app, n, plan)
    report = report_and_disclose(app, n, plan)
    withdrawal = withdraw_another_candidate(app, n)
    reads = read_personal_data(app, n, consent, plan)
    erasure = erase_on_request(app, n, withdrawal)
    return DemoRun(
        consent=consent,
        plan=plan,
        claims=claims,
        findings=findings,
        hearing=hearing,
        report=report,
        withdrawal=withdrawal,
        reads=reads,
        erasure=erasure,
        steps=n.steps,
        refusals=tuple(n.refusals),
    )


def run_demo(app: Backcheck, console: Console) -> DemoRun:
    """The story told on `console`, closed by what the report says and the counts."""
    narrator = Narrator(app, console)
    told = tell_story(app, narrator)
    _summary(app, narrator, told)
    return told


def _summary(app: Backcheck, n: Narrator, told: DemoRun) -> None:
    n.chapter("What the report says")
    table = Table("check", "outcome", "sources", "flags", "amendment note")
    for item in app.get_report(told.report.report_id).items:
        table.add_row(
            *cells(
                item.check_type,
                item.outcome,
                ", ".join(item.source_roles),
                ", ".join(item.flags),
                "on file (personal data)" if item.has_note else "",
            )
        )
    n.out.print(table)
    candidate_id = told.consent.candidate_id
    events = list(app.iter_events(candidate_id))
    n.out.print(
        f"\n{told.steps} steps, {len(told.refusals)} refusals "
        f"({', '.join(dict.fromkeys(told.refusals))}); "
        f"{len(events)} events recorded about Wang Fang (candidate {candidate_id})."
    )
    n.out.print(f"See them with: [bold]backcheck events --subject {candidate_id}[/]")
