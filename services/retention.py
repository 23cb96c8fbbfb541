"""The retention sweeper: shred each tier of personal values when its period has passed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from domain.candidate import Candidate
from domain.classification import Tier
from domain.report import Report
from projections.case_overview import CaseOverview
from services.dto import DueShred, RetentionResult, RunRetention
from services.unit import UnitOfWork, use_case


class RetentionUseCases(UnitOfWork):
    def retention_due(self, now: datetime) -> list[DueShred]:
        """Every (candidate, tier) whose retention period has passed, from the case overview
        rebuilt from the log: quiet cases only (no investigation planned or running), only
        tiers the candidate has values of, erased candidates and shredded tiers left out."""
        view = CaseOverview()
        for position, event in self.replay():
            view.process(position, event)
        due = []
        for row in view.rows.values():
            if row.erased or row.case_open or row.last_activity is None:
                continue
            held = self.keys.tiers(row.candidate_id)
            for tier in self.retention.due_tiers(row.last_activity, now):
                if tier.value in held and tier.value not in row.shredded_tiers:
                    due.append(
                        DueShred(
                            candidate_id=row.candidate_id,
                            tier=tier.value,
                            quiet_since=row.last_activity,
                            due_at=self.retention.due_at(tier, row.last_activity),
                        )
                    )
        return due

    @use_case
    def run_retention(
        self, cmd: RunRetention, progress: Callable[[int, int], None] | None = None
    ) -> RetentionResult:
        """Shred what is due, tier by tier, each recorded (TierShredded) before its key is
        destroyed. A legal hold on any of the candidate's reports keeps everything."""
        due = self.retention_due(self.now())
        shredded: list[DueShred] = []
        held: list[DueShred] = []
        for done, item in enumerate(due, start=1):
            on_hold = [
                r.id for r in self.of_subject(Report, item.candidate_id) if r.legal_hold is not None
            ]
            if on_hold:
                held.append(item)
            elif not cmd.dry_run:
                candidate = self.load(Candidate, item.candidate_id)
                candidate.shred_tier(
                    item.tier, self.retention.days[Tier(item.tier)], item.quiet_since, []
                )
                self.commit(candidate)
                self.keys.destroy(item.candidate_id, item.tier)
                shredded.append(item)
            else:
                shredded.append(item)
            if progress is not None:
                progress(done, len(due))
        return RetentionResult(dry_run=cmd.dry_run, shredded=shredded, held=held)
