"""The signature a sender puts on a command: over exactly the attributes the intake acts on,
unambiguous whatever they hold, and made from key files as `principals keygen` writes them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import VerifyKey

from domain.principal import sender_key_id
from infra.kafka.cloudevent import command_headers
from infra.kafka.signatures import (
    KEYID,
    LABEL,
    SIGNATURE,
    SIGNED_HEADERS,
    CommandSigner,
    SenderKeyError,
    new_key_pair,
    public_key_of,
    signed_bytes,
)
from infra.kafka.signatures import verifies as intake_verifies
from tests.story import NOW

VALUE = b'{"actor": "hr:li.na"}'


def signed(signer: CommandSigner) -> dict[str, bytes]:
    headers = command_headers("register-candidate", "c-1", "svc:ats", NOW)
    return dict(reversed(signer.headers(headers, VALUE)))


def verifies(public: str, found: dict[str, bytes], value: bytes) -> bool:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
    try:
        key.verify(base64.b64decode(found[SIGNATURE]), signed_bytes(found, value))
    except InvalidSignature:
        return False
    return True


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str]:
    pem, public = new_key_pair()
    (tmp_path / "ats.key").write_bytes(pem)
    return tmp_path / "ats.key", public


def test_a_signed_command_names_its_key_and_verifies_with_it(keys: tuple[Path, str]) -> None:
    signer = CommandSigner.from_file(keys[0])

    found = signed(signer)

    assert found[KEYID] == sender_key_id(keys[1]).encode()
    assert verifies(keys[1], found, VALUE)


@pytest.mark.parametrize("changed", ["ce_id", "ce_source", "ce_type", "ce_time"])
def test_changing_a_signed_attribute_breaks_the_signature(
    keys: tuple[Path, str], changed: str
) -> None:
    found = signed(CommandSigner.from_file(keys[0]))

    found[changed] += b"x"

    assert not verifies(keys[1], found, VALUE)


def test_changing_the_value_breaks_the_signature(keys: tuple[Path, str]) -> None:
    found = signed(CommandSigner.from_file(keys[0]))

    assert not verifies(keys[1], found, VALUE.replace(b"li.na", b"zhao"))


def test_the_signed_bytes_cannot_be_shifted_between_attributes() -> None:
    one = {"ce_id": b"a:b", "ce_source": b"c", "ce_type": b"t", "ce_time": b""}
    other = {"ce_id": b"a", "ce_source": b"b:c", "ce_type": b"t", "ce_time": b""}

    assert signed_bytes(one, b"") != signed_bytes(other, b"")


@given(
    st.dictionaries(st.sampled_from(("ce_id", "ce_source", "ce_type", "ce_time")), st.binary()),
    st.binary(),
)
def test_the_signed_bytes_are_the_netstrings_of_the_label_each_signed_header_and_the_value(
    found: dict[str, bytes], value: bytes
) -> None:
    """Built as one format for speed, they stay the layout the module's docstring publishes:
    an absent header is the empty string."""
    parts = (LABEL, *(found.get(name, b"") for name in SIGNED_HEADERS), value)

    assert signed_bytes(found, value) == b"".join(b"%d:%s," % (len(p), p) for p in parts)


def test_the_intake_verifies_exactly_what_cryptography_verifies(
    keys: tuple[Path, str],
) -> None:
    """The intake checks with libsodium what senders sign with OpenSSL: the same RFC 8032
    signatures, good ones taken, any change refused."""
    found = signed(CommandSigner.from_file(keys[0]))
    key = VerifyKey(base64.b64decode(keys[1]))
    signature = base64.b64decode(found[SIGNATURE])
    data = signed_bytes(found, VALUE)
    other = Ed25519PrivateKey.generate()

    assert intake_verifies(key, signature, data)
    assert verifies(keys[1], found, VALUE)
    assert not intake_verifies(key, signature, data + b" ")
    assert not intake_verifies(key, bytes([signature[0] ^ 1]) + signature[1:], data)
    assert not intake_verifies(key, other.sign(data), data)
    assert not intake_verifies(key, signature[:63], data)  # not 64 bytes
    assert not intake_verifies(key, b"", data)
    assert not intake_verifies(VerifyKey(bytes(32)), signature, data)  # a small-order key


def test_a_public_key_is_read_as_keygen_writes_it_or_as_pem(
    keys: tuple[Path, str], tmp_path: Path
) -> None:
    (tmp_path / "raw.pub").write_text(keys[1] + "\n")
    signer = CommandSigner.from_file(keys[0])
    pem = signer.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "pem.pub").write_bytes(pem)

    assert public_key_of(tmp_path / "raw.pub") == keys[1]
    assert public_key_of(tmp_path / "pem.pub") == keys[1]


def test_a_key_that_is_no_ed25519_key_is_refused_in_one_line(tmp_path: Path) -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.key").write_bytes(
        rsa.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "junk.pub").write_text("not a key")

    with pytest.raises(SenderKeyError, match="a private key, but not Ed25519"):
        CommandSigner.from_file(tmp_path / "rsa.key")
    with pytest.raises(SenderKeyError, match="neither a PEM public key nor base64"):
        public_key_of(tmp_path / "junk.pub")
    with pytest.raises(SenderKeyError, match="cannot read the private key"):
        CommandSigner.from_file(tmp_path / "missing.key")


def test_libsodiums_signature_is_the_one_openssl_makes_and_verifies() -> None:
    """The signer signs with libsodium: Ed25519 is deterministic (RFC 8032), so the signature
    is byte for byte the one `cryptography` (OpenSSL) makes with the same key, and verifies
    with its public key; a sender signing with any RFC 8032 library is read alike."""
    private = Ed25519PrivateKey.generate()
    headers = command_headers("register-candidate", "c-1", "svc:ats", NOW)
    signed = dict(CommandSigner(private).headers(headers, VALUE))
    signature = base64.b64decode(signed[SIGNATURE])
    data = signed_bytes(dict(reversed(headers)), VALUE)
    assert signature == private.sign(data)
    private.public_key().verify(signature, data)  # raises InvalidSignature if not
    with pytest.raises(InvalidSignature):
        private.public_key().verify(signature, data + b" ")
