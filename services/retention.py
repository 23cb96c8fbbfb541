"""The retention sweeper: shred each tier of personal values when its period has passed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from domain.candidate import Candidate
from domain.classification import Tier
from domain.report import Report
from projections.case_overview import CaseOverview
from services.dto import DueShred, FinishedShred, RetentionResult, RunRetention
from services.shredding import RETENTION_UNFINISHED, KeyLedger
from services.unit import UnitOfWork, use_case


class RetentionUseCases(UnitOfWork):
    def _replayed(self) -> tuple[CaseOverview, KeyLedger]:
        """The case overview and the key ledger, rebuilt from the log in one replay."""
        view, ledger = CaseOverview(), KeyLedger()
        for position, event in ledger.observe(self.replay()):
            view.process(position, event)
        return view, ledger

    def retention_due(self, now: datetime) -> list[DueShred]:
        """Every (candidate, tier) whose retention period has passed, from the case overview
        rebuilt from the log: quiet cases only (no investigation planned or running), only
        tiers the candidate has values of, erased candidates and shredded tiers left out."""
        return self._due(self._replayed()[0], now)

    def _due(self, view: CaseOverview, now: datetime) -> list[DueShred]:
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

    def _unfinished(self, ledger: KeyLedger) -> list[FinishedShred]:
        """The tiers an earlier run recorded as shredded whose keys are still there: it
        stopped between recording and destroying them (a crash)."""
        return [
            FinishedShred(
                candidate_id=f.candidate_id,
                tier=f.tiers[0],
                recorded_at=ledger.shredded[(f.candidate_id, f.tiers[0])].at,
            )
            for f in ledger.unfinished(self.keys.held())
            if f.rule == RETENTION_UNFINISHED
        ]

    @use_case
    def run_retention(
        self, cmd: RunRetention, progress: Callable[[int, int], None] | None = None
    ) -> RetentionResult:
        """Shred what is due, tier by tier, each recorded (TierShredded) before its key is
        destroyed. A legal hold on any of the candidate's reports keeps everything. A tier
        recorded as shredded by an earlier run that stopped before destroying its key (a
        crash) has its key destroyed first: running it again finishes what was cut off."""
        view, ledger = self._replayed()
        finished = self._unfinished(ledger)
        if not cmd.dry_run:
            for cut_off in finished:
                self.keys.destroy(cut_off.candidate_id, cut_off.tier)
        due = self._due(view, self.now())
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
                # a crash here leaves the tier recorded but not shredded: the next run ends it
                self.keys.destroy(item.candidate_id, item.tier)
                shredded.append(item)
            else:
                shredded.append(item)
            if progress is not None:
                progress(done, len(due))
        return RetentionResult(dry_run=cmd.dry_run, shredded=shredded, held=held, finished=finished)
