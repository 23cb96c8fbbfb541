"""What signing and verifying commands cost the command intake (issue 20: < 10% of intake
throughput), measured in one run.

    .venv/bin/python bench/intake_signing.py [--commands 500] [--runs 3] [--postgres URL]

Each round sends `--commands` register-candidate commands through `decide`, the intake's
whole work on a message once the consumer has it: the command parsed and validated, the
candidate registered with the command's receipt in one write. Signed rounds also pay for what
signing adds on both sides: the sender building the signature (Ed25519 over the netstrings,
infra/kafka/signatures.py), and the intake checking it before anything else — the sender's
principal looked up (again once a second), the signature verified, the time, the scope and the
actor checked (a replay is found by the receipt the intake reads anyway). Unsigned rounds are
the intake as it was (no sender check). The two run on two stores of their own and take turns
every 25 commands, so both grow alike and the load of other processes falls on both.

Printed: the median of `--runs` rounds of each, in commands per second; the ratios to unsigned
of signed (signing + verifying) and of verified (the intake alone: the time signing took left
out, as the sender pays it), target >= 0.9; and, counted directly, the microseconds signing and
the intake's check take a command, as shares of an unsigned command's time. On a machine whose
load swings, a command's time through the store varies by more than the check costs, and the
direct count is the steadier figure; so is the CPU a command, signed against unsigned (this
thread's CPU time, which other processes move less than the rates), which also holds what the
check costs the store's work after it (the caches it evicted). No broker: Kafka's transport
is the same either way (two headers, 100 bytes more), so leaving it out makes the cost of
signing look larger, never smaller.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from scratch import scratch_store

from infra.bootstrap import build_app
from infra.kafka.cloudevent import command_headers
from infra.kafka.intake import CommandMessage, decide
from infra.kafka.senders import SenderCheck, SenderRefusal
from infra.kafka.signatures import CommandSigner, public_text
from services.access import Role
from services.application import Backcheck
from services.dto import AddPrincipal
from services.intake import CommandIntake
from services.senders import AddSender

SENDER = "svc:bench"
ACTOR = "hr:bench"
BATCH = 25  # commands a side sends before the other takes its turn


class TimedCheck(SenderCheck):
    """The intake's sender check, adding up the time it takes."""

    spent = 0.0

    def check(
        self, headers: Sequence[tuple[str, bytes]], value: bytes | None, channel: str
    ) -> SenderRefusal | None:
        started = time.perf_counter()
        try:
            return super().check(headers, value, channel)
        finally:
            self.spent += time.perf_counter() - started


class Side:
    """One intake on a store of its own, signed or not."""

    def __init__(self, app: Backcheck, signer: CommandSigner | None) -> None:
        self.app, self.signer = app, signer
        self.intake = CommandIntake(app)
        self.check = TimedCheck(app) if signer is not None else None
        self.offset = 0
        self.cpu = 0.0

    def batch(self, commands: int) -> tuple[float, float]:
        """Seconds `commands` take through the intake, with the sender's signing (if signed),
        and of those the seconds signing took. `cpu` adds up this thread's CPU seconds of the
        same (what other processes take from the machine is not in it)."""
        signing = 0.0
        cpu = time.thread_time()
        started = time.perf_counter()
        for _ in range(commands):
            self.offset += 1
            candidate = str(uuid.uuid4())
            value = orjson.dumps(
                {"candidate_id": candidate, "name": "Li Lei", "email": "li@x.cn", "actor": ACTOR}
            )
            headers = command_headers("register-candidate", candidate, SENDER, self.app.clock())
            if self.signer is not None:
                signed_at = time.perf_counter()
                headers = self.signer.headers(headers, value)
                signing += time.perf_counter() - signed_at
            message = CommandMessage(
                "backcheck.commands.v1", 0, self.offset, candidate.encode(), value, tuple(headers)
            )
            decision = decide(self.intake, message, senders=self.check)
            if not decision.applied:
                raise SystemExit(f"not applied: {decision.reason}: {decision.error}")
        took = time.perf_counter() - started
        self.cpu += time.thread_time() - cpu
        return took, signing


def sender_app(app: Backcheck, signer: CommandSigner) -> Backcheck:
    """`app` with the sender registered, and the recruiter it acts for (a sender acts only
    for principals registered first)."""
    app.add_principal(AddPrincipal(name=ACTOR, role=Role.RECRUITER, actor="operator"))
    app.add_sender(
        AddSender(
            name=SENDER,
            public_key=public_text(signer.private.public_key()),
            use_cases=["register-candidate"],
            acts_for=[ACTOR],
            actor="operator",
        )
    )
    return app


@dataclass
class Rates:
    """Commands per second, one per run: signed (the sender's signing and the intake's check
    and work), verified (the intake alone, signing left out) and unsigned (the intake as it
    was)."""

    signed: list[float] = field(default_factory=list)
    verified: list[float] = field(default_factory=list)
    unsigned: list[float] = field(default_factory=list)
    signing_us: list[float] = field(default_factory=list)  # a command, on the sender's side
    checking_us: list[float] = field(default_factory=list)  # a command, the intake's check
    # CPU a command (this thread's: the intake's work, and the sender's signing when signed)
    signed_cpu_us: list[float] = field(default_factory=list)
    unsigned_cpu_us: list[float] = field(default_factory=list)

    def cpu_share(self) -> float:
        """How much more CPU a signed command takes than an unsigned one (medians): like the
        direct count, less moved by other processes than the rates; unlike it, it also holds
        what the check costs the work after it (caches it evicted)."""
        return statistics.median(self.signed_cpu_us) / statistics.median(self.unsigned_cpu_us) - 1

    def shares(self) -> tuple[float, float]:
        """Signing and checking as shares of an unsigned command's time through the intake
        (medians): the cost counted directly, which the load of other processes moves less
        than it moves the two rates' ratio."""
        per_command = 1e6 / statistics.median(self.unsigned)
        return (
            statistics.median(self.signing_us) / per_command,
            statistics.median(self.checking_us) / per_command,
        )


def measure(runs: int, commands: int, postgres: str | None = None) -> Rates:
    """One of each rate per run. Within a run the two stores take turns every `BATCH`
    commands, so a machine whose load changes (other processes) slows both alike."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = CommandSigner(Ed25519PrivateKey.generate())
    rates = Rates()
    with ExitStack() as stack:
        a = stack.enter_context(scratch_store("intake_signed-", postgres))
        b = stack.enter_context(scratch_store("intake_unsigned-", postgres))
        ours = sender_app(build_app(a), signer)
        stack.callback(ours.close)
        theirs = build_app(b)
        stack.callback(theirs.close)
        sides = (Side(ours, signer), Side(theirs, None))
        for side in sides:  # warm both: keys made, caches filled, code paths compiled
            side.batch(BATCH)
        batches = max(1, commands // BATCH)
        checker = sides[0].check
        assert checker is not None
        for _ in range(runs):
            took, signing = [0.0, 0.0], 0.0
            checker.spent = 0.0
            for side in sides:
                side.cpu = 0.0
            for n in range(batches):
                for i in (0, 1) if n % 2 == 0 else (1, 0):
                    seconds, signed = sides[i].batch(BATCH)
                    took[i] += seconds
                    signing += signed
            done = batches * BATCH
            rates.signed.append(done / took[0])
            rates.verified.append(done / (took[0] - signing))
            rates.unsigned.append(done / took[1])
            rates.signing_us.append(signing / done * 1e6)
            rates.checking_us.append(checker.spent / done * 1e6)
            rates.signed_cpu_us.append(sides[0].cpu / done * 1e6)
            rates.unsigned_cpu_us.append(sides[1].cpu / done * 1e6)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=500, help="commands per round")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", help="measure on this PostgreSQL URL instead of SQLite")
    args = parser.parse_args()
    if not 10 <= args.commands <= 100_000 or not 1 <= args.runs <= 50:
        parser.error("--commands 10..100000, --runs 1..50")
    rates = measure(args.runs, args.commands, args.postgres)
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{where}; {args.commands} commands a round")
    for name, values in (
        ("signed (signing + intake)", rates.signed),
        ("verified (intake alone)", rates.verified),
        ("unsigned", rates.unsigned),
    ):
        print(
            f"{name}: {statistics.median(values):,.0f} commands/s "
            f"(min {min(values):,.0f}, max {max(values):,.0f})"
        )
    base = statistics.median(rates.unsigned)
    for name, values in (("signing + verifying", rates.signed), ("verifying", rates.verified)):
        ratio = statistics.median(values) / base
        verdict = "met" if ratio >= 0.9 else "NOT met"
        print(f"{name}: ratio {ratio:.3f} to unsigned (cost {1 - ratio:.1%}); >= 0.9: {verdict}")
    signing, checking = rates.shares()
    print(
        f"counted directly: signing {statistics.median(rates.signing_us):.0f} us a command "
        f"({signing:.1%} of an unsigned command's {1e6 / base:,.0f} us), the intake's check "
        f"{statistics.median(rates.checking_us):.0f} us ({checking:.1%}); together "
        f"{signing + checking:.1%}"
    )
    share = rates.cpu_share()
    print(
        f"CPU a command (the intake's, plus the sender's signing): signed "
        f"{statistics.median(rates.signed_cpu_us):,.0f} us, unsigned "
        f"{statistics.median(rates.unsigned_cpu_us):,.0f} us: signing + verifying {share:.1%} "
        f"more; < 10%: {'met' if share < 0.1 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
