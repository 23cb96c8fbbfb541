"""Commands per second against the raw `eventsourcing` library saving the same events, on the
same backend, with 1 and 4 writers (issue #19: >= 0.8x the raw rate).

    .venv/bin/python bench/commands.py [--commands 1200] [--writers 1 4] [--runs 3]
                                       [--postgres URL]

The commands, each measured through the use case as a service calls it in process (DTO checked,
aggregate loaded, rules, events sealed with the subject's data key, chained, indexed by subject,
one write; concurrent writers share transactions, infra/store/group_commit.py):
- `register`: registering a candidate, one event with a name and an e-mail address; the first
  command about a subject, so it also makes the subject's data key;
- `claims`: a claim of two personal fields submitted about a registered candidate (its key
  exists: one key lookup, the candidate loaded, one event);
- `consent`: a consent asked of a registered candidate whose terms name organisations it
  excludes and a third party, each a sealed personal value (issue 21), with the portal link
  issued to the candidate in the same write (two events) and handed to the outbox;
- `consent+d`: the same consent, of other registered candidates, against the raw library
  saving the same and handing the link to the same outbox (a file written and synced, as
  ours): the outbox's flush is the link's delivery, which `consent`'s raw side does not do.
The baseline, in the same run and on a store of its own on the same backend: a stock
`Application` on the library's own persistence saving the same events' values in clear (a
`Person` created with the name and address; then loaded and given the claim; a consent request
and a link saved together). Each figure is
the median of `--runs` runs with its min and max, events per second, and the ratio of ours to
the raw rate measured beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from access_reads import run
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from machine import speed_line
from scratch import scratch_store

from infra.bootstrap import build_app
from infra.config import Settings
from infra.outbox.links import LinkOutbox
from services.application import Backcheck
from services.dto import (
    ClaimIn,
    ConsentTermsIn,
    PersonalFieldIn,
    RegisterCandidate,
    RequestConsent,
    SubmitClaims,
)
from services.ports import PortalLink
from services.principals import new_token, token_hash

NAME, EMAIL = "Li Lei", "li.lei@example.com"
FIELDS = (
    ("employer", "user.employment.employer", "Acme Logistics Ltd"),
    ("title", "user.employment.title", "Warehouse supervisor"),
)
ACTOR = "recruiter:bench"
TERMS = {
    "purposes": ["employment screening"],
    "check_types": ["employment", "reference"],
    "referee_roles": ["direct_supervisor", "hr"],
    "excluded_organisations": ["Nimbus Tech Ltd", "Acme Logistics (Shenzhen)"],
    "third_parties": ["Verify Partners Co"],
}


class Person(Aggregate):
    @event("Registered")
    def __init__(self, name: str, email: str) -> None:
        self.name, self.email = name, email

    @event("ClaimsSubmitted")
    def submit(self, claim_id: UUID, fields: list[dict[str, str]]) -> None:
        pass


class ConsentAsked(Aggregate):
    @event("Requested")
    def __init__(self, candidate_id: UUID, terms: dict[str, list[str]]) -> None:
        self.candidate_id, self.terms = candidate_id, terms


class Link(Aggregate):
    @event("Added")
    def __init__(self, candidate_id: UUID, token_hash: str, expires_at: str) -> None:
        self.candidate_id, self.token_hash, self.expires_at = candidate_id, token_hash, expires_at


class Ours:
    def __init__(self, settings: Settings) -> None:
        self.app: Backcheck = build_app(settings)

    def register(self) -> UUID:
        return self.app.register_candidate(
            RegisterCandidate(name=NAME, email=EMAIL, actor=ACTOR)
        ).candidate_id

    def claims(self, subject: UUID) -> None:
        fields = [PersonalFieldIn(name=n, category=c, value=v) for n, c, v in FIELDS]
        self.app.submit_claims(
            SubmitClaims(
                candidate_id=subject,
                claims=[ClaimIn(kind="employment", fields=fields)],
                actor=ACTOR,
            )
        )

    def consent(self, subject: UUID) -> None:
        self.app.request_consent(
            RequestConsent(candidate_id=subject, terms=ConsentTermsIn(**TERMS), actor=ACTOR)
        )

    def close(self) -> None:
        self.app.close()


class Raw:
    def __init__(self, env: dict[str, str], links: LinkOutbox | None = None) -> None:
        self.app = Application[UUID](env=env)
        self.links = links

    def register(self) -> UUID:
        person = Person(NAME, EMAIL)
        self.app.save(person)
        return person.id

    def claims(self, subject: UUID) -> None:
        person: Person = self.app.repository.get(subject)
        person.submit(uuid.uuid4(), [{"name": n, "category": c, "value": v} for n, c, v in FIELDS])
        self.app.save(person)

    def consent(self, subject: UUID) -> None:
        asked = ConsentAsked(subject, TERMS)
        self.app.save(asked, Link(subject, uuid.uuid4().hex * 2, "2027-01-01T00:00:00+00:00"))

    def consent_delivered(self, subject: UUID) -> None:
        """The same, and the link handed to the same outbox as ours (a file written and
        synced): what a store that issues links must do besides saving, sealed or not."""
        token = new_token(subject)
        link = Link(subject, token_hash(token), "2027-01-01T00:00:00+00:00")
        self.app.save(ConsentAsked(subject, TERMS), link)
        assert self.links is not None, "a raw side made without an outbox delivers nothing"
        self.links.deliver(PortalLink(subject, token, datetime(2027, 1, 1, tzinfo=UTC), 1))

    def close(self) -> None:
        self.app.close()


def raw_env(settings: Settings, work: Path) -> dict[str, str]:
    """The stock library's persistence on the same backend: a file of its own next to ours, or
    tables of its own in our schema (the library names them after the application)."""
    if settings.backend == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(work / "raw.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    env = {k: v for k, v in settings.store_env().items() if k.startswith("POSTGRES_")}
    return env | {"PERSISTENCE_MODULE": "eventsourcing.postgres"}


def one_round(side: Ours | Raw, commands: int, writers: int) -> dict[str, float]:
    """Events per second of each command (one event each) with `writers` threads."""
    registered: list[UUID] = []
    lock = threading.Lock()

    def register(_: int) -> None:
        subject = side.register()
        with lock:
            registered.append(subject)

    rate = run(writers, list(range(commands)), register)
    return {
        "register": rate,
        "claims": run(writers, registered, side.claims),
        "consent": run(writers, registered, side.consent),
    }


def delivered_round(side: Ours | Raw, commands: int, writers: int) -> float:
    """`consent+d`: consents asked of candidates registered for them (not timed), ours the
    same command, the raw side saving the same and delivering the link too."""
    fresh = [side.register() for _ in range(commands)]
    return run(writers, fresh, side.consent if isinstance(side, Ours) else side.consent_delivered)


@contextmanager
def sides(postgres: str | None) -> Iterator[tuple[Ours, Raw]]:
    with scratch_store("commands-", postgres) as settings:
        links = LinkOutbox(settings.data_dir / "raw-outbox", lambda token: f"#token={token}")
        ours, raw = Ours(settings), Raw(raw_env(settings, settings.data_dir), links)
        try:
            ours.register()  # warmed: the first write makes tables and keys
            raw.register()
            yield ours, raw
        finally:
            ours.close()
            raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1200, help="of each kind, each round")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: embedded SQLite)")
    args = parser.parse_args()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"commands against the raw library ({backend}, {args.commands} of each a round)")
    print(f"  machine: {speed_line()}", flush=True)
    for writers in args.writers:
        got: dict[str, dict[str, list[float]]] = {"ours": {}, "raw": {}}
        for _ in range(args.runs):
            with sides(args.postgres) as (ours, raw):  # fresh stores: every run the same size
                for name, side in (("raw", raw), ("ours", ours)):
                    rates = one_round(side, args.commands, writers)
                    rates["consent+d"] = delivered_round(side, args.commands, writers)
                    for kind, rate in rates.items():
                        got[name].setdefault(kind, []).append(rate)
        for kind in ("register", "claims", "consent", "consent+d"):
            o, r = got["ours"][kind], got["raw"][kind]
            ratio = statistics.median(o) / statistics.median(r)
            print(
                f"  {writers} writer(s), {kind:<8} ours {statistics.median(o):7.0f} events/s "
                f"(min {min(o):.0f}, max {max(o):.0f}); raw {statistics.median(r):7.0f} "
                f"(min {min(r):.0f}, max {max(r):.0f}); ratio {ratio:.2f} "
                f"(target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})",
                flush=True,
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
