"""Access-controlled reads per second, each with its access event durably recorded (SQLite).

    .venv/bin/python bench/access_reads.py [--candidates 50] [--reads 2000]

Prints, in one run on the same store: profile reads through the query service (facts →
Cedar decision → redaction → Access.Recorded saved before returning), next to the raw
eventsourcing baseline of the same storage work (load the candidate aggregate and save one
small event per read). Target (issue #4): >= 2,000 reads/s on SQLite.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from domain.access import Access
from domain.candidate import Candidate
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.dto import ReadProfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has the story builders
from tests import story


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(
            Settings(database_url=f"sqlite:///{Path(tmp) / 's.sqlite'}", data_dir=Path(tmp))
        )
        stories = [
            story.investigation_under_way(app, f"Candidate {i}") for i in range(args.candidates)
        ]
        print(
            f"store: {args.candidates} candidates under investigation, "
            f"{app.recorder.max_notification_id()} events"
        )
        rng = random.Random(1)
        picks = [rng.choice(stories) for _ in range(args.reads)]

        started = time.perf_counter()
        for st in picks:
            app.read_profile(
                ReadProfile(
                    candidate_id=st.candidate_id,
                    principal=story.RECRUITER,
                    role=Role.RECRUITER,
                    purpose=story.PURPOSE,
                )
            )
        ours = args.reads / (time.perf_counter() - started)

        started = time.perf_counter()
        for st in picks:
            candidate = app.repository.get(st.candidate_id)
            assert isinstance(candidate, Candidate)
            app.save(
                Access.record(
                    st.candidate_id,
                    "x",
                    "recruiter",
                    "p",
                    "profile",
                    ("user.name",),
                    (),
                    "allowed",
                    (),
                    "h",
                    (),
                )
            )
        raw = args.reads / (time.perf_counter() - started)
        app.close()
    print(f"profile reads, recorded  : {ours:>8,.0f} reads/s")
    print(f"raw load + save baseline : {raw:>8,.0f} reads/s   (ours/raw = {ours / raw:.2f})")
    print(f"target >= 2,000 reads/s: {'met' if ours >= 2000 else 'NOT met'}")


if __name__ == "__main__":
    main()
