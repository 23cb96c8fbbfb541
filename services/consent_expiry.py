"""The consent-expiry sweep: record as expired every granted consent whose window has passed.

A consent past its `valid_until` already allows nothing (its status is computed at each
decision), but until its expiry is recorded, the investigations relying on it are not
suspended and the registers show it granted. The sweep records each such expiry, with its
reaction (the investigations suspended), one consent per write: a consent withdrawn in the
meantime is left as it is, and a sweep cut off halfway is finished by the next.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, Field

from domain.consent import Consent
from domain.errors import RuleBrokenError
from projections import events as ev
from services.unit import UnitOfWork, use_case

_ENDED = (ev.ConsentWithdrawn, ev.ConsentExpired)
MAX_LISTED = 1000  # expired consents named in one result; the count is always whole


class ExpireDueConsents(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool = Field(default=False, description="list what is due; change nothing")


class ConsentExpiryResult(BaseModel):
    dry_run: bool
    expired: int = Field(description="consents recorded as expired (due, with --dry-run)")
    skipped: int = Field(description="due, but changed by someone else meanwhile: left as is")
    consent_ids: list[UUID] = Field(max_length=MAX_LISTED)
    suspended_investigations: int


class ConsentExpiryUseCases(UnitOfWork):
    def consents_due_to_expire(self, now: datetime) -> list[UUID]:
        """Every consent granted with a window that has ended by `now` and not yet recorded
        as expired (or withdrawn), in the order they were granted. Read from the consents'
        grants and ends alone (by their topics), so its cost follows the number of consents,
        not of the reads recorded beside them."""
        topics = [get_topic(cls) for cls in (*_ENDED, ev.ConsentGranted)]
        until: dict[UUID, datetime] = {}
        start = 1
        while page := self.recorder.select_notifications(start=start, limit=500, topics=topics):
            for notification in page:
                event = self.mapper.to_domain_event(notification)
                if type(event) is ev.ConsentGranted:
                    until[event.originator_id] = event.valid_until  # type: ignore[attr-defined]
                else:
                    until.pop(event.originator_id, None)
            start = page[-1].id + 1
        return [consent_id for consent_id, end in until.items() if end <= now]

    @use_case
    def expire_due_consents(self, cmd: ExpireDueConsents) -> ConsentExpiryResult:
        """A consent past its validity window is recorded as expired, with the same effect as
        a withdrawal on the investigations relying on it (they are suspended)."""
        due = self.consents_due_to_expire(self.now())
        expired: list[UUID] = []
        skipped = suspended = 0
        for consent_id in due:
            if cmd.dry_run:
                expired.append(consent_id)
                continue
            try:
                consent = self.load(Consent, consent_id)
                consent.expire(self.now())
                suspended += len(self.commit(consent))
            except RuleBrokenError:  # a ConcurrentChangeError too
                skipped += 1  # withdrawn or expired by someone else since the overview was read
                continue
            expired.append(consent_id)
        return ConsentExpiryResult(
            dry_run=cmd.dry_run,
            expired=len(expired),
            skipped=skipped,
            consent_ids=expired[:MAX_LISTED],
            suspended_investigations=suspended,
        )
