"""BACKCHECK_WITNESS_KEYS: the witnesses whose cosignatures the store takes, as vkeys; each
refusal names the variable, the witness and the rule."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit.notes import COSIGNATURE_V1, Signer
from infra.config import ConfigError, Settings


def vkey(name: str, kind: int = COSIGNATURE_V1) -> str:
    return Signer(name, Ed25519PrivateKey.generate(), kind).verifier.vkey


def test_witness_keys_are_read_by_commas_or_spaces() -> None:
    one, two, three = vkey("w.test/1"), vkey("w.test/2"), vkey("w.test/3")
    settings = Settings.load({"BACKCHECK_WITNESS_KEYS": f" {one},{two}\n {three} "})
    assert settings.witness_keys == (one, two, three)
    assert Settings.load({}).witness_keys == ()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("not-a-key", "witness 1 ('not-a-key'): verifier key must be"),
        (vkey("log.test/x", 0x01), "witness 1 (log.test/x) is not a cosigner key (type 0x04)"),
        (f"{vkey('w.test/a')} {vkey('w.test/a')}", "witness w.test/a is named twice"),
        (
            "w.test/b+00000000+" + vkey("w.test/b").split("+", 2)[2],
            "key id 00000000 does not match",
        ),
    ],
    ids=["not a key", "not a cosigner key", "named twice", "wrong key id"],  # keys are random
)
def test_an_unusable_witness_key_is_refused_naming_it(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match="BACKCHECK_WITNESS_KEYS") as refused:
        Settings.load({"BACKCHECK_WITNESS_KEYS": text})
    assert said in str(refused.value)
