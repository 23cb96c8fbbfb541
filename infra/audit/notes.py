"""Signed notes, checkpoints and witness cosignatures in the C2SP formats.

- c2sp.org/signed-note: a UTF-8 text ending in a newline, a blank line, then one line per
  signature, `— <key name> base64(4-byte key id || signature)`. An Ed25519 key's id is
  SHA-256(name || 0x0A || 0x01 || public key)[:4]; a verifier key ("vkey") is written
  `name+hex(key id)+base64(type || public key)`.
- c2sp.org/tlog-checkpoint: the note text of a log's tree head: origin, tree size in decimal,
  base64 root hash, then optional extension lines.
- c2sp.org/tlog-cosignature: a witness's signature line on a checkpoint (type 0x04), whose
  payload is an 8-byte big-endian POSIX time and an Ed25519 signature over
  `cosignature/v1\\ntime T\\n` followed by the checkpoint's text.

This module is the project's owner of these formats (it writes and reads them). The
independent verifier (`verify_bundle.py`) reads them again on its own, on purpose: it must
run without this project, and the two agreeing is a test.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014 "
MAX_NOTE_BYTES = 1 << 20
MAX_BUNDLE_BYTES = 64 << 20  # an evidence bundle is a note too, of up to 100,000 records
MAX_SIGNATURES = 64
MAX_NAME = 256
MAX_TIMESTAMP = 2**63 - 1
_TIME = struct.Struct(">Q")


class NoteError(ValueError):
    """A note, checkpoint, key or signature is malformed or does not verify; the message says
    which part and why."""


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def check_name(name: str, *, ours: bool = False) -> str:
    """A key name as the format allows it: 1 to 256 characters, no space, no plus. Names we
    give our own keys must also be printable."""
    if not name or len(name) > MAX_NAME:
        raise NoteError(f"key name must be 1 to {MAX_NAME} characters")
    if "+" in name or any(c.isspace() for c in name) or (ours and not name.isprintable()):
        raise NoteError(f"key name {name!a} has a space, a plus or an unprintable character")
    return name


def b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4), in its one canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what}: not base64") from None
    if base64.b64encode(raw).decode() != text:
        raise NoteError(f"{what}: not canonical base64")
    return raw


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    payload: bytes  # what follows the key id: an Ed25519 signature, or time || signature

    def line(self) -> str:
        return f"{DASH}{self.name} {base64.b64encode(self.key_id + self.payload).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: str  # ends in a newline
    signatures: tuple[Signature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, added: Iterable[Signature]) -> Note:
        return Note(self.text, self.signatures + tuple(added))


def parse_note(data: str | bytes, limit: int = MAX_NOTE_BYTES) -> Note:
    """A note of at most `limit` bytes (a checkpoint's 1 MiB; an evidence bundle's 64 MiB)."""
    if isinstance(data, bytes):
        if len(data) > limit:
            raise NoteError(f"note is over {limit} bytes")
        try:
            data = data.decode()
        except UnicodeDecodeError:
            raise NoteError("note is not UTF-8") from None
    if len(data.encode()) > limit:
        raise NoteError(f"note is over {limit} bytes")
    if any(ord(c) < 0x20 and c != "\n" for c in data):
        raise NoteError("note has a control character other than newline")
    split = data.rfind("\n\n")
    if split < 0 or not data.endswith("\n"):
        raise NoteError("note has no blank line before its signatures, or no final newline")
    text, lines = data[: split + 1], data[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has over {MAX_SIGNATURES} signatures")
    signatures = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(DASH):
            raise NoteError(f"signature line {n} does not start with an em dash and a space")
        name, space, encoded = line[len(DASH) :].partition(" ")
        if not space:
            raise NoteError(f"signature line {n} has no space between key name and signature")
        raw = b64decode(encoded, f"signature line {n}")
        if len(raw) < 5:
            raise NoteError(f"signature line {n} is too short for a key id and a signature")
        signatures.append(Signature(check_name(name), raw[:4], raw[4:]))
    return Note(text, tuple(signatures))


@dataclass(frozen=True)
class Verifier:
    """A trusted key: its name, type (0x01 note signer, 0x04 cosigner) and public key."""

    name: str
    signature_type: int
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.signature_type, _raw(self.public_key))

    @property
    def vkey(self) -> str:
        material = bytes([self.signature_type]) + _raw(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(material).decode()}"

    def matches(self, signature: Signature) -> bool:
        return signature.name == self.name and signature.key_id == self.key_id


def parse_vkey(text: str) -> Verifier:
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or len(text) > MAX_NAME + 100:
        raise NoteError("verifier key must be <name>+<hex key id>+<base64 key>")
    name, hex_id, encoded = parts
    check_name(name, ours=True)
    material = b64decode(encoded, "verifier key")
    if len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError("verifier key is not an Ed25519 key (type 0x01) or cosigner (0x04)")
    verifier = Verifier(name, material[0], Ed25519PublicKey.from_public_bytes(material[1:]))
    if hex_id != verifier.key_id.hex():
        raise NoteError(f"verifier key {name}: key id {hex_id} does not match the key")
    return verifier


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey
    signature_type: int = ED25519

    @property
    def verifier(self) -> Verifier:
        name = check_name(self.name, ours=True)
        return Verifier(name, self.signature_type, self.private_key.public_key())


def sign(text: str, signer: Signer, limit: int = MAX_NOTE_BYTES) -> Note:
    """A note of `text` (which must end in a newline) signed by an Ed25519 note key; refused
    over `limit` bytes."""
    if not text.endswith("\n"):
        raise NoteError("note text must be non-empty and end in a newline")
    verifier = signer.verifier
    payload = signer.private_key.sign(text.encode())
    note = Note(text, (Signature(verifier.name, verifier.key_id, payload),))
    parse_note(str(note), limit)  # refuses what the format cannot carry (control characters, size)
    return note


def verify(note: Note, verifiers: Iterable[Verifier]) -> list[Verifier]:
    """The trusted note keys (type 0x01) whose signatures verify. A signature from a trusted
    key that fails rejects the note; so does a note no trusted key signed."""
    good = []
    for verifier in verifiers:
        for signature in note.signatures:
            if verifier.signature_type != ED25519 or not verifier.matches(signature):
                continue
            try:
                verifier.public_key.verify(signature.payload, note.text.encode())
            except InvalidSignature:
                raise NoteError(f"the signature by {verifier.name} does not verify") from None
            good.append(verifier)
    if not good:
        raise NoteError("no trusted key signed the note")
    return good


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        root = base64.b64encode(self.root_hash).decode()
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("checkpoint text needs origin, size and root hash lines")
    origin, size, root, *extensions = lines[:-1]
    if not origin or any(not line for line in extensions):
        raise NoteError("checkpoint has an empty origin or extension line")
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError(f"checkpoint tree size {size!r} is not a decimal without leading zeros")
    root_hash = b64decode(root, "checkpoint root hash")
    if len(root_hash) != 32:
        raise NoteError("checkpoint root hash is not 32 bytes")
    if int(size) >= 2**64:
        raise NoteError("checkpoint tree size is over 2^64 - 1")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(note: Note, signer: Signer, timestamp: int) -> Signature:
    """A witness's cosignature line on a checkpoint note (the witness checks consistency
    before it calls this)."""
    if signer.signature_type != COSIGNATURE_V1:
        raise NoteError("a cosigner key has signature type 0x04")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError("cosignature time is out of range")
    parse_checkpoint(note.text)
    signature = signer.private_key.sign(cosignature_message(note.text, timestamp))
    verifier = signer.verifier
    return Signature(verifier.name, verifier.key_id, _TIME.pack(timestamp) + signature)


def verify_cosignature(note: Note, verifier: Verifier) -> int | None:
    """The time of `verifier`'s cosignature on the checkpoint note, None if it has none; a
    cosignature by that key that fails to verify is an error."""
    if verifier.signature_type != COSIGNATURE_V1:
        raise NoteError(f"{verifier.name} is not a cosigner key (type 0x04)")
    for signature in note.signatures:
        if not verifier.matches(signature):
            continue
        if len(signature.payload) != 8 + 64:
            raise NoteError(f"the cosignature by {verifier.name} is not time and signature")
        (timestamp,) = _TIME.unpack(signature.payload[:8])
        if timestamp > MAX_TIMESTAMP:
            raise NoteError(f"the cosignature by {verifier.name} has a time over 2^63 - 1")
        try:
            verifier.public_key.verify(
                signature.payload[8:], cosignature_message(note.text, timestamp)
            )
        except InvalidSignature:
            raise NoteError(f"the cosignature by {verifier.name} does not verify") from None
        return int(timestamp)
    return None
