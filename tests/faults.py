"""Writers killed at random points: the fault suite's processes and what it checks afterwards.

A writer is a process forked from the test (no interpreter start-up, so hundreds of kills fit
in CI's budget) that opens the store and runs commands until it is killed: it registers
candidates, submits their claims, asks for their consent, and now and then erases one. Each
command it finishes (acknowledged: the use case returned) is written to its journal and flushed
before the next begins; an erasure is written there before it starts too. SIGKILL can land
anywhere: in a commit, between an erasure's event and its keys' destruction, mid-flush.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from projections.events import CandidateRegistered
from services.application import Backcheck
from services.dto import (
    ClaimIn,
    EraseSubject,
    PersonalFieldIn,
    RegisterCandidate,
    RequestConsent,
    SubmitClaims,
)
from tests import story

FORK = multiprocessing.get_context("fork")


def write_until_killed(settings: Settings, journal: Path, seed: int) -> None:
    """Runs commands on the store until killed, journaling each one acknowledged."""
    rng = random.Random(seed)
    app = build_app(settings)
    mine: list[UUID] = []
    with journal.open("a") as out:

        def ack(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        while True:
            candidate = uuid4()
            app.register_candidate(
                RegisterCandidate(candidate_id=candidate, name="Fault Tolerant", actor="hr:fault")
            )
            ack(f"registered {candidate}")
            mine.append(candidate)
            app.submit_claims(
                SubmitClaims(
                    candidate_id=candidate,
                    claims=[
                        ClaimIn(
                            kind="education",
                            fields=[
                                PersonalFieldIn(
                                    name="school", category="user.education", value="Fudan"
                                )
                            ],
                        )
                    ],
                    actor="hr:fault",
                )
            )
            ack(f"claimed {candidate}")
            consent = app.request_consent(
                RequestConsent(candidate_id=candidate, terms=story.terms_in(), actor="hr:fault")
            )
            ack(f"asked {consent.consent_id}")
            if len(mine) > 2 and rng.random() < 0.25:
                gone = mine.pop(rng.randrange(len(mine) - 1))
                ack(f"erasing {gone}")
                app.erase_subject(
                    EraseSubject(candidate_id=gone, reason="candidate-request", actor="dpo")
                )
                ack(f"erased {gone}")


@dataclass
class Journal:
    """What the killed writers acknowledged, read back from their journals."""

    registered: list[UUID] = field(default_factory=list)
    claimed: list[UUID] = field(default_factory=list)
    asked: list[UUID] = field(default_factory=list)
    erasing: list[UUID] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Path) -> Journal:
        found = cls()
        for path in sorted(folder.glob("journal-*")):
            for line in path.read_text().splitlines():
                what, _, ident = line.partition(" ")
                if what in ("registered", "claimed", "asked", "erasing"):
                    getattr(found, what).append(UUID(ident))
        return found


def kill_writers(settings: Settings, folder: Path, kills: int, writers: int = 2) -> int:
    """Starts `writers` writers and SIGKILLs one at a random moment, `kills` times, starting
    a new one in its place; returns how many were killed mid-run (not yet finished)."""
    rng = random.Random(kills)
    running: list[multiprocessing.process.BaseProcess] = []
    serial = 0

    def start() -> None:
        nonlocal serial
        serial += 1
        journal = folder / f"journal-{serial:05}"
        p = FORK.Process(target=write_until_killed, args=(settings, journal, serial), daemon=True)
        p.start()
        running.append(p)

    for _ in range(writers):
        start()
    killed = 0
    for _ in range(kills):
        time.sleep(rng.uniform(0.05, 0.6))
        victim = running.pop(rng.randrange(len(running)))
        if victim.is_alive():
            os.kill(victim.pid or 0, signal.SIGKILL)
            killed += 1
        else:
            raise AssertionError(f"a writer stopped on its own (exit {victim.exitcode})")
        victim.join(10)
        start()
    for p in running:
        os.kill(p.pid or 0, signal.SIGKILL)
        p.join(10)
    return killed


def assert_nothing_lost(app: Backcheck, settings: Settings, journal: Journal) -> None:
    """Every acknowledged command stored once, the chain whole, the views equal a rebuild."""
    registered = Counter(
        e.originator_id for _, e in app.replay() if isinstance(e, CandidateRegistered)
    )
    assert journal.registered, "no writer got as far as one command"
    missing = [c for c in journal.registered if c not in registered]
    assert not missing, f"{len(missing)} acknowledged registrations lost: {missing[:3]}"
    assert max(registered.values()) == 1
    for candidate in journal.claimed:
        assert app.get_candidate(candidate).claim_ids, candidate
    with open_source(settings) as source:
        verdict = verify(source)
    assert verdict.intact, verdict.first
    views = app.views
    views.catch_up()
    before = views.store.dump()  # type: ignore[attr-defined]
    views.rebuild(batch=1000)  # type: ignore[attr-defined]
    after = views.store.dump()  # type: ignore[attr-defined]
    differing = [row[:2] for row in after if row not in before]
    assert after == before, f"views differ from a rebuild at {differing[:3]}"
