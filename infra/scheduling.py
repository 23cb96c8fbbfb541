"""The scheduled duties, wired from the settings: what each duty calls, who this scheduler is,
and the scheduler that runs them (services/schedule.py holds the rules: slots, claims, leases).

    retention       the retention sweep (services/retention.py), shredding for real
    consent-expiry  the consent-expiry sweep (services/consent_expiry.py)
    checkpoint      a signed checkpoint (a C2SP note) of the log's tree head, kept in
                    DATA_DIR/checkpoints of the machine whose scheduler ran it
                    (infra/audit/trail.py: sign_head); with `scheduler --publish-checkpoints`,
                    also published on backcheck.checkpoints.v1 for the witnesses
                    (infra/kafka/checkpoints.py), and with witnesses configured
                    (BACKCHECK_WITNESS_KEYS) the cosignatures they sent back since
                    collected into the store (infra/kafka/cosignature_collector.py)

Each returns what it did as counts, which the run's record keeps (never an id or a value of a
data subject). The duties run in this order, each to its end, within one tick.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from infra.config import SCHEDULES, Settings
from services.application import Backcheck
from services.consent_expiry import ExpireDueConsents
from services.dto import RunRetention
from services.schedule import Counts, DutyScheduler, Every, ScheduledDuty
from services.unit import Clock


def runner_id(settings: Settings) -> str:
    """This scheduler in the runs it records: BACKCHECK_SCHEDULER_ID, else HOST:PID."""
    return settings.scheduler_id or f"{socket.gethostname()}:{os.getpid()}"


def _retention(app: Backcheck) -> Counts:
    result = app.run_retention(RunRetention(dry_run=False))
    return {
        "shredded": len(result.shredded),
        "held": len(result.held),
        "finished": len(result.finished),
    }


def _consent_expiry(app: Backcheck) -> Counts:
    result = app.expire_due_consents(ExpireDueConsents())
    return {
        "expired": result.expired,
        "skipped": result.skipped,
        "suspended_investigations": result.suspended_investigations,
    }


def _checkpoint(app: Backcheck, settings: Settings, publish: bool) -> Counts:
    from infra.audit.trail import sign_head  # the signing key and the chain's reader

    signed, _ = sign_head(settings)
    counts = {"position": signed.position, "size": signed.size}
    if not publish:
        return counts
    from infra.kafka.checkpoints import publish_to_kafka

    size, sent = publish_to_kafka(settings)
    counts |= {"tree_size": size, "published": int(sent)}
    if not settings.witness_keys:
        return counts
    from infra.kafka.cosignature_collector import collect_into_store  # what came back since

    collected = collect_into_store(app, settings, quiet=1.0)
    return counts | {"cosignatures": collected.new, "cosignatures_refused": len(collected.refused)}


def scheduled_duties(
    app: Backcheck, settings: Settings, *, publish_checkpoints: bool = False
) -> list[ScheduledDuty]:
    """The duties the settings schedule (BACKCHECK_SCHEDULE_*), in the order of `SCHEDULES`;
    one set "off" is left out. `publish_checkpoints`: the checkpoint duty also publishes on
    Kafka, and with witnesses configured (BACKCHECK_WITNESS_KEYS) collects the cosignatures
    they have sent back since."""
    actions = {
        "retention": lambda: _retention(app),
        "consent-expiry": lambda: _consent_expiry(app),
        "checkpoint": lambda: _checkpoint(app, settings, publish_checkpoints),
    }
    return [
        ScheduledDuty(duty, Every(settings.schedules[duty]), actions[duty])
        for duty in SCHEDULES
        if duty in settings.schedules
    ]


def duty_scheduler(
    app: Backcheck,
    settings: Settings,
    clock: Clock | None = None,
    *,
    publish_checkpoints: bool = False,
) -> DutyScheduler:
    return DutyScheduler(
        app,
        scheduled_duties(app, settings, publish_checkpoints=publish_checkpoints),
        runner_id(settings),
        timedelta(seconds=settings.schedule_lease),
        clock,
    )
