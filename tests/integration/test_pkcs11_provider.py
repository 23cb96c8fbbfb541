"""The PKCS#11 key provider on a SoftHSM2 token: wrap and unwrap are the token's calls, the
master key never leaves it, and every fault is one ConfigError naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

from domain.candidate import Candidate
from infra.bootstrap import build_app
from infra.config import ConfigError, Settings
from infra.privacy.keystore import WrongMasterKeyError
from infra.privacy.pkcs11 import Pkcs11KeyProvider
from infra.privacy.providers import FileKeyProvider
from services.dto import RegisterCandidate
from tests.hsm import Token, key_label

pytestmark = pytest.mark.usefixtures("softhsm")


def provider(token: Token, label: str, *, create: bool = True) -> Pkcs11KeyProvider:
    return Pkcs11KeyProvider(token.module, token.label, token.pin, label, create=create)


def test_a_data_key_wrapped_by_the_token_unwraps_to_itself(softhsm: Token) -> None:
    hsm = provider(softhsm, key_label())
    try:
        data_key = os.urandom(32)
        blob = hsm.wrap(data_key)
        assert len(blob) == 40  # RFC 3394: 8 bytes more
        assert data_key not in blob
        assert hsm.unwrap(blob) == data_key
        assert hsm.wrap(data_key) == blob  # the same key: AES key wrap is deterministic
        assert hsm.key_id.startswith("pkcs11:")
    finally:
        hsm.close()


def test_the_master_key_is_found_again_by_its_label(softhsm: Token) -> None:
    label = key_label()
    first = provider(softhsm, label)
    blob = first.wrap(b"k" * 32)
    first.close()
    again = provider(softhsm, label, create=False)
    try:
        assert again.unwrap(blob) == b"k" * 32
        assert again.check_value() == first.check_value()
        assert not again.created
    finally:
        again.close()


def test_another_key_does_not_unwrap_it(softhsm: Token) -> None:
    one, other = provider(softhsm, key_label()), provider(softhsm, key_label())
    try:
        blob = one.wrap(os.urandom(32))
        with pytest.raises(InvalidUnwrap):
            other.unwrap(blob)
        assert one.check_value() != other.check_value()
    finally:
        one.close()
        other.close()


def test_the_token_refuses_to_give_out_the_master_key(softhsm: Token) -> None:
    """Non-extractable and sensitive: neither its value nor a wrap of it by another key."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

    label = key_label()
    provider(softhsm, label).close()
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.label)
    with token.open(rw=True, user_pin=softhsm.pin) as session:
        key = session.get_key(label=label, object_class=ObjectClass.SECRET_KEY)
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]
        wrapper = session.generate_key(
            KeyType.AES, 256, store=False, template={Attribute.WRAP: True}
        )
        with pytest.raises(pkcs11.exceptions.KeyUnextractable):
            wrapper.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP)


def test_an_extractable_key_under_the_label_is_refused(softhsm: Token) -> None:
    import pkcs11
    from pkcs11 import Attribute, KeyType

    label = key_label()
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.label)
    with token.open(rw=True, user_pin=softhsm.pin) as session:
        session.generate_key(
            KeyType.AES,
            256,
            label=label,
            store=True,
            template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
        )
    with pytest.raises(ConfigError, match=r"BACKCHECK_PKCS11_KEY_LABEL: .* may leave the token"):
        provider(softhsm, label)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pin": "0000"}, "BACKCHECK_PKCS11_PIN: the token 'backcheck-test' .* refused the PIN"),
        ({"label": "no-such-token"}, "BACKCHECK_PKCS11_TOKEN_LABEL: no token labelled"),
        ({"key": "not-made"}, "BACKCHECK_PKCS11_KEY_LABEL: no AES key labelled 'not-made'"),
    ],
)
def test_each_fault_is_one_config_error(
    softhsm: Token, change: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Pkcs11KeyProvider(
            softhsm.module,
            change.get("label", softhsm.label),
            change.get("pin", softhsm.pin),
            change.get("key", key_label()),
            create="key" not in change,
        )


def test_the_store_on_the_token_seals_opens_and_erases(softhsm: Token, settings: Settings) -> None:
    hsm_settings = softhsm.settings(settings, key_label())
    app = build_app(hsm_settings)
    try:
        cid = app.register_candidate(RegisterCandidate(name="Wen Jing", actor="hr:li.na"))
        candidate_id = cid.candidate_id
        assert app.load(Candidate, candidate_id).identity[0].value == "Wen Jing"
    finally:
        app.close()
    assert not hsm_settings.master_key_path.exists()  # no key file was made
    app = build_app(hsm_settings)
    try:
        assert app.load(Candidate, candidate_id).identity[0].value == "Wen Jing"
        assert app.keys.has_keys(candidate_id)
        app.keys.destroy(candidate_id)
        assert not app.keys.has_keys(candidate_id)
    finally:
        app.close()


def test_a_file_key_is_refused_by_a_store_on_the_token(
    softhsm: Token, settings: Settings, tmp_path: Path
) -> None:
    build_app(softhsm.settings(settings, key_label())).close()
    path = tmp_path / "k" / "m.key"
    with pytest.raises(ConfigError, match=f"there is no master key at {path}"):
        build_app(settings.model_copy(update={"master_key_file": path}))
    assert not path.exists()  # the key file made just now for it was taken back
    FileKeyProvider.from_file(path, create=True)  # an existing key, not the store's
    with pytest.raises(WrongMasterKeyError, match=f"the key in {path} is not this store's"):
        build_app(settings.model_copy(update={"master_key_file": path}))


def test_the_file_provider_wraps_as_before(tmp_path: Path) -> None:
    key = FileKeyProvider.from_file(tmp_path / "master.key", create=True)
    blob = key.wrap(b"d" * 32)
    raw = bytes.fromhex((tmp_path / "master.key").read_text().strip())
    assert aes_key_unwrap(raw, blob) == b"d" * 32  # the blobs stores hold today
