"""Evidence bundle v2 size and speed (issue #22): a subject's 40 events spread evenly over a
store of N events (written through the real recorder, chain and tree, 10,000 a transaction),
bundled by `audit export`'s bundler and checked by the independent verifier.

    .venv/bin/python bench/bundle_size.py [--events 1000000] [--mine 40]

Prints N, the bundle's bytes, the hashes it carries (distinct, and summed over the proofs),
the longest proof against ⌈log2 N⌉, and the seconds to build the store, the bundle and to
verify it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit import verify_bundle
from infra.audit.evidence_v2 import make_bundle
from infra.audit.notes import ED25519, Signer, Verifier
from infra.audit.sources import SQLiteSource
from services.evidence import BundleRequest
from tests.bundles import spread_store


def measure(n: int, mine: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as work:
        store, subject = Path(work) / "s.sqlite", uuid.uuid4()
        started = time.perf_counter()
        positions = spread_store(store, n, subject, mine)
        built = time.perf_counter() - started
        signer = Signer("bench.example/log", Ed25519PrivateKey.generate())
        request = BundleRequest(subject, positions, [], datetime.now(UTC))
        started = time.perf_counter()
        with SQLiteSource(str(store)) as source:
            made = make_bundle(source, request, signer)
        bundled = time.perf_counter() - started
    key = verify_bundle.Key(Verifier(signer.name, ED25519, signer.private_key.public_key()).vkey)
    started = time.perf_counter()
    verify_bundle.verify(made.data, key, [], 0, [])
    verified = time.perf_counter() - started
    body = json.loads(made.data.split(b"\n")[1])
    lengths = [len(r["inclusion_proof"]) for r in body["records"]]
    return {
        "events": n,
        "records": len(lengths),
        "bundle_bytes": len(made.data),
        "distinct_hashes": len(body["proof_hashes"]),
        "proof_hashes_total": sum(lengths),
        "longest_proof": max(lengths),
        "log2_ceiling": math.ceil(math.log2(n)),
        "store_s": round(built, 1),
        "bundle_ms": round(bundled * 1000, 1),
        "verify_ms": round(verified * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--mine", type=int, default=40)
    args = parser.parse_args()
    for n in args.events:
        print(json.dumps(measure(n, args.mine)), flush=True)


if __name__ == "__main__":
    main()
