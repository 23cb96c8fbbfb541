"""Witness cosignatures come home and travel in bundles: two witnesses on a real broker (Tansu)
cosign the log's checkpoints, `audit collect-cosignatures` keeps them in the store (SQLite,
PostgreSQL), `audit export --witnesses-required K` proves the subject's records in the newest
checkpoint K of them cosigned, and the independent verifier, run alone, demands k of n.
Without Kafka, `audit add-cosignature FILE` does the same with a witness's cosigned copy."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaProducer

from infra.audit.cosignature_store import CosignatureStore
from infra.audit.log_checkpoint import signer
from infra.audit.log_tree import LogTree
from infra.audit.notes import COSIGNATURE_V1, Note, Signer, cosign, parse_note, sign
from infra.audit.sources import open_source
from infra.audit.trail import key_pair
from infra.audit.witness import Witness
from infra.bootstrap import build_app
from infra.cli.witness import make_witness_key
from infra.config import Settings
from infra.kafka.checkpoints import (
    COSIGNATURES_TOPIC,
    CosignedCheckpoint,
    make_checkpoint,
    publish_checkpoint,
)
from infra.kafka.cloudevent import dead_letter_of
from infra.kafka.topics import dead_letter_topic
from infra.kafka.witness import WitnessFollower
from tests import story as s
from tests.integration.test_bundle_v2 import run_verifier
from tests.integration.test_witness import follow_until
from tests.kafka import BACKCHECK, Broker, every_record, store_env

ORIGIN = "backcheck.test/log"


@pytest.fixture
def store(settings: Settings) -> Settings:
    settings = settings.model_copy(update={"log_origin": ORIGIN})
    key_pair(settings.keys_dir, origin=ORIGIN)
    return settings


@pytest.fixture
def witnesses() -> list[Signer]:
    return [
        Signer(f"witness.test/w{n}", Ed25519PrivateKey.generate(), COSIGNATURE_V1) for n in (1, 2)
    ]


def env_of(store: Settings, witnesses: list[Signer], **more: str) -> dict[str, str]:
    return (
        store_env(store)
        | {
            "BACKCHECK_LOG_ORIGIN": ORIGIN,
            "BACKCHECK_WITNESS_KEYS": ",".join(w.verifier.vkey for w in witnesses),
        }
        | more
    )


def backcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [BACKCHECK, "audit", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def registered(settings: Settings, names: list[str]) -> list[UUID]:
    app = build_app(settings)
    try:
        return [s.register(app, name) for name in names]
    finally:
        app.close()


def exported(env: dict[str, str], subject: UUID, out: Path, k: int) -> Path:
    done = backcheck(
        env, "export", "--subject", str(subject), "--out", str(out), "--witnesses-required", str(k)
    )
    assert done.returncode == 0, done.stderr
    return out


def body(bundle: Path) -> dict[str, object]:
    return dict(json.loads(bundle.read_text().split("\n")[1]))


def _witness_args(witnesses: list[Signer]) -> list[str]:
    return [arg for w in witnesses for arg in ("--witness", w.verifier.vkey)]


@pytest.fixture
def followers(
    tmp_path: Path, own_kafka_broker: Broker, store: Settings, witnesses: list[Signer]
) -> Iterator[list[WitnessFollower]]:
    log = signer(store).verifier
    made = [
        WitnessFollower(
            Witness(tmp_path / f"w{n}", log, key),
            own_kafka_broker.bootstrap,
            lambda: datetime.now(UTC),
        )
        for n, key in enumerate(witnesses)
    ]
    yield made
    for follower in made:
        follower.close()


@pytest.mark.kafka
def test_two_witnesses_cosign_the_store_collects_and_the_bundle_demands_k_of_n(
    store: Settings,
    tmp_path: Path,
    own_kafka_broker: Broker,
    witnesses: list[Signer],
    followers: list[WitnessFollower],
) -> None:
    subject, _ = registered(store, ["Zhou Min", "Someone Else"])
    env = env_of(store, witnesses, BACKCHECK_KAFKA_BOOTSTRAP=own_kafka_broker.bootstrap)
    # no cosigned checkpoint yet: refused before anything is recorded, exit 75
    refused = backcheck(
        env, "export", "--subject", str(subject), "--out", str(tmp_path / "no.bundle"),
        "--witnesses-required", "2",
    )  # fmt: skip
    assert refused.returncode == 75, refused.stderr
    assert "not exported: no checkpoint covering the subject's records" in refused.stderr
    assert not (tmp_path / "no.bundle").exists()
    published = backcheck(env, "publish-checkpoint")
    assert published.returncode == 0, published.stderr
    size = int(published.stdout.split(" size ")[1].split()[0])
    for follower in followers:
        assert follow_until(follower, size) is None
    # on the topic too: something not JSON, and a checkpoint cosigned by no configured witness
    nobody = Signer("witness.test/nobody", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    kept_copy = followers[0].witness.cosigned(size)
    assert kept_copy is not None
    stranger = Note(kept_copy.text, (kept_copy.signatures[0], cosign(kept_copy, nobody, 1)))
    producer = KafkaProducer(bootstrap_servers=own_kafka_broker.bootstrap)
    try:
        for value in (
            b"{not json",
            CosignedCheckpoint(checkpoint=str(stranger), witness=nobody.verifier.vkey)
            .model_dump_json()
            .encode(),
        ):
            producer.send(COSIGNATURES_TOPIC, key=ORIGIN.encode(), value=value).get(timeout=30)
    finally:
        producer.close()
    collected = backcheck(env, "collect-cosignatures", "--quiet", "1")
    assert collected.returncode == 0, collected.stderr
    assert "4 message(s) read: 2 cosignature(s) kept, 0 held already, 2 refused" in (
        collected.stdout
    )
    assert "refused: malformed" in collected.stderr
    assert "no cosignature by a configured witness" in collected.stderr
    letters = every_record(own_kafka_broker.bootstrap, dead_letter_topic(COSIGNATURES_TOPIC))
    assert [dead_letter_of(r.headers).reason.value for r in letters] == ["malformed", "refused"]
    again = backcheck(env, "collect-cosignatures", "--quiet", "1")
    assert "0 message(s) read" in again.stdout  # it reads on from where it stopped
    with CosignatureStore(store) as kept:
        assert kept.count() == 2

    bundle = exported(env, subject, tmp_path / "two.bundle", 2)
    checkpoint = parse_note(str(body(bundle)["checkpoint"]))
    assert checkpoint.text.split("\n")[:2] == [ORIGIN, str(size)]
    assert [sig.name for sig in checkpoint.signatures] == [
        ORIGIN,
        *(w.name for w in witnesses),
    ]
    log_vkey = signer(store).verifier.vkey
    every = _witness_args(witnesses)
    ok = run_verifier(tmp_path, bundle, log_vkey, *every, "--witnesses-required", "2")
    assert ok.returncode == 0, ok.stderr
    assert f"cosigned by {witnesses[0].name}, {witnesses[1].name}" in ok.stdout
    # the export's own disclosure came after the checkpoint: left out of the records
    assert all(record["leaf_index"] < size for record in body(bundle)["records"])  # type: ignore[attr-defined]

    # one witness's cosignature removed: 2 of 2 refused naming it, 1 of 2 accepted
    text = bundle.read_text()
    line = next(sig for sig in checkpoint.signatures if sig.name == witnesses[1].name).line()
    escaped = json.dumps(line, ensure_ascii=False)[1:-1]
    assert escaped in text
    removed = tmp_path / "removed.bundle"
    removed.write_text(text.replace(escaped, "", 1))
    two = run_verifier(tmp_path, removed, log_vkey, *every, "--witnesses-required", "2")
    assert two.returncode == 1
    assert f"1 of the required 2 witness cosignatures ({witnesses[0].name}); missing: " in (
        two.stderr
    )
    assert witnesses[1].name in two.stderr.split("missing: ")[1]
    one = run_verifier(tmp_path, bundle, log_vkey, *every, "--witnesses-required", "1")
    assert one.returncode == 0, one.stderr
    # a byte of a cosignature changed: refused, naming the witness
    b64 = line.split(" ")[-1].strip()
    flipped = b64[:20] + ("A" if b64[20] != "A" else "B") + b64[21:]
    changed = tmp_path / "changed.bundle"
    changed.write_text(text.replace(b64, flipped, 1))
    bad = run_verifier(tmp_path, changed, log_vkey, *every, "--witnesses-required", "1")
    assert bad.returncode == 1
    assert f"the cosignature by {witnesses[1].name} does not verify" in bad.stderr


@pytest.mark.kafka
def test_the_schedulers_checkpoint_duty_publishes_and_collects_what_came_back(
    store: Settings,
    own_kafka_broker: Broker,
    witnesses: list[Signer],
    followers: list[WitnessFollower],
) -> None:
    registered(store, ["Zhou Min"])
    env = env_of(
        store,
        witnesses,
        BACKCHECK_KAFKA_BOOTSTRAP=own_kafka_broker.bootstrap,
        BACKCHECK_SCHEDULE_RETENTION="off",
        BACKCHECK_SCHEDULE_CONSENT_EXPIRY="off",
        BACKCHECK_SCHEDULE_CHECKPOINT="every 1h",
    )
    published = backcheck(env, "publish-checkpoint")
    size = int(published.stdout.split(" size ")[1].split()[0])
    for follower in followers:
        assert follow_until(follower, size) is None
    done = subprocess.run(
        [BACKCHECK, "scheduler", "--once", "--json", "--publish-checkpoints"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert run["counts"]["cosignatures"] == 2, run
    assert run["counts"]["cosignatures_refused"] == 0
    with CosignatureStore(store) as kept:
        lines = kept.newest(ORIGIN, [f"{w.name}+{w.verifier.key_id.hex()}" for w in witnesses], 2)
    assert {c.checkpoint.size for c in lines} == {size}


@pytest.mark.kafka
def test_a_witness_trusting_a_checkpoint_sets_aside_what_came_before_and_alarms_on_a_fork(
    store: Settings, tmp_path: Path, own_kafka_broker: Broker, witnesses: list[Signer]
) -> None:
    registered(store, ["A", "B"])
    log_key = signer(store)
    with open_source(store) as source:
        first, _ = publish_checkpoint(
            LogTree(source), log_key, own_kafka_broker.bootstrap, datetime.now(UTC)
        )
    registered(store, ["C"])
    with open_source(store) as source:
        trusted, _ = publish_checkpoint(
            LogTree(source), log_key, own_kafka_broker.bootstrap, datetime.now(UTC)
        )
    trust_file = tmp_path / "trusted.note"
    trust_file.write_text(str(trusted.note))
    witness = Witness(tmp_path / "w", log_key.verifier, witnesses[0])
    assert witness.trust(trusted.note, str(trust_file)) is None
    follower = WitnessFollower(witness, own_kafka_broker.bootstrap, lambda: datetime.now(UTC))
    try:
        assert follow_until(follower, trusted.checkpoint.size + 1, timeout=8) is None
    finally:
        follower.close()
    # the older one was set aside (not a rollback), the trusted one cosigned
    assert witness.cosigned(first.checkpoint.size) is None
    assert witness.cosigned(trusted.checkpoint.size) is not None
    assert witness.floor is None
    # another history of the trusted size, signed by the same key: an alarm
    other = Settings(database_url=f"sqlite:///{tmp_path / 'fork.sqlite'}", data_dir=tmp_path / "f")
    registered(other, ["X", "Y", "Z"])
    with open_source(other) as source:
        forked = make_checkpoint(LogTree(source), log_key, None)
    assert forked.checkpoint.size == trusted.checkpoint.size
    fork_file = tmp_path / "fork.note"
    fork_file.write_text(str(forked.note))
    key_file = tmp_path / "w0.key"
    make_witness_key(key_file, "witness.test/w0")
    state = tmp_path / "fresh"
    started = [
        *(BACKCHECK, "audit", "witness", "--log-key", log_key.verifier.vkey),
        *("--key", str(key_file), "--state", str(state)),
        *("--bootstrap-servers", own_kafka_broker.bootstrap),
    ]
    fresh = Witness(state, log_key.verifier, witnesses[1])
    assert fresh.trust(trusted.note, "t") is None  # held from now on
    done = subprocess.run(
        [*started, "--trust", str(fork_file)],
        env=store_env(store),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "ALARM: fork: the trusted checkpoint" in done.stderr
    assert (state / "ALARM").exists()


def test_the_embedded_store_takes_a_witness_copy_by_hand_and_refuses_what_it_never_signed(
    store: Settings, tmp_path: Path, witnesses: list[Signer]
) -> None:
    subject, _ = registered(store, ["Zhou Min", "Li Lei"])
    env = env_of(store, witnesses)
    log_key = signer(store)
    with open_source(store) as source:
        head = make_checkpoint(LogTree(source), log_key, None)
    files = []
    for n, witness in enumerate(witnesses):  # each witness's own copy, STATE/cosigned/SIZE.note
        copy = head.note.with_signatures([cosign(head.note, witness, 1_700_000_000 + n)])
        files.append(tmp_path / f"w{n}-{head.checkpoint.size}.note")
        files[-1].write_text(str(copy))
    added = backcheck(env, "add-cosignature", *map(str, files))
    assert added.returncode == 0, added.stderr
    assert added.stdout.count("1 cosignature(s) kept") == 2
    held = backcheck(env, "add-cosignature", str(files[0]))
    assert "0 cosignature(s) kept" in held.stdout
    assert "1 held already" in held.stdout

    # refused, each with its reason: another key's checkpoint, an unknown witness, a bad byte
    stranger = Signer(ORIGIN, Ed25519PrivateKey.generate())
    unsigned = sign(head.checkpoint.text(), stranger)
    foreign = tmp_path / "foreign.note"
    foreign.write_text(str(unsigned.with_signatures([cosign(unsigned, witnesses[0], 1)])))
    unknown = tmp_path / "unknown.note"
    nobody = Signer("witness.test/nobody", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    unknown.write_text(str(head.note.with_signatures([cosign(head.note, nobody, 1)])))
    tampered = tmp_path / "tampered.note"
    good = files[1].read_text()
    last = good.rstrip("\n").rsplit(" ", 1)[1]
    tampered.write_text(
        good.replace(last, last[:30] + ("A" if last[30] != "A" else "B") + last[31:])
    )
    for path, reason in (
        (foreign, "a checkpoint this store's key did not sign"),
        (unknown, "no cosignature by a configured witness (BACKCHECK_WITNESS_KEYS)"),
        (tampered, f"the cosignature by {witnesses[1].name} does not verify"),
    ):
        done = backcheck(env, "add-cosignature", str(path))
        assert done.returncode == 2, done.stdout
        assert f"{path}: refused: {reason}" in done.stderr
    with CosignatureStore(store) as kept:
        assert kept.count() == 2
        with pytest.raises(Exception, match="is append-only"):
            kept.conn.execute(f"DELETE FROM {kept.table}")
    # without witnesses configured, K is refused as asked (exit 2)
    alone = store_env(store) | {"BACKCHECK_LOG_ORIGIN": ORIGIN}
    no = backcheck(alone, "export", "--subject", str(subject), "--witnesses-required", "1")
    assert no.returncode == 2
    said = " ".join(no.stderr.split())
    assert (
        "--witnesses-required 1: no witness is configured (BACKCHECK_WITNESS_KEYS is empty)" in said
    )
    assert "export without --witnesses-required" in said
    assert said.startswith("Cosignature refused (cosignature): ")

    bundle = exported(env, subject, tmp_path / "embedded.bundle", 2)
    log_vkey = log_key.verifier.vkey
    ok = run_verifier(tmp_path, bundle, log_vkey, *_witness_args(witnesses))
    assert ok.returncode == 0, ok.stderr
    assert "cosigned by witness.test/w1, witness.test/w2" in ok.stdout
