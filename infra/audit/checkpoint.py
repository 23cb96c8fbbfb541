"""Signed checkpoints of the chain head, for an outside witness to keep.

A checkpoint is a small JSON document: position, head hash, time, and an Ed25519 signature by
the store's checkpoint key. Given to a witness (a file today, a Kafka topic later), it pins the
history up to that position: rewriting anything before it — even with a recomputed chain — or
cutting the log short is caught by `backcheck audit verify --checkpoint FILE`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.audit.chain import Head
from infra.files import write_whole

KIND = "backcheck.checkpoint.v1"


class CheckpointError(ValueError):
    """A checkpoint or key file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Checkpoint:
    position: int
    hash: str
    time: str
    key_id: str
    signature: str
    type: str = KIND

    def message(self) -> bytes:
        return f"{KIND}\n{self.position}\n{self.hash}\n{self.time}\n{self.key_id}".encode()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keys(directory: Path, *, exist_ok: bool = False) -> tuple[Path, Path]:
    """A new Ed25519 key pair: the private key readable by the owner only.

    Safe against processes or threads making the key at once, and against a kill at any point:
    the key is written aside (under a name this call's alone) and linked into place, which
    fails if another linked theirs first (then theirs is the key; with `exist_ok` that is no
    error). The public key is derived from whichever private key is in place, and written by
    rename."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / "checkpoint-signing.key"
    public_path = directory / "checkpoint-signing.pub"
    if private_path.exists() and not exist_ok:
        raise CheckpointError(f"{private_path} exists already; move it away to make a new key")
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        write_whole(private_path, pem, replace=False)  # mode 600
    except FileExistsError:
        if not exist_ok:
            raise CheckpointError(
                f"{private_path} exists already; move it away to make a new key"
            ) from None
    public = load_private_key(private_path).public_key()
    write_whole(
        public_path,
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise CheckpointError(
            f"no signing key at {path}; create one with `backcheck audit keygen`"
        ) from None
    except OSError as e:  # a directory, not permitted
        raise CheckpointError(f"{path}: the signing key cannot be read: {e.strerror}") from None
    except ValueError as e:
        raise CheckpointError(f"{path}: not a PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"no public key at {path}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: the public key cannot be read: {e.strerror}") from None
    except ValueError as e:
        raise CheckpointError(f"{path}: not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path}: not an Ed25519 key")
    return key


def sign(head: Head, at: datetime, key: Ed25519PrivateKey) -> Checkpoint:
    unsigned = Checkpoint(
        head.position, head.hash.hex(), at.isoformat(), key_id(key.public_key()), ""
    )
    signature = base64.b64encode(key.sign(unsigned.message())).decode()
    return Checkpoint(unsigned.position, unsigned.hash, unsigned.time, unsigned.key_id, signature)


def parse(text: str, source: str) -> Checkpoint:
    try:
        data = json.loads(text)
        if data.get("type") != KIND:
            raise CheckpointError(f"{source}: not a {KIND} document")
        return Checkpoint(
            position=int(data["position"]),
            hash=str(data["hash"]),
            time=str(data["time"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{source}: malformed checkpoint ({e})") from None


def read(path: Path) -> Checkpoint:
    try:
        return parse(path.read_text(), str(path))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file {path}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: the checkpoint cannot be read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not a checkpoint (not UTF-8 text)") from None


def check_signature(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> str | None:
    """None when the signature is good; otherwise what is wrong."""
    if checkpoint.key_id != key_id(public_key):
        return f"signed by key {checkpoint.key_id}, not by the trusted key {key_id(public_key)}"
    try:
        public_key.verify(base64.b64decode(checkpoint.signature), checkpoint.message())
    except (InvalidSignature, ValueError):
        return "the signature does not match the checkpoint's contents"
    return None


class FileKeySigner:
    """Signs erasure receipts with the checkpoint key; creates it in the default place if the
    store has none yet (an explicitly configured key must exist)."""

    def __init__(self, path: Path, *, create_if_missing: bool) -> None:
        self.path = path
        self.create_if_missing = create_if_missing
        self._key: Ed25519PrivateKey | None = None

    def sign(self, statement: bytes) -> tuple[str, str]:
        if self._key is None:
            if not self.path.exists() and self.create_if_missing:
                generate_keys(self.path.parent, exist_ok=True)
            self._key = load_private_key(self.path)
        return key_id(self._key.public_key()), base64.b64encode(self._key.sign(statement)).decode()
