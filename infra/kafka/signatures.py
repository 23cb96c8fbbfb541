"""A command's signature, and the sender keys that make it: the sender's side of signed commands,
and the one check of a signature the intake makes (infra/kafka/senders.py checks the rest).

Two headers beside the CloudEvent's own:

    ce_keyid      the sender key's id: the first 16 bytes of the SHA-256 of the raw 32-byte
                  Ed25519 public key, in hex (`domain.principal.sender_key_id`)
    ce_signature  base64 (standard alphabet, padded) of the 64-byte Ed25519 signature of

    netstring("backcheck-command-signature-v1") + netstring(ce_id) + netstring(ce_source)
      + netstring(ce_type) + netstring(ce_time) + netstring(value)

where netstring(b) is `<len(b) in decimal>:<b>,` over the header values' bytes exactly as sent
(an absent ce_time is the empty string) and the message value as sent. Length prefixes make the
string unambiguous whatever bytes a field holds; the leading label keeps a signature made for
anything else from passing as one of these. The Kafka key is not signed: it only chooses the
partition (a command names its candidate in its body).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_BYTES, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from domain.principal import sender_key_id
from infra.inputs import InputError
from infra.kafka.cloudevent import Headers

KEYID = "ce_keyid"
SIGNATURE = "ce_signature"
LABEL = b"backcheck-command-signature-v1"
SIGNED_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_time")


_LABELLED = b"%d:%s," % (len(LABEL), LABEL)


def signed_bytes(found: Mapping[str, bytes], value: bytes) -> bytes:
    """The byte string a command's signature is over (the module's docstring): `found` holds
    the first value of each header by name. Written out as one format, not a join of
    netstrings: both sides build it once a command, and this takes a third of the time."""
    get = found.get  # in SIGNED_HEADERS' order
    i, s, t, m = get("ce_id", b""), get("ce_source", b""), get("ce_type", b""), get("ce_time", b"")
    return b"%s%d:%s,%d:%s,%d:%s,%d:%s,%d:%s," % (
        _LABELLED,
        len(i),
        i,
        len(s),
        s,
        len(t),
        t,
        len(m),
        m,
        len(value),
        value,
    )


def verifies(key: VerifyKey, signature: bytes, data: bytes) -> bool:
    """Whether `signature` is `key`'s Ed25519 signature of `data` (RFC 8032, as signed with
    `cryptography`). Checked with libsodium (PyNaCl), which takes under half the time
    OpenSSL takes through `cryptography` for one verification: it is the intake's one cost
    per signed command (decision record 0035). A signature of another length, a key that is
    no curve point, or one of small order (never a key `new_key_pair` makes) fail alike."""
    try:
        key.verify(data, signature)
    except (BadSignatureError, ValueError):  # ValueError: not 64 bytes
        return False
    return True


# --- keys and signing: the sender's side ------------------------------------------------------


class SenderKeyError(InputError):
    """A key file that holds no Ed25519 key of the kind expected."""


def new_key_pair() -> tuple[bytes, str]:
    """A fresh sender key: the private key as PEM (PKCS #8, unencrypted) and the public key
    as base64 of its 32 raw bytes."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_text(private.public_key())


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_of(path: Path) -> str:
    """The public key in `path` (PEM, or base64 of the 32 raw bytes) as base64 raw bytes."""
    data = _read(path, "public key")
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as e:
            raise SenderKeyError(f"{path}: not a PEM public key ({e})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SenderKeyError(f"{path}: a PEM public key, but not Ed25519")
        return public_text(key)
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SenderKeyError(
            f"{path}: neither a PEM public key nor base64 of an Ed25519 key's 32 raw bytes"
        )
    return base64.b64encode(raw).decode()


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SenderKeyError(f"cannot read the {what} {path}: {e.strerror}") from None
    if len(data) > 16_384:
        raise SenderKeyError(f"{path}: larger than any {what} file")
    return data


class CommandSigner:
    """Signs commands with a sender's private key.

    The key is read with `cryptography` (PEM), and signs with libsodium (PyNaCl): Ed25519
    signatures are deterministic (RFC 8032), so both give the same bytes, and libsodium's
    takes about 20 us where OpenSSL's takes 35 (decision record 0035, as for verifying)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.key_id = sender_key_id(public_text(private.public_key()))
        # libsodium's 64-byte secret key (seed and public key), signed with directly:
        # PyNaCl's SigningKey.sign also builds a SignedMessage of three copies, unused here
        self._secret = crypto_sign_seed_keypair(private.private_bytes_raw())[1]

    @classmethod
    def from_file(cls, path: Path) -> CommandSigner:
        """The private key in `path`: PEM (PKCS #8, unencrypted), as `keygen` writes it."""
        try:
            key = serialization.load_pem_private_key(_read(path, "private key"), password=None)
        except (ValueError, TypeError) as e:
            raise SenderKeyError(f"{path}: not an unencrypted PEM private key ({e})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SenderKeyError(f"{path}: a private key, but not Ed25519")
        return cls(key)

    def headers(self, headers: Sequence[tuple[str, bytes]], value: bytes) -> Headers:
        """A command's headers with its `ce_keyid` and `ce_signature` after them."""
        found = dict(reversed(headers))  # the first of each name, as the intake reads them
        signature = crypto_sign(signed_bytes(found, value), self._secret)[:crypto_sign_BYTES]
        return [
            *headers,
            (KEYID, self.key_id.encode()),
            (SIGNATURE, base64.b64encode(signature)),
        ]
