"""Witnesses on a real broker (Tansu) and real stores (SQLite, PostgreSQL): the log's signed
checkpoints published on backcheck.checkpoints.v1 with their consistency proofs, a witness
that cosigns each one extending the last it holds, and catches a forked or rolled-back log
(dead letter with the reason, alarm metric, ALARM file, exit 1, no cosignature after)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaProducer
from prometheus_client import REGISTRY

from infra.audit.checkpoint import load_private_key
from infra.audit.log_tree import LogTree
from infra.audit.notes import (
    COSIGNATURE_V1,
    Signer,
    Verifier,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify,
    verify_cosignature,
)
from infra.audit.sources import open_source
from infra.audit.trail import key_pair
from infra.audit.witness import ALARM, Finding, Judgement, Witness
from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.checkpoints import (
    CHECKPOINTS_TOPIC,
    COSIGNATURES_TOPIC,
    CosignedCheckpoint,
    decode,
    publish_checkpoint,
)
from infra.kafka.cloudevent import dead_letter_of
from infra.kafka.topics import dead_letter_topic
from infra.kafka.witness import WitnessFollower
from tests import story as s
from tests.integration.test_contract_messages import Contract
from tests.kafka import BACKCHECK, Broker, every_record, store_env

pytestmark = pytest.mark.kafka
ORIGIN = "backcheck.test/log"
DLQ = dead_letter_topic(CHECKPOINTS_TOPIC)


@pytest.fixture
def log_key() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def witness_key() -> Signer:
    return Signer("witness.test/w1", Ed25519PrivateKey.generate(), COSIGNATURE_V1)


def grow(settings: Settings, n: int, name: str = "Person") -> None:
    app = build_app(settings)
    try:
        for i in range(n):
            s.register(app, f"{name} {i}")
    finally:
        app.close()


def publish(settings: Settings, key: Signer, broker: Broker) -> tuple[int, bool]:
    with open_source(settings) as source:
        published, sent = publish_checkpoint(
            LogTree(source), key, broker.bootstrap, datetime.now(UTC)
        )
    return published.checkpoint.size, sent


def follow_until(follower: WitnessFollower, done: int, timeout: float = 30) -> Judgement | None:
    """Runs the witness until it holds a checkpoint of size `done` (or an alarm, or time)."""
    deadline = time.monotonic() + timeout

    def stop() -> bool:
        held = follower.witness.held_checkpoint
        return (held is not None and held.size >= done) or time.monotonic() > deadline

    return follower.follow(stop)


def cosignatures(broker: Broker, witness: Verifier) -> list[tuple[int, int]]:
    """(size, time) of each cosigned checkpoint on the cosignatures topic, its
    cosignature checked."""
    found = []
    for record in every_record(broker.bootstrap, COSIGNATURES_TOPIC, quiet=1.0):
        message = CosignedCheckpoint.model_validate_json(record.value)
        assert message.witness == witness.vkey
        note = parse_note(message.checkpoint)
        at = verify_cosignature(note, witness)
        assert at is not None
        found.append((parse_checkpoint(note.text).size, at))
    return found


def metric(name: str, finding: str) -> float:
    return REGISTRY.get_sample_value(name, {"finding": finding}) or 0.0


@pytest.fixture
def follower(
    tmp_path: Path, own_kafka_broker: Broker, log_key: Signer, witness_key: Signer
) -> Iterator[WitnessFollower]:
    witness = Witness(tmp_path / "witness", log_key.verifier, witness_key)
    made = WitnessFollower(witness, own_kafka_broker.bootstrap, lambda: datetime.now(UTC))
    yield made
    made.close()


def test_a_witness_follows_a_growing_log_and_cosigns_each_checkpoint(
    settings: Settings,
    own_kafka_broker: Broker,
    follower: WitnessFollower,
    log_key: Signer,
    witness_key: Signer,
) -> None:
    sizes = []
    for n in (2, 3, 1):
        grow(settings, n)
        size, sent = publish(settings, log_key, own_kafka_broker)
        assert sent
        sizes.append(size)
    assert publish(settings, log_key, own_kafka_broker) == (sizes[-1], False)  # unchanged
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == 3
    before = metric("backcheck_witness_checkpoints_total", "accepted")
    assert follow_until(follower, sizes[-1]) is None
    assert metric("backcheck_witness_checkpoints_total", "accepted") - before == 3
    found = cosignatures(own_kafka_broker, witness_key.verifier)
    assert [size for size, _ in found] == sizes
    # its own copy of each, the log's signature and its cosignature on each
    for size in sizes:
        kept = follower.witness.cosigned(size)
        assert kept is not None
        assert verify(kept, [log_key.verifier]) == [log_key.verifier]
        assert verify_cosignature(kept, witness_key.verifier) is not None
    assert every_record(own_kafka_broker.bootstrap, DLQ, quiet=0.5) == []
    # every message on both topics is valid against the published contract
    contract = Contract()
    for topic in (CHECKPOINTS_TOPIC, COSIGNATURES_TOPIC):
        for record in every_record(own_kafka_broker.bootstrap, topic, quiet=0.5):
            headers = {name: raw.decode() for name, raw in record.headers}
            for part, value in (("headers", headers), ("payload", json.loads(record.value))):
                errors = list(contract.validator(headers["ce_type"], part).iter_errors(value))
                assert not errors, f"{topic} {part}: {errors[:3]}"
            assert record.key == ORIGIN.encode()


def test_a_forked_log_is_caught(
    settings: Settings,
    tmp_path: Path,
    own_kafka_broker: Broker,
    follower: WitnessFollower,
    log_key: Signer,
    witness_key: Signer,
) -> None:
    grow(settings, 3)
    held, _ = publish(settings, log_key, own_kafka_broker)
    assert follow_until(follower, held) is None
    # a second store, signed with the same key, whose history diverges from the first record
    other = Settings(database_url=f"sqlite:///{tmp_path / 'fork.sqlite'}", data_dir=tmp_path / "f")
    grow(other, 5, "Someone else")
    forked, _ = publish(other, log_key, own_kafka_broker)
    assert forked > held
    alarms = metric("backcheck_witness_alarms_total", "fork")
    judgement = follow_until(follower, forked)
    assert judgement is not None
    assert judgement.finding is Finding.FORK
    assert f"consistency proof from the held size {held} to size {forked}" in judgement.detail
    assert metric("backcheck_witness_alarms_total", "fork") - alarms == 1
    letters = every_record(own_kafka_broker.bootstrap, DLQ, quiet=0.5)
    assert [dead_letter_of(r.headers).reason.value for r in letters] == ["fork"]
    assert "does not verify" in dead_letter_of(letters[0].headers).error
    assert follower.witness.held_checkpoint is not None
    assert follower.witness.held_checkpoint.size == held  # the fork is not held
    assert [size for size, _ in cosignatures(own_kafka_broker, witness_key.verifier)] == [held]
    alarm = json.loads((follower.witness.directory / ALARM).read_text())
    assert alarm["finding"] == "fork"


def test_the_same_size_with_another_root_is_a_fork(
    settings: Settings,
    tmp_path: Path,
    own_kafka_broker: Broker,
    follower: WitnessFollower,
    log_key: Signer,
) -> None:
    grow(settings, 3)
    other = Settings(database_url=f"sqlite:///{tmp_path / 'fork.sqlite'}", data_dir=tmp_path / "f")
    grow(other, 3, "Someone else")
    with open_source(settings) as a, open_source(other) as b:
        assert LogTree(a).size == LogTree(b).size
    held, _ = publish(settings, log_key, own_kafka_broker)
    publish(other, log_key, own_kafka_broker)  # same size, other root: published (not equal)
    judgement = follow_until(follower, held + 1)
    assert judgement is not None
    assert judgement.finding is Finding.FORK
    assert judgement.detail.startswith(f"fork: size {held} has root")


def test_a_rolled_back_log_is_caught_and_the_witness_exits_1_and_stays_down(
    settings: Settings, tmp_path: Path, own_kafka_broker: Broker
) -> None:
    """As deployed: `backcheck audit` processes; an older checkpoint republished after a
    newer one; the witness stopped, kept down by its alarm, then let go on by an operator."""
    key_pair(settings.keys_dir)
    env = store_env(settings) | {"BACKCHECK_LOG_ORIGIN": ORIGIN}
    key_file, state = tmp_path / "witness.key", tmp_path / "state"
    made = run(env, "witness-keygen", "--out", str(key_file), "--name", "w.test/1")
    verifier = parse_vkey(made.stdout.strip().splitlines()[-1])
    assert verifier.signature_type == COSIGNATURE_V1
    sizes, log_vkey = [], ""
    for n in (2, 2):
        grow(settings, n)
        said = run(env, "publish-checkpoint", "--bootstrap-servers", own_kafka_broker.bootstrap)
        sizes.append(int(said.stdout.split(" size ")[1].split()[0]))
        log_vkey = said.stdout.split("log key: ")[1].split()[0]
    witness = [
        *(BACKCHECK, "audit", "witness", "--log-key", log_vkey, "--key", str(key_file)),
        *("--state", str(state), "--bootstrap-servers", own_kafka_broker.bootstrap),
    ]
    older = every_record(own_kafka_broker.bootstrap, CHECKPOINTS_TOPIC, quiet=0.5)[0]
    producer = KafkaProducer(bootstrap_servers=own_kafka_broker.bootstrap)
    try:
        producer.send(
            CHECKPOINTS_TOPIC, key=older.key, value=older.value, headers=older.headers
        ).get(timeout=30)
    finally:
        producer.close()
    done = subprocess.run(witness, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"rollback: size {sizes[0]} is smaller than the size {sizes[1]} held" in done.stderr
    assert "Traceback" not in done.stderr
    letters = every_record(own_kafka_broker.bootstrap, DLQ, quiet=0.5)
    assert [dead_letter_of(r.headers).reason.value for r in letters] == ["rollback"]
    assert [size for size, _ in cosignatures(own_kafka_broker, verifier)] == sizes
    # it stays down until an operator acts, and keeps what it held
    again = subprocess.run(witness, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1
    assert "ALARM standing in" in again.stderr
    assert "remove" in again.stderr
    (state / ALARM).unlink()
    grow(settings, 1)
    said = run(env, "publish-checkpoint", "--bootstrap-servers", own_kafka_broker.bootstrap)
    assert f"(proof from size {sizes[1]})" in said.stdout  # not from the replayed older one
    sizes.append(int(said.stdout.split(" size ")[1].split()[0]))
    resumed = subprocess.Popen(witness, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(cosignatures(own_kafka_broker, verifier)) == 3:
                break
    finally:
        resumed.terminate()
        _, stderr = resumed.communicate(timeout=30)
    assert [z for z, _ in cosignatures(own_kafka_broker, verifier)] == sizes, stderr
    assert resumed.returncode == 0, stderr


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [BACKCHECK, "audit", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


def test_a_checkpoint_signed_by_an_unknown_key_is_refused_and_a_malformed_one_set_aside(
    settings: Settings,
    own_kafka_broker: Broker,
    follower: WitnessFollower,
    log_key: Signer,
    witness_key: Signer,
) -> None:
    grow(settings, 2)
    stranger = Signer(ORIGIN, Ed25519PrivateKey.generate())
    publish(settings, stranger, own_kafka_broker)
    producer = KafkaProducer(bootstrap_servers=own_kafka_broker.bootstrap)
    producer.send(CHECKPOINTS_TOPIC, key=ORIGIN.encode(), value=b"{not json").get(timeout=30)
    producer.close()
    grow(settings, 1)
    size, _ = publish(settings, log_key, own_kafka_broker)
    # the log's own checkpoint after them: the publisher proves from none of them (not
    # signed by its key); the witness holds nothing yet, so takes it on trust
    assert follow_until(follower, size) is None
    letters = every_record(own_kafka_broker.bootstrap, DLQ, quiet=0.5)
    reasons = [dead_letter_of(r.headers) for r in letters]
    assert [r.reason.value for r in reasons] == ["bad-signature", "malformed"]
    assert "no trusted key signed the note" in reasons[0].error
    assert [z for z, _ in cosignatures(own_kafka_broker, witness_key.verifier)] == [size]


def test_a_restarted_witness_keeps_what_it_held(
    settings: Settings,
    tmp_path: Path,
    own_kafka_broker: Broker,
    log_key: Signer,
    witness_key: Signer,
) -> None:
    grow(settings, 2)
    first, _ = publish(settings, log_key, own_kafka_broker)
    directory = tmp_path / "witness"
    one = WitnessFollower(
        Witness(directory, log_key.verifier, witness_key),
        own_kafka_broker.bootstrap,
        lambda: datetime.now(UTC),
    )
    assert follow_until(one, first) is None
    one.close()
    grow(settings, 2)
    second, _ = publish(settings, log_key, own_kafka_broker)
    restarted = Witness(directory, log_key.verifier, witness_key)
    held = restarted.held_checkpoint
    assert held is not None
    assert held.size == first
    two = WitnessFollower(restarted, own_kafka_broker.bootstrap, lambda: datetime.now(UTC))
    try:
        assert follow_until(two, second) is None
    finally:
        two.close()
    # read on from where it was: the first checkpoint is not judged twice, the second extends it
    assert [z for z, _ in cosignatures(own_kafka_broker, witness_key.verifier)] == [first, second]
    assert json.loads((directory / "state.json").read_text())["offsets"] == {"0": 2}


def test_the_scheduler_publishes_checkpoints_for_the_witnesses(
    settings: Settings, own_kafka_broker: Broker
) -> None:
    """`scheduler --once --publish-checkpoints`: the checkpoint duty's run publishes the tree
    head, signed by the store's checkpoint key as the log's origin."""
    key_pair(settings.keys_dir)
    grow(settings, 2)
    env = store_env(settings) | {
        "BACKCHECK_LOG_ORIGIN": ORIGIN,
        "BACKCHECK_KAFKA_BOOTSTRAP": own_kafka_broker.bootstrap,
        "BACKCHECK_SCHEDULE_RETENTION": "off",
        "BACKCHECK_SCHEDULE_CONSENT_EXPIRY": "off",
        "BACKCHECK_SCHEDULE_CHECKPOINT": "every 1h",
    }
    done = subprocess.run(
        [BACKCHECK, "scheduler", "--once", "--json", "--publish-checkpoints"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert run["status"] == "ran", run
    assert run["counts"]["published"] == 1
    (record,) = every_record(own_kafka_broker.bootstrap, CHECKPOINTS_TOPIC, quiet=0.5)
    assert record.key == ORIGIN.encode()
    published = decode(record.value)
    size = run["counts"]["tree_size"]
    assert published.checkpoint.size == size
    with open_source(settings) as source:  # the run's own events came after it
        assert published.checkpoint.root_hash == LogTree(source).tree_head(size).root
    key = load_private_key(settings.signing_key_path)
    assert verify(published.note, [Signer(ORIGIN, key).verifier])
