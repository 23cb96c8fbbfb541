"""The independent verifier, run as an outsider runs it: a copy of the one file in an empty
directory, with this project impossible to import. It accepts a real bundle and refuses each
tampered one with one line naming what failed and where."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

import infra.audit.verify_bundle as verifier
from infra.audit import chain
from infra.audit.notes import Signer
from tests.proofs import ORIGIN, Log, a_log

SOURCE = Path(verifier.__file__)
OURS = ("domain", "projections", "services", "infra", "tests", "backcheck")
# Runs the copied file as __main__ with every package of ours refused at import.
RUNNER = f"""
import runpy, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OURS!r}:
            raise ImportError("the verifier imported " + name)
sys.meta_path.insert(0, Refuse())
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    assert not [m for m in sys.modules if m.split(".")[0] in {OURS!r}]
"""


@pytest.fixture(scope="module")
def log() -> tuple[Log, uuid.UUID]:
    return a_log(40)


def run(tmp_path: Path, bundle: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    copy = tmp_path / "alone" / "verify_bundle.py"
    if not copy.exists():
        copy.parent.mkdir()
        shutil.copy(SOURCE, copy)
    (tmp_path / "evidence.bundle").write_bytes(bundle)
    return subprocess.run(
        [sys.executable, "-I", "-c", RUNNER, str(copy), str(tmp_path / "evidence.bundle"), *args],
        cwd=copy.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def keys(log: Log, witnesses: int = 3) -> list[str]:
    args = ["--key", log.key.verifier.vkey]
    for w in log.witnesses[:witnesses]:
        args += ["--witness", w.verifier.vkey]
    return args


def refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SOURCE.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"cryptography"}


def test_a_real_bundle_is_valid_with_all_witnesses(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    result = run(tmp_path, records.bundle(subject), *keys(records))

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"valid: 6 record(s) of subject {subject} in checkpoint {ORIGIN} size 40, signed by "
        f"{ORIGIN}; cosigned by witness.example/w0, witness.example/w1, witness.example/w2\n"
    )


def test_the_verifier_recomputes_the_digest_as_the_chain_defines_it() -> None:
    @given(st.uuids(), st.integers(0, 2**64 - 1), st.text(max_size=40), st.binary(max_size=300))
    def agree(oid: uuid.UUID, version: int, topic: str, state: bytes) -> None:
        t = topic.encode()
        assert verifier.record_digest(oid.bytes, version, t, state) == chain.digest(
            oid.bytes, version, t, state
        )

    agree()


def _body(bundle: bytes) -> dict[str, object]:
    return dict(json.loads(bundle.decode().split("\n")[1]))


def _reseal(log: Log, body: dict[str, object]) -> bytes:
    """A bundle whose body was changed and sealed again by the log's own key: what a faulty
    or dishonest exporter holding the key would hand over. Only the proofs can catch it."""
    from infra.audit.bundle import KIND, canonical
    from infra.audit.notes import sign

    return str(sign(f"{KIND}\n{canonical(body)}\n", log.key)).encode()


def test_a_changed_byte_in_a_record_names_the_record_and_its_proof(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    body = _body(records.bundle(subject))
    record = body["records"][2]  # type: ignore[index]
    record["state"] = record["state"][:-4] + ("AAAA" if record["state"][-4:] != "AAAA" else "BBBB")
    error = refused(run(tmp_path, _reseal(records, body), *keys(records)))

    assert error.startswith(
        f"invalid: record 2 (position {record['position']}, leaf {record['leaf_index']}): "
        "inclusion proof does not lead to the root of the tree of size 40"
    )


def test_a_changed_byte_anywhere_is_refused(log: tuple[Log, uuid.UUID]) -> None:
    records, subject = log
    bundle = records.bundle(subject)
    key = verifier.Key(records.key.verifier.vkey)
    witnesses = [verifier.Key(w.verifier.vkey) for w in records.witnesses]
    assert verifier.verify(bundle, key, witnesses, 3, []).startswith("valid")

    accepted = []
    for at in range(len(bundle)):
        changed = bundle[:at] + bytes([bundle[at] ^ 0x01]) + bundle[at + 1 :]
        try:
            verifier.verify(changed, key, witnesses, 3, [])
            accepted.append(at)
        except verifier.InvalidError:
            pass
    assert accepted == []


def test_a_proof_for_another_tree_size_is_refused(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    error = refused(run(tmp_path, records.bundle(subject, proofs_for_size=36), *keys(records)))

    assert error.startswith("invalid: record 0 (position ")
    assert "of the tree of size 40" in error or "another tree size" in error


def test_a_proof_one_hash_short_names_the_sizes(tmp_path: Path, log: tuple[Log, uuid.UUID]) -> None:
    records, subject = log
    body = _body(records.bundle(subject))
    body["records"][1]["inclusion_proof"].pop()  # type: ignore[index]
    error = refused(run(tmp_path, _reseal(records, body), *keys(records)))

    assert "record 1 (position" in error
    assert "inclusion proof has 5 hashes; leaf 10 of a tree of size 40 needs 6" in error


def test_a_checkpoint_signed_by_an_unknown_key_is_refused(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    stranger = Signer(ORIGIN, Ed25519PrivateKey.generate())
    forged = records.bundle(subject, records.checkpoint(key=stranger), key=stranger)
    error = refused(run(tmp_path, forged, *keys(records)))

    assert error == (
        f"invalid: checkpoint is not signed by the trusted key {ORIGIN} "
        f"({records.key.verifier.key_id.hex()}); it is signed by: {ORIGIN} "
        f"({stranger.verifier.key_id.hex()}), witness.example/w0 "
        f"({records.witnesses[0].verifier.key_id.hex()}), witness.example/w1 "
        f"({records.witnesses[1].verifier.key_id.hex()}), witness.example/w2 "
        f"({records.witnesses[2].verifier.key_id.hex()})\n"
    )


def test_fewer_witnesses_than_required_are_refused(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    bundle = records.bundle(subject, records.checkpoint(cosigners=1))

    error = refused(run(tmp_path, bundle, *keys(records), "--witnesses-required", "2"))
    assert error == (
        "invalid: checkpoint: 1 of the required 2 witness cosignatures (witness.example/w0); "
        "missing: witness.example/w1, witness.example/w2\n"
    )
    assert run(tmp_path, bundle, *keys(records), "--witnesses-required", "1").returncode == 0


def test_a_bad_cosignature_names_the_witness(tmp_path: Path, log: tuple[Log, uuid.UUID]) -> None:
    records, subject = log
    body = _body(records.bundle(subject))
    lines = str(body["checkpoint"]).split("\n")
    lines[-3] = lines[-3][:-12] + ("A" if lines[-3][-12] != "A" else "B") + lines[-3][-11:]
    body["checkpoint"] = "\n".join(lines)
    error = refused(run(tmp_path, _reseal(records, body), *keys(records)))

    assert error == "invalid: checkpoint: the cosignature by witness.example/w1 does not verify\n"


def test_a_changed_timeline_breaks_the_bundle_signature(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    bundle = records.bundle(subject).replace(b"ConsentGranted", b"ConsentRevoked")
    error = refused(run(tmp_path, bundle, *keys(records)))

    assert error == f"invalid: bundle: signature 1 by {ORIGIN} does not verify\n"


def test_two_checkpoints_that_fork_are_refused(tmp_path: Path, log: tuple[Log, uuid.UUID]) -> None:
    records, subject = log
    other_history = records.forked(at=20)
    held = tmp_path / "held.checkpoint"
    held.write_text(str(other_history.checkpoint(30)))
    bundle = records.bundle(subject, consistency_from=(30,))

    error = refused(run(tmp_path, bundle, *keys(records), "--previous", str(held)))
    assert error.startswith(
        f"invalid: fork: {held} (size 30) and the bundle's checkpoint (size 40) are not "
        "consistent: body.consistency[0]: consistency proof does not lead to the root of size 30"
    )

    held.write_text(str(other_history.checkpoint(40)))
    error = refused(run(tmp_path, bundle, *keys(records), "--previous", str(held)))
    assert error == f"invalid: fork: {held} and the bundle's checkpoint differ at size 40\n"


def test_a_consistent_older_checkpoint_is_accepted(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    held = tmp_path / "held.checkpoint"
    held.write_text(str(records.checkpoint(17, cosigners=0)))
    bundle = records.bundle(subject, consistency_from=(17, 30))
    result = run(tmp_path, bundle, *keys(records), "--previous", str(held))

    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("; consistent with 1 previous checkpoint(s)\n")

    error = refused(run(tmp_path, records.bundle(subject), *keys(records), "--previous", str(held)))
    assert "no consistency proof between sizes 17 and 40" in error


def test_an_older_checkpoint_under_another_key_is_refused(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, subject = log
    held = tmp_path / "held.checkpoint"
    held.write_text(str(records.checkpoint(17, key=Signer(ORIGIN, Ed25519PrivateKey.generate()))))
    error = refused(
        run(
            tmp_path,
            records.bundle(subject, consistency_from=(17,)),
            *keys(records),
            "--previous",
            str(held),
        )
    )
    assert error.startswith(f"invalid: previous checkpoint {held} is not signed by the trusted key")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "not-a-key"], "is not a verifier key"),
        (["--key", "a+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"], "key id 00000000"),
        (["--witnesses-required", "4"], "must be 0 to 3"),
        (["--previous", "/nonexistent/checkpoint"], "/nonexistent/checkpoint"),
    ],
)
def test_unusable_arguments_exit_2_with_one_line(
    tmp_path: Path, log: tuple[Log, uuid.UUID], args: list[str], message: str
) -> None:
    records, subject = log
    base = keys(records) if args[0] != "--key" else keys(records)[2:]
    result = run(tmp_path, records.bundle(subject), *base, *args)

    assert result.returncode == 2, result
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_file_that_is_no_bundle_is_unusable_input_naming_it(
    tmp_path: Path, log: tuple[Log, uuid.UUID]
) -> None:
    records, _ = log
    for data in [
        b"",
        b"\xff\xfe",
        b"root:x:0:0:root:/root:/bin/bash\n",
        b"backcheck.evidence.v1\n{}\n\n\xe2\x80\x94 a AAAAAAA=\n",
    ]:
        result = run(tmp_path, data, *keys(records))

        assert result.returncode == 2, result
        assert result.stdout == ""
        assert result.stderr == (
            f"verify_bundle: {tmp_path / 'evidence.bundle'}: not an evidence bundle: "
            "line 1 is not 'backcheck.evidence.v2'\n"
        )


def test_a_broken_bundle_is_refused_in_one_line(tmp_path: Path, log: tuple[Log, uuid.UUID]) -> None:
    records, _ = log
    for data, message in [
        (b"backcheck.evidence.v2\n", "no blank line"),
        (b"backcheck.evidence.v2\n\xff\xfe", "not UTF-8"),
        (b"backcheck.evidence.v2\n{\n\n\xe2\x80\x94 a AAAAAAA=\n", "not JSON"),
        (b'backcheck.evidence.v2\n{"a":1,"a":2}\n\n\xe2\x80\x94 a AAAAAAA=\n', "twice"),
        (b"backcheck.evidence.v2\n" + b"[" * 100_000 + b"\n\n\xe2\x80\x94 a AAAAAAA=\n", "deep"),
    ]:
        assert message in refused(run(tmp_path, data, *keys(records)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["records"][0].pop("leaf_index"), "records[0]: no 'leaf_index'"),
        (
            lambda b: b["records"][0].update(version="1"),
            "record 0 (position 7, leaf 3).version: not an integer",
        ),
        (lambda b: b["records"][0].update(originator_id="x"), "originator_id is not a UUID"),
        (
            lambda b: b["records"][1].update(state="AB=="),
            "record 1 (position 21, leaf 10): state: not canonical",
        ),
        (lambda b: b["records"].insert(1, b["records"][0]), "record 1: leaf 3 is not after"),
        (lambda b: b["records"][1].update(leaf_index=10**6), "outside a tree of size 40"),
        (lambda b: b["records"].clear(), "must hold 1 to 100000 records"),
        (lambda b: b.update(subject="someone"), "body.subject: not a UUID"),
        (lambda b: b.update(consistency={}), "body.consistency: not a list"),
        (lambda b: b["records"][2]["inclusion_proof"].append(10**6), "indexes into proof_hashes"),
        (lambda b: b["records"][2]["inclusion_proof"].append("0"), "indexes into proof_hashes"),
        (lambda b: b["proof_hashes"].append("A" * 43 + "="), "]: used by no inclusion proof"),
        (lambda b: b["proof_hashes"].__setitem__(3, "AAAA"), "proof_hashes[3]: 3 bytes, not 32"),
    ],
)
def test_a_malformed_body_names_the_field(
    log: tuple[Log, uuid.UUID], change: Callable[[dict[str, Any]], object], message: str
) -> None:
    records, subject = log
    body: dict[str, Any] = _body(records.bundle(subject))
    change(body)
    key = verifier.Key(records.key.verifier.vkey)
    with pytest.raises(verifier.InvalidError) as refused_with:
        verifier.verify(_reseal(records, body), key, [], 0, [])
    assert message in str(refused_with.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
_VALID = a_log(12)


def _paths(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    children = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for k, v in children:
        found += _paths(v, (*at, k))
    return found


@given(st.data(), _json)
def test_any_value_swapped_anywhere_in_the_body_is_refused_in_words(
    data: st.DataObject, value: object
) -> None:
    """Resealed with the log's key, so only what the proofs cover is refused: the record's
    fields, its leaf and proof, the checkpoint, the subject; the position and the export time
    are the log operator's word."""
    records, subject = _VALID
    body: dict[str, Any] = _body(records.bundle(subject))
    where = data.draw(st.sampled_from([p for p in _paths(body) if p[0] != "timeline"]))
    parent: Any = body
    for k in where[:-1]:
        parent = parent[k]
    if parent[where[-1]] == value:
        return
    parent[where[-1]] = value
    key = verifier.Key(records.key.verifier.vkey)
    operators_word = where == ("exported_at",) and isinstance(value, str)
    operators_word |= (
        where[0] == "records"
        and where[-1] == "position"
        and type(value) is int
        and 0 <= value < 2**63
    )
    operators_word |= where == ("consistency",) and value == []
    try:
        verifier.verify(_reseal(records, body), key, [], 0, [])
    except verifier.InvalidError:
        assert not operators_word
    else:
        assert operators_word, f"{where} = {value!r} was accepted"
