"""The retention sweeper: shred each category of personal values when its period has passed,
and each tier whole once every category of it the candidate holds has gone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from domain.candidate import Candidate
from domain.classification import CATEGORIES, Tier
from domain.report import Report
from domain.retention import ORDER
from projections.case_overview import CaseOverview, CaseRow
from services.dto import DueShred, FinishedShred, RetentionResult, RunRetention
from services.shredding import RETENTION_UNFINISHED, KeyLedger, scopes_of_tier
from services.unit import UnitOfWork, use_case


class RetentionUseCases(UnitOfWork):
    def _replayed(self) -> tuple[CaseOverview, KeyLedger]:
        """The case overview and the key ledger, rebuilt from the log in one replay."""
        view, ledger = CaseOverview(), KeyLedger()
        for position, event in ledger.observe(self.replay()):
            view.process(position, event)
        return view, ledger

    def retention_due(self, now: datetime) -> list[DueShred]:
        """Every (candidate, tier) with values whose retention period has passed, from the
        case overview rebuilt from the log: quiet cases only (no investigation planned or
        running), only keys the candidate holds, erased candidates and shredded keys left out."""
        return self._due(self._replayed()[0], now)

    def _due(self, view: CaseOverview, now: datetime) -> list[DueShred]:
        due = []
        for row in view.rows.values():
            if row.erased or row.case_open or row.last_activity is None:
                continue
            held = self.keys.tiers(row.candidate_id)
            for tier in ORDER:
                item = self._due_of_tier(row, row.last_activity, tier, held, now)
                if item is not None:
                    due.append(item)
        return due

    def _due_of_tier(
        self, row: CaseRow, quiet: datetime, tier: Tier, held: set[str], now: datetime
    ) -> DueShred | None:
        """The tier whole, once the periods of all its categories the candidate holds have
        passed (every category of it, if its own key holds values: no key says which); else
        the categories of it whose own periods have passed."""
        if tier.value in row.shredded_tiers:
            return None
        own_key = tier.value in held
        categories = sorted(
            k
            for k in held
            if k in CATEGORIES and CATEGORIES[k].tier is tier and k not in row.shredded_categories
        )
        if not categories and not own_key:
            return None
        days = self.retention.tier_days(tier, None if own_key else set(categories))
        if days is not None and now >= quiet + timedelta(days=days):
            return DueShred(
                candidate_id=row.candidate_id,
                tier=tier.value,
                categories=categories,
                quiet_since=quiet,
                due_at=quiet + timedelta(days=days),
            )
        due = {k: at for k in categories if (at := self.retention.category_due_at(k, quiet))}
        passed = sorted(k for k, at in due.items() if now >= at)
        if not passed:
            return None
        return DueShred(
            candidate_id=row.candidate_id,
            tier=tier.value,
            categories=passed,
            whole_tier=False,
            tier_key_kept=own_key,
            quiet_since=quiet,
            due_at=max(due[k] for k in passed),
        )

    def _unfinished(self, ledger: KeyLedger) -> list[FinishedShred]:
        """The keys an earlier run recorded as shredded that are still there: it stopped
        between recording and destroying them (a crash)."""
        return [
            FinishedShred(
                candidate_id=f.candidate_id,
                tier=CATEGORIES[f.tiers[0]].tier.value if f.tiers[0] in CATEGORIES else f.tiers[0],
                keys=list(f.tiers),
                recorded_at=ledger.shredded[(f.candidate_id, f.tiers[0])].at,
            )
            for f in ledger.unfinished(self.keys.held())
            if f.rule == RETENTION_UNFINISHED
        ]

    @use_case
    def run_retention(
        self, cmd: RunRetention, progress: Callable[[int, int], None] | None = None
    ) -> RetentionResult:
        """Shred what is due, each shredding recorded (TierShredded for a tier whole,
        CategoriesShredded for categories of it) before its keys are destroyed. A legal hold
        on any of the candidate's reports keeps everything. A key recorded as shredded by an
        earlier run that stopped before destroying it (a crash) is destroyed first: running
        it again finishes what was cut off."""
        view, ledger = self._replayed()
        finished = self._unfinished(ledger)
        if not cmd.dry_run:
            for cut_off in finished:
                self.keys.destroy(cut_off.candidate_id, tuple(cut_off.keys))
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
                self._shred(item)
                shredded.append(item)
            else:
                shredded.append(item)
            if progress is not None:
                progress(done, len(due))
        return RetentionResult(dry_run=cmd.dry_run, shredded=shredded, held=held, finished=finished)

    def _shred(self, item: DueShred) -> None:
        candidate = self.load(Candidate, item.candidate_id)
        if item.whole_tier:
            days = (item.due_at - item.quiet_since).days
            candidate.shred_tier(item.tier, days, item.quiet_since, [])
            scopes = scopes_of_tier(item.tier)
        else:
            periods = {k: self.retention.category_days(k) for k in item.categories}
            candidate.shred_categories(
                {k: d for k, d in periods.items() if d is not None}, item.quiet_since, []
            )
            scopes = set(item.categories)
        self.commit(candidate)
        # a crash here leaves the keys recorded but not destroyed: the next run ends it
        self.keys.destroy(item.candidate_id, tuple(sorted(scopes)))
