"""Checkpoints on Kafka and their witnesses: `audit publish-checkpoint`, `audit witness`,
`audit witness-keygen` (infra/kafka/checkpoints.py, infra/kafka/witness.py,
infra/audit/witness.py)."""

from __future__ import annotations

import base64
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infra.cli.audit import audit
from infra.cli.common import console, err, fail
from infra.terminal import markup_safe

if TYPE_CHECKING:
    from infra.audit.notes import Signer, Verifier
    from infra.audit.witness import Witness

EXIT_ALARM = 1  # a fork or a rollback was found, or an alarm stands in the state directory
PRIVATE = "PRIVATE+KEY+"

_Bootstrap = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap servers (default: BACKCHECK_KAFKA_BOOTSTRAP)"),
]


def read_witness_key(path: Path) -> Signer:
    """A witness key file: `PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 || seed)>`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.audit.checkpoint import CheckpointError
    from infra.audit.notes import COSIGNATURE_V1, NoteError, Signer, b64decode, check_name

    try:
        text = path.read_text()[:1000].strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: the witness key cannot be read ({e})") from None
    parts = text.removeprefix(PRIVATE).split("+", 2)
    try:
        if not text.startswith(PRIVATE) or len(parts) != 3:
            raise NoteError("not PRIVATE+KEY+<name>+<key id>+<key>")
        name, hex_id, encoded = parts
        material = b64decode(encoded, "witness key")
        if len(material) != 33 or material[0] != COSIGNATURE_V1:
            raise NoteError("not an Ed25519 cosigner key (type 0x04)")
        signer = Signer(
            check_name(name, ours=True),
            Ed25519PrivateKey.from_private_bytes(material[1:]),
            COSIGNATURE_V1,
        )
        if signer.verifier.key_id.hex() != hex_id:
            raise NoteError("its key id does not match the key")
    except NoteError as e:
        raise CheckpointError(f"{path}: not a witness key: {e}") from None
    return signer


def read_vkey(text: str) -> Verifier:
    """A verifier key given as itself, or as the file that holds it."""
    from infra.audit.checkpoint import CheckpointError
    from infra.audit.notes import NoteError, parse_vkey

    if "+" not in text:
        try:
            text = Path(text).read_text()[:1000]
        except (OSError, UnicodeDecodeError) as e:
            raise CheckpointError(
                f"--log-key: {text[:200]!r} is no vkey, and no file of one can be read there "
                f"({getattr(e, 'strerror', None) or e}); `audit publish-checkpoint` prints it "
                "and writes it to KEYS_DIR/log.vkey"
            ) from None
    try:
        return parse_vkey(text.strip())
    except NoteError as e:
        raise CheckpointError(f"--log-key: {e}") from None


def make_witness_key(out: Path, name: str) -> Signer:
    """A new cosigning key in `out` (made with mode 600, never over an existing file)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.audit.checkpoint import CheckpointError
    from infra.audit.notes import COSIGNATURE_V1, NoteError, Signer, check_name

    try:
        check_name(name, ours=True)
    except NoteError as e:
        raise CheckpointError(f"--name: {e}") from None
    key = Ed25519PrivateKey.generate()
    signer = Signer(name, key, COSIGNATURE_V1)
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    material = base64.b64encode(bytes([COSIGNATURE_V1]) + seed).decode()
    text = f"{PRIVATE}{name}+{signer.verifier.key_id.hex()}+{material}\n"
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointError(f"{out} exists already; move it away to make a new key") from None
    except OSError as e:
        raise CheckpointError(f"{out}: cannot be made: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return signer


@audit.command("witness-keygen")
def witness_keygen(
    out: Annotated[Path, typer.Option(help="the key file to make (refused if it exists)")],
    name: Annotated[str, typer.Option(help="the witness's name, e.g. witness.example.com/w1")],
) -> None:
    """Make a witness's Ed25519 cosigning key (mode 600) and print its verifier key (vkey),
    which a verifier passes as `--witness`."""
    try:
        signer = make_witness_key(out, name)
    except Exception as e:
        fail(e)
    console.print(f"witness key: {markup_safe(out)}  (keep it secret; mode 600)")
    console.print(markup_safe(signer.verifier.vkey), soft_wrap=True)


@audit.command("publish-checkpoint")
def publish_checkpoint(bootstrap_servers: _Bootstrap = None) -> None:
    """Sign the stored tree's head as a C2SP checkpoint (origin BACKCHECK_LOG_ORIGIN) and
    publish it on backcheck.checkpoints.v1 with its consistency proof from the checkpoint
    published last (not again when that one is the same); prints the log's vkey (also kept
    in the keys directory as log.vkey, for witnesses)."""
    from infra.audit.log_tree import LogTree
    from infra.audit.sources import open_source
    from infra.config import Settings
    from infra.kafka import checkpoints

    try:
        settings = Settings.load()
        signer = checkpoints.log_signer(settings)
        checkpoints.keep_log_vkey(settings, signer)
        with open_source(settings) as source:
            published, sent = checkpoints.publish_checkpoint(
                LogTree(source),
                signer,
                bootstrap_servers or settings.kafka_bootstrap,
                datetime.now(UTC),
            )
    except Exception as e:
        fail(e)
    checkpoint = published.checkpoint
    said = "published" if sent else "already published"
    console.print(
        f"{said}: {markup_safe(checkpoint.origin)} size {checkpoint.size} root "
        f"{checkpoint.root_hash.hex()[:16]}… (proof from size {published.old_size})"
    )
    console.print(f"log key: {markup_safe(signer.verifier.vkey)}", soft_wrap=True)


def _trust(held: Witness, path: Path) -> None:
    """The witness starts from the trusted checkpoint; one contradicting what it holds is an
    alarm (ALARM file, exit 1)."""
    from infra.audit.log_checkpoint import read_note

    note, _ = read_note(path)
    judgement = held.trust(note, str(path))
    if judgement is not None:
        held.raise_alarm(judgement, f"--trust {path}", datetime.now(UTC))
        err.print(f"ALARM: {markup_safe(judgement.detail)}", soft_wrap=True)
        raise typer.Exit(EXIT_ALARM)


@audit.command("witness")
def witness(
    log_key: Annotated[str, typer.Option(help="the log's verifier key (vkey), or a file of it")],
    key: Annotated[Path, typer.Option(help="the witness key file (audit witness-keygen)")],
    state: Annotated[Path, typer.Option(help="the witness's state directory")],
    make_key: Annotated[
        str | None,
        typer.Option(help="make the key file if it is missing, the witness named so"),
    ] = None,
    bootstrap_servers: _Bootstrap = None,
    health_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="serve /healthz, /readyz and /metrics here"),
    ] = None,
    trust: Annotated[
        Path | None,
        typer.Option(
            help="a checkpoint note of the log to start from instead of the first the topic "
            "shows (one that does not extend it is an alarm, as a fork)",
            metavar="CHECKPOINT_FILE",
        ),
    ] = None,
) -> None:
    """Follow backcheck.checkpoints.v1: cosign each checkpoint that extends the one held (with
    --trust, starting from that checkpoint) and publish it on
    backcheck.checkpoint-cosignatures.v1. On a fork or a rollback: dead letter,
    metric, one error line, an ALARM file in --state, exit 1; it then will not start (exit 1)
    until an operator removes the ALARM file. Runs until SIGINT/SIGTERM."""
    from infra.audit.witness import Witness
    from infra.config import Settings
    from infra.kafka.shutdown import exit_at_deadline
    from infra.kafka.witness import WitnessFollower
    from infra.ops.health import serve_health
    from infra.ops.logs import configure

    stop = threading.Event()

    def stopping(*_: object) -> None:
        stop.set()
        exit_at_deadline("the witness")

    configure()
    try:
        settings = Settings.load()
        if make_key is not None and not key.exists():
            make_witness_key(key, make_key)
        held = Witness(state, read_vkey(log_key), read_witness_key(key))
        standing = held.alarm_raised()
        if standing is not None:
            err.print(
                f"ALARM standing in {markup_safe(state)}: {markup_safe(standing[:500])}; "
                f"examine the log, then remove {markup_safe(state / 'ALARM')} to go on",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_ALARM)
        if trust is not None:
            _trust(held, trust)
        follower = WitnessFollower(
            held, bootstrap_servers or settings.kafka_bootstrap, lambda: datetime.now(UTC)
        )
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, stopping)
        health = serve_health(health_port, {"alarm": held.alarm_raised}, settings.health_host)
        try:
            found = follower.follow(stop.is_set)
        finally:
            follower.close()
            if health is not None:
                health.close()
    except typer.Exit:
        raise
    except Exception as e:
        fail(e)
    if found is not None:
        raise typer.Exit(EXIT_ALARM)
