"""The compliance officer's tools, wired: the checkpoint key pair, signing the chain head and
keeping checkpoints in DATA_DIR/checkpoints, verifying the store against the kept (or given)
checkpoints, verifying a bundle file, and making evidence bundles for the evidence use case
(services/evidence.py). The `audit` commands call these and print what they return."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from uuid import UUID

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit import holding
from infra.audit import verify_bundle as independent
from infra.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    generate_keys,
    key_id,
    load_private_key,
    load_public_key,
)
from infra.audit.cosigned import BY_OPTION, Asked, CosignedCheckpoints
from infra.audit.evidence import BundleError, BundleVerdict
from infra.audit.evidence_v2 import is_bundle, make_bundle, read_bundle
from infra.audit.key_binding import altered_keys
from infra.audit.log_checkpoint import SUFFIX as NOTE_SUFFIX
from infra.audit.log_checkpoint import (
    SignedCheckpoint,
    parse_checkpoint_note,
    sign_tree,
    signer,
)
from infra.audit.log_tree import LogTree
from infra.audit.notes import ED25519, Verifier
from infra.audit.notes import Checkpoint as NoteCheckpoint
from infra.audit.outputs import (
    check_directory,
    check_output,
    free_name,
    make_directory,
    write_output,
)
from infra.audit.verification import Verdict, open_source, verify
from infra.config import ConfigError, Settings
from infra.ops import metrics
from infra.privacy.providers import KeyProvider, provider_from_settings
from services.application import Backcheck
from services.evidence import Bundle, BundleRequest, EvidenceExport, ExportedEvidence

PRIVATE_NAME = "checkpoint-signing.key"
PUBLIC_NAME = "checkpoint-signing.pub"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str
    made: bool  # False: the pair was there already and is kept
    replaced: Path | None = None  # the public key of the pair a new one replaced, kept aside
    vkey: str = ""  # the verifier key line of the public key under the log's origin


def key_pair(directory: Path, *, replace: bool = False, origin: str = "backcheck") -> KeyPair:
    """The checkpoint key pair in `directory`: made if there is none. An existing pair is kept,
    since what it signed verifies only against its public key, unless `replace`: then a new
    pair takes its place (each file at once) and the old public key is kept aside under its
    key id, to verify what the old pair signed."""
    private, public = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    if private.exists() and not replace:
        key = load_private_key(private)
        if not public.exists():  # derived again from the private key, which is the pair
            public.write_bytes(_public_pem(key))
        vkey = Verifier(origin, ED25519, key.public_key()).vkey
        return KeyPair(private, public, key_id(key.public_key()), made=False, vkey=vkey)
    old = _set_aside(private) if private.exists() else None
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".keygen-", dir=directory))
    try:
        made_private, made_public = generate_keys(staging)
        os.replace(made_private, private)
        os.replace(made_public, public)
    finally:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()
    made = load_public_key(public)
    vkey = Verifier(origin, ED25519, made).vkey
    return KeyPair(private, public, key_id(made), made=True, replaced=old, vkey=vkey)


def _set_aside(private: Path) -> Path | None:
    """Keeps the public key of a pair about to be replaced, named by its key id; None when
    the old private key cannot be read as a key (--force is then the way to replace it)."""
    try:
        key = load_private_key(private)
    except CheckpointError:
        return None
    aside = private.parent / f"checkpoint-signing-{key_id(key.public_key())}.pub"
    aside.write_bytes(_public_pem(key))
    return aside


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def keep_checkpoint(
    settings: Settings,
    position: int,
    document: str,
    out: Path | None = None,
    *,
    force: bool = False,
    suffix: str = ".json",
) -> Path:
    """Writes a signed checkpoint to `out`, by default into DATA_DIR/checkpoints, where
    `audit verify` finds it (as checkpoint-N.note or, v1, checkpoint-POS.json; a kept one is
    never replaced: the same document is kept once, another beside it as checkpoint-N-2…)."""
    if out is None:
        make_directory(settings.checkpoints_dir)  # the store's own: made on first use
        out = settings.checkpoints_dir / f"checkpoint-{position}{suffix}"
        if not (out.is_file() and out.read_bytes() == document.encode()):
            out = free_name(settings.checkpoints_dir, f"checkpoint-{position}", suffix)
    return write_output(settings, out, document.encode(), force=force)


def kept_checkpoints(settings: Settings) -> list[Path]:
    directory = settings.checkpoints_dir
    return sorted([*directory.glob("*.json"), *directory.glob(f"*{NOTE_SUFFIX}")])


def sign_head(
    settings: Settings, out: Path | None = None, *, force: bool = False
) -> tuple[SignedCheckpoint, Path]:
    """Signs the stored tree's head now as a C2SP checkpoint note with the store's key, under
    the log's origin, and keeps it. The store must exist (the application creates it and its
    tables on first use). Where it goes is checked first (`infra.audit.outputs`): an existing
    file is replaced only with `force`, the store's own files, keys and kept checkpoints never."""
    check_checkpoint_output(settings, out, force=force)
    by = signer(settings)
    with open_source(settings) as source:
        signed = sign_tree(LogTree(source), by)
    return signed, keep_checkpoint(
        settings, signed.size, str(signed.note), out, force=force, suffix=NOTE_SUFFIX
    )


def check_checkpoint_output(settings: Settings, out: Path | None, *, force: bool = False) -> None:
    """Refuses (OutputPathError) a checkpoint's destination before anything is signed."""
    if out is None:
        check_directory(settings.checkpoints_dir)
    else:
        check_output(settings, out, force=force)


class StoreVerification:
    """The whole chain recomputed and held to trusted checkpoints: the files given, or else
    every checkpoint kept in DATA_DIR/checkpoints, each to the key that signed it (the trusted
    key, or one `keygen --force` replaced, kept beside it: `holding.py`). A kept checkpoint
    whose key is not found is not held, and named in the verdict (`unheld`, `skipped`); a
    checkpoint given, or kept, whose signature does not verify cannot be used, nor can a
    public key given that is no key, checkpoints or none (CheckpointError naming it, before
    anything is verified)."""

    def __init__(
        self,
        settings: Settings,
        checkpoint_files: Sequence[Path] | None = None,
        public_key: Path | None = None,
        workers: int | None = None,
    ) -> None:
        kept = not checkpoint_files
        files = list(checkpoint_files or kept_checkpoints(settings))
        found = holding.Checkpoints([], [], [])
        if public_key is not None and not files:
            # a key given is held to being one whatever the store holds, as with checkpoints
            # (CheckpointError naming it): no checkpoint to hold is no reason to trust a file
            load_public_key(public_key)
        if files:
            keyring = holding.Keyring.of(
                public_key or settings.verify_key_path, retired=public_key is None
            )
            found = holding.load(files, keyring, kept=kept)
        self.checkpoints: list[Checkpoint] = found.json
        self.notes: list[tuple[Path, NoteCheckpoint]] = found.notes
        self.unheld = found.unheld
        self.skipped: list[Path] = [Path(u.checkpoint) for u in found.unheld]
        self.settings = settings
        self.source = open_source(settings)
        try:
            self.total = self.source.count()
        except BaseException:
            self.source.__exit__(None, None, None)
            raise
        self.workers = workers or ((os.cpu_count() or 1) if self.total >= 200_000 else 1)

    def run(self, progress: Callable[[int], None] | None = None) -> Verdict:
        provider, unchecked = self._master_key()
        try:
            verdict = verify(
                self.source,
                self.checkpoints,
                progress,
                opener=functools.partial(open_source, self.settings),
                workers=self.workers,
                sizes=[signed.size for _, signed in self.notes],
                key_check=None
                if provider is None
                else lambda samples: altered_keys(self.source.wrapped_keys(), samples, provider),
            )
        finally:
            if provider is not None:
                provider.close()
        verdict.keys_unchecked = unchecked
        verdict.checkpoints += len(self.notes)
        holding.hold_notes(verdict, self.notes, LogTree(self.source))
        holding.bound(verdict)
        verdict.unheld = list(self.unheld)
        metrics.chain_verified(verdict.intact)
        return verdict

    def _master_key(self) -> tuple[KeyProvider | None, str | None]:
        """The store's master key, to hold each data key to its values (`key_binding.py`), or
        why that cannot be done here: no master key where the settings point, or one that
        wraps none of the store's keys."""
        try:
            provider, _ = provider_from_settings(self.settings, create=False)
        except ConfigError as e:
            return None, f"no master key to unwrap the data keys with ({e})"
        masters = {m for row in self.source.wrapped_keys() for m in (row[3], row[5]) if m}
        if masters and provider.key_id not in masters:
            provider.close()
            return None, f"the master key configured ({provider.key_id}) wraps none of the keys"
        return provider, None

    def __enter__(self) -> StoreVerification:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.source.__exit__(kind, error, trace)


def verify_bundle_file(path: Path, public_key: Path, settings: Settings) -> BundleVerdict:
    """An evidence bundle (v2, or v1) checked offline: nothing but the file and the trusted
    key; v2 by the independent verifier's algorithm (verify_bundle.py)."""
    key = load_public_key(public_key)
    try:
        with path.open("rb") as f:
            data = f.read(independent.MAX_BUNDLE + 1)
    except OSError as e:
        raise BundleError(f"{path}: {e.strerror or e}") from None
    if len(data) > independent.MAX_BUNDLE:
        raise BundleError(f"{path}: over {independent.MAX_BUNDLE} bytes")
    if not is_bundle(data):
        raise BundleError(
            f"{path}: not an evidence bundle (its first line is neither "
            f"{independent.FORMAT!r} nor a backcheck.evidence.v1 body)"
        )
    return read_bundle(data, key, settings.origin)


class SignedBundler:
    """The evidence use case's bundler: v2 bundles of the subject's records with inclusion
    proofs in the stored tree, against a checkpoint note signed now with the store's key (and,
    with `consistency`, proofs from the checkpoints kept in DATA_DIR/checkpoints); with
    `witnesses_required` K, against the newest checkpoint K configured witnesses cosigned,
    carrying their cosignatures (infra/audit/cosigned.py)."""

    def __init__(
        self,
        settings: Settings,
        *,
        consistency: bool = False,
        witnesses_required: int | None = None,
        asked: Asked = BY_OPTION,
    ) -> None:
        self.settings = settings
        self.signer = signer(settings)
        self.consistency = consistency
        self.cosigned = (
            CosignedCheckpoints(settings, self.signer, witnesses_required, asked)
            if witnesses_required
            else None
        )

    def bundle(self, request: BundleRequest) -> Bundle:
        kept = kept_checkpoints(self.settings) if self.consistency else None
        pick = self.cosigned.pick if self.cosigned is not None else None
        with open_source(self.settings) as source:
            return make_bundle(source, request, self.signer, kept, pick)


def evidence_export(
    app: Backcheck,
    settings: Settings,
    *,
    consistency: bool = False,
    witnesses_required: int | None = None,
    asked: Asked = BY_OPTION,
) -> EvidenceExport:
    """The evidence use case on the application's store. The signing key is loaded here,
    before the use case runs: with no usable key, nothing is recorded as disclosed. With
    `witnesses_required`, a cosigned checkpoint must cover the subject's records before the
    disclosure is recorded (NotCosignedError otherwise, nothing recorded); a refusal names
    it as it was `asked` (the command line's option, the HTTP API's query parameter)."""
    bundler = SignedBundler(
        settings, consistency=consistency, witnesses_required=witnesses_required, asked=asked
    )
    return EvidenceExport(app, bundler)


def check_cosigned(
    app: Backcheck,
    settings: Settings,
    subject: UUID,
    witnesses_required: int | None,
    asked: Asked = BY_OPTION,
) -> None:
    """With `witnesses_required`: a checkpoint that many witnesses cosigned covers every
    record of the subject now stored, or NotCosignedError before anything is recorded."""
    if witnesses_required:
        positions = [entry.position for entry in app.timeline(subject)]
        cosigned = CosignedCheckpoints(settings, signer(settings), witnesses_required, asked)
        cosigned.check(positions)


def check_evidence_output(settings: Settings, out: Path | None, *, force: bool = False) -> None:
    """Refuses (OutputPathError) a bundle's destination, and the directory its checkpoint is
    kept in, before the export runs: a disclosure is recorded only for a bundle that can be
    written (by default a new file evidence-SUBJECT-POS.bundle here)."""
    if out is None:
        check_directory(Path.cwd())
    else:
        check_output(settings, out, force=force)
    check_directory(settings.checkpoints_dir)


def file_evidence(
    settings: Settings, exported: ExportedEvidence, out: Path | None, *, force: bool = False
) -> Path:
    """Writes the bundle (by default a new file evidence-SUBJECT-POS.bundle here) and keeps
    its checkpoint note with the store's others. `check_evidence_output` first, before the
    export records the disclosure."""
    path = out or free_name(
        Path(), f"evidence-{exported.candidate_id}-{exported.checkpoint_position}", ".bundle"
    )
    write_output(settings, path, exported.bundle, force=force)
    keep_bundle_checkpoint(settings, exported)
    return path


def keep_bundle_checkpoint(settings: Settings, exported: ExportedEvidence) -> Path:
    """Keeps the checkpoint note a bundle was proven in, with the store's others."""
    _, signed = parse_checkpoint_note(exported.checkpoint.encode(), "the bundle's checkpoint")
    return keep_checkpoint(settings, signed.size, exported.checkpoint, suffix=NOTE_SUFFIX)
