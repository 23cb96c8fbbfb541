"""Signed notes, checkpoints and cosignatures as C2SP specifies them (signed-note, tlog-checkpoint,
tlog-cosignature), checked against the specifications' own examples."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from infra.audit import verify_bundle
from infra.audit.notes import (
    COSIGNATURE_V1,
    ED25519,
    Checkpoint,
    NoteError,
    Signer,
    cosign,
    key_id,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    sign,
    verify,
    verify_cosignature,
)

# c2sp.org/signed-note, "Verifier keys / Example"
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXpp"
    "zi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# c2sp.org/tlog-cosignature, its example of a cosigned checkpoint
SPEC_COSIGNED = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlr"
    "DJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def test_the_specification_example_note_verifies_under_its_verifier_key() -> None:
    vkey = parse_vkey(SPEC_VKEY)
    note = parse_note(SPEC_NOTE)

    assert verify(note, [vkey]) == [vkey]
    assert note.text == "This is an example message.\n"
    assert vkey.vkey == SPEC_VKEY
    assert str(note) == SPEC_NOTE


def test_the_independent_verifier_reads_the_specification_example_the_same_way() -> None:
    key = verify_bundle.Key(SPEC_VKEY)
    verify_bundle.check_signed(verify_bundle.Note(SPEC_NOTE, "note"), key, "note")

    assert key.id.hex() == "530d903a"


def test_the_specification_example_with_one_changed_byte_does_not_verify() -> None:
    changed = SPEC_NOTE.replace("example message", "example massage")
    with pytest.raises(NoteError, match="does not verify"):
        verify(parse_note(changed), [parse_vkey(SPEC_VKEY)])
    with pytest.raises(verify_bundle.InvalidError, match="does not verify"):
        verify_bundle.check_signed(
            verify_bundle.Note(changed, "note"), verify_bundle.Key(SPEC_VKEY), "note"
        )


def test_the_specification_cosigned_checkpoint_parses_with_its_cosignature_time() -> None:
    note = parse_note(SPEC_COSIGNED)
    checkpoint = parse_checkpoint(note.text)
    witness = note.signatures[1]

    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text() == note.text
    assert witness.name == "witness.example.com/w1"
    assert struct.unpack(">Q", witness.payload[:8]) == (1679315147,)  # the spec's "time" line
    assert len(witness.payload) == 8 + 64


def test_a_key_id_is_the_hash_of_name_newline_type_and_public_key() -> None:
    vkey = parse_vkey(SPEC_VKEY)
    raw = base64.b64decode(SPEC_VKEY.split("+", 2)[2])[1:]

    assert key_id("example.com/foo", ED25519, raw).hex() == "530d903a"
    assert vkey.key_id == key_id("example.com/foo", ED25519, raw)
    assert key_id("example.com/foo", COSIGNATURE_V1, raw) != vkey.key_id


def test_a_signed_checkpoint_round_trips_through_its_text() -> None:
    signer = Signer("backcheck.example/log", Ed25519PrivateKey.generate())
    checkpoint = Checkpoint("backcheck.example/log", 1234, bytes(range(32)), ("ext one",))

    note = sign(checkpoint.text(), signer)
    again = parse_note(str(note))

    assert again == note
    assert parse_checkpoint(again.text) == checkpoint
    assert verify(again, [parse_vkey(signer.verifier.vkey)]) == [signer.verifier]
    assert str(note).startswith(
        "backcheck.example/log\n1234\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    )


def test_a_witness_cosignature_verifies_with_its_time_and_only_on_that_checkpoint() -> None:
    log = Signer("backcheck.example/log", Ed25519PrivateKey.generate())
    witness = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    note = sign(Checkpoint("backcheck.example/log", 7, bytes(32)).text(), log)

    cosigned = note.with_signatures([cosign(note, witness, 1_700_000_000)])
    other = sign(Checkpoint("backcheck.example/log", 8, bytes(32)).text(), log)
    moved = other.with_signatures(cosigned.signatures[1:])

    assert verify_cosignature(parse_note(str(cosigned)), witness.verifier) == 1_700_000_000
    assert verify(cosigned, [log.verifier]) == [log.verifier]  # the cosignature is ignored
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(moved, witness.verifier)
    assert verify_cosignature(note, witness.verifier) is None


def test_signatures_by_unknown_keys_are_ignored_but_none_trusted_is_refused() -> None:
    log = Signer("backcheck.example/log", Ed25519PrivateKey.generate())
    same_name = Signer("backcheck.example/log", Ed25519PrivateKey.generate())
    note = sign("hello\n", log)
    both = note.with_signatures(sign("hello\n", same_name).signatures)

    assert verify(both, [log.verifier]) == [log.verifier]
    with pytest.raises(NoteError, match="no trusted key"):
        verify(sign("hello\n", same_name), [log.verifier])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no blank line\n\u2014 a AAAAAAA=\n", "no blank line"),
        ("text\n\n\u2014 a AAAAAAA=", "no blank line"),
        ("text\x07\n\n\u2014 a AAAAAAA=\n", "control character"),
        ("text\n\n- a AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014 aAAAAAAA=\n", "no space"),
        ("text\n\n\u2014 a+b AAAAAAA=\n", "plus"),
        ("text\n\n\u2014 a AAAAAA==\n", "too short"),
        ("text\n\n\u2014 a AAAAAAA\n", "not base64"),
        ("text\n\n\u2014 a AAAAAAB=\n", "canonical"),
        ("text\n\n" + "\u2014 a AAAAAAA=\n" * 65, "over 64"),
    ],
)
def test_malformed_notes_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(NoteError, match=problem):
        parse_note(text)
    with pytest.raises(verify_bundle.InvalidError):
        verify_bundle.Note(text, "note")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("origin\n12\n", "needs origin"),
        ("origin\n012\n" + base64.b64encode(bytes(32)).decode() + "\n", "leading zeros"),
        ("origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("origin\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "32 bytes"),
        ("\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", "empty origin"),
        (f"o\n{2**64}\n" + base64.b64encode(bytes(32)).decode() + "\n", "2\\^64"),
    ],
)
def test_malformed_checkpoints_are_refused(text: str, problem: str) -> None:
    with pytest.raises(NoteError, match=problem):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "text",
    [
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong id
        "example.com/foo+530d903a",
        "example.com/foo+530d903a+BekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # type 0x05
        "exa mple+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_a_verifier_key_that_does_not_hold_together_is_refused(text: str) -> None:
    with pytest.raises(NoteError):
        parse_vkey(text)
    with pytest.raises(verify_bundle.UnusableError):
        verify_bundle.Key(text)


def test_a_signer_name_that_could_trick_a_terminal_is_shown_escaped() -> None:
    note = verify_bundle.Note("text\n\n\u2014 evil\u202eexample AAAAAAA=\n", "note")
    trusted = verify_bundle.Key(SPEC_VKEY)

    with pytest.raises(verify_bundle.InvalidError) as refused:
        verify_bundle.check_signed(note, trusted, "note")
    assert "'evil\\u202eexample' (00000000)" in str(refused.value)


_names = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs", "Cn", "Co", "Cf", "Z"), blacklist_characters="+"
    ),
    min_size=1,
    max_size=40,
).filter(lambda n: not any(c.isspace() for c in n))
_texts = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60), min_size=1, max_size=6
).map(lambda lines: "\n".join(lines) + "\n")


@given(_texts, _names)
def test_any_note_round_trips_and_both_readers_verify_it(text: str, name: str) -> None:
    signer = Signer(name, _KEY)
    note = sign(text, signer)
    written = str(note)

    assert parse_note(written) == note
    assert verify(parse_note(written), [parse_vkey(signer.verifier.vkey)]) == [signer.verifier]
    verify_bundle.check_signed(
        verify_bundle.Note(written, "note"), verify_bundle.Key(signer.verifier.vkey), "note"
    )


_KEY = Ed25519PrivateKey.generate()
