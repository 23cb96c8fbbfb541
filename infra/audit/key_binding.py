"""Each data key held to the values sealed with it, for `audit verify`: a key row swapped.

A key row names its subject and scope in clear, beside the key wrapped by the master key (AES
key wrap, which binds the key to nothing else). Whoever can write the key table can put one
subject's wrapped key in another's row: it still unwraps, the chain still verifies, and the
first sign was a read failing with `seal-broken`. Every sealed value, though, is bound to its
subject, event and path (the AES-GCM associated data, `sealing.py`), so a key opens the values
sealed for its row's subject and scope only if it is the key they were sealed with.

So once the chain holds, each key row is unwrapped with the store's master key (its provider,
as the store's own commands find it) and tried on the first stored value sealed with it (kept,
with its place, while the chain was read: `Samples`, no record read again). A key that does not
unwrap, or does not open that value, is `key altered`: the detail names the candidate, the key
and the value. Without the master key (verify run where it is not), this check is left out,
and the verdict says so. One unwrap and one AES-GCM opening a key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap

from domain.classification import key_name
from infra.audit.sources import WrappedKey
from infra.privacy import envelope
from infra.privacy.envelope import Envelope
from infra.privacy.providers import KeyProvider
from infra.privacy.sealing import opened_with
from services.shredding import Sealed

KIND = "key altered"

# the first value sealed with each key, by (subject, scope): its position, the record's
# originator and version (the value's place), its path and its envelope
Sample = tuple[int, bytes, int, str, Envelope]
Samples = dict[Sealed, Sample]


def take_samples(
    samples: Samples, found: tuple[UUID, set[str], Any], position: int, oid: bytes, version: int
) -> None:
    """The first value of each of a record's keys not sampled yet (`found`: `keys.note`'s)."""
    subject, scopes, parsed = found
    if all((subject, scope) in samples for scope in scopes):
        return
    for scope, (path, sealed) in _first_envelopes(parsed).items():
        samples.setdefault((subject, scope), (position, oid, version, path, sealed))


def altered_keys(
    rows: Iterable[WrappedKey], samples: Samples, provider: KeyProvider
) -> list[tuple[int, str]]:
    """(position, detail) of each held key that does not unwrap with `provider`'s master key
    or does not open the first value sealed with it; keys no stored value was sealed with are
    not looked at."""
    found = []
    for row in rows:
        subject, scope = row[0], row[1]
        sample = samples.get((subject, scope))
        if sample is None:
            continue
        why = _not_bound(row, sample, provider)
        if why is not None:
            found.append(
                (
                    sample[0],
                    f"the {key_name(scope)} data key of candidate {subject} {why}: its row in "
                    "the key table was replaced (another subject's key?) or altered outside "
                    "backcheck; restore the key table from a backup",
                )
            )
    return sorted(found)


def _not_bound(row: WrappedKey, sample: Sample, provider: KeyProvider) -> str | None:
    subject, _, wrapped, master, next_wrapped, next_master = row
    if next_master == provider.key_id and next_wrapped is not None:
        wrapped = next_wrapped  # a rotation under way: the new key's wrapping
    elif master is not None and master != provider.key_id:
        return None  # wrapped by another master key: `keys rotate-master` names those
    try:
        key = provider.unwrap(wrapped)
    except InvalidUnwrap:
        return "does not unwrap with the store's master key"
    position, oid, version, path, sealed = sample
    ctx = (str(subject), str(UUID(bytes=oid)), version)
    if opened_with(key, sealed, path, ctx) is None:
        return f"does not open the value sealed with it at {path} of position {position}"
    return None  # one value is enough: a key opens all its values, or none


def _first_envelopes(state: object) -> dict[str, tuple[str, Envelope]]:
    """The first (path, envelope) of each key (scope) a record's parsed state was sealed with."""
    found: dict[str, tuple[str, Envelope]] = {}

    def collect(sealed: Envelope, path: str) -> Envelope:
        found.setdefault(envelope.scope(sealed), (path, sealed))
        return sealed

    if isinstance(state, dict):
        for name, value in state.items():
            envelope.open_tree(value, name, collect)
    return found
