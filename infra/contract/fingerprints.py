"""Schema fingerprints: a message's shape may change only with its version.

A consumer that read `backcheck.consent.granted.v2` yesterday must read it today. So the
fingerprint of every message's schemas (headers, payload and key, every `$ref` in them followed:
a change in a shared shape changes each message that holds it; descriptions and titles left
out, since rewording them changes no message) is committed, by message and
version, in docs/contract/fingerprints.json, and a test compares it with the code's. An entry
is never rewritten: `backcheck contract --record-fingerprints FILE` adds the missing ones (a new
event, a new version) and refuses to change one, saying how to bump the version instead.

Entries are keyed `<topic>/<message>`: an event's message name carries its class version, an
outcome's its version; a command is versioned with its topic (`backcheck.commands.v1`), so a
command whose schema must change keeps v1 only if old senders' commands stay valid (a new
optional field), and its entry is then removed by hand in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.audit.outputs import write_document
from infra.inputs import InputError, read_file

MAX_DEPTH = 64  # refs followed inside one another (the document's shapes nest a few deep)


# Words about a schema, not rules of it: rewording them changes no message.
ANNOTATIONS = frozenset({"description", "title", "examples", "$comment", "summary"})
_NAMED = frozenset({"properties", "patternProperties"})  # their keys are names, not keywords


def _inlined(node: Any, document: Mapping[str, Any], depth: int = 0, names: bool = False) -> Any:
    """`node` with every `$ref` replaced by what it points at, annotations left out."""
    if depth > MAX_DEPTH:
        raise ValueError("the contract's $refs nest deeper than 64: a shape that holds itself?")
    if isinstance(node, dict):
        if "$ref" in node and not names:
            return _inlined(resolve(document, node["$ref"]), document, depth + 1)
        return {
            k: _inlined(v, document, depth, k in _NAMED and not names)
            for k, v in node.items()
            if names or k not in ANNOTATIONS
        }
    if isinstance(node, list):
        return [_inlined(v, document, depth) for v in node]
    return node


def resolve(document: Mapping[str, Any], ref: str) -> Any:
    """What a local `$ref` (`#/components/schemas/X`) points at; KeyError naming it if none."""
    if not ref.startswith("#/"):
        raise KeyError(f"{ref!r}: only references inside the document are used")
    node: Any = document
    for step in ref[2:].split("/"):
        step = step.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or step not in node:
            raise KeyError(f"{ref!r} resolves to nothing (no {step!r})")
        node = node[step]
    return node


def fingerprints(document: Mapping[str, Any]) -> dict[str, str]:
    """`<topic>/<message>` -> sha256 of the message's headers, payload and key schemas."""
    found: dict[str, str] = {}
    for channel in document["channels"].values():
        for name, ref in channel["messages"].items():
            message = resolve(document, ref["$ref"])
            shape = {
                "headers": message.get("headers"),
                "payload": message.get("payload"),
                "key": message.get("bindings", {}).get("kafka", {}).get("key"),
            }
            canonical = json.dumps(_inlined(shape, document), sort_keys=True).encode()
            found[f"{channel['address']}/{name}"] = hashlib.sha256(canonical).hexdigest()
    return dict(sorted(found.items()))


def _how_to_bump(key: str) -> str:
    topic, _, message = key.partition("/")
    if topic.startswith("backcheck.events."):
        return (
            f"bump the `class_version` of the event class published as {message} and add its "
            "`upcast_vN_vN+1` (the relay publishes the new version, old records upcast)"
        )
    if topic.startswith("backcheck.commands.") and ".dlq." not in topic:
        return (
            "keep old senders' commands valid (only new optional fields) and remove this "
            "entry by hand in the same commit, saying why; or send it on a new topic version"
        )
    return f"give {message} a new version (a new ce_type, or a new topic)"


def differences(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """One line for each current message whose fingerprint is missing or changed."""
    lines = []
    for key, fingerprint in current.items():
        was = recorded.get(key)
        if was is None:
            lines.append(
                f"{key}: no fingerprint recorded; record it with `backcheck contract "
                "--record-fingerprints docs/contract/fingerprints.json`"
            )
        elif was != fingerprint:
            lines.append(f"{key}: its schema changed without a version bump: {_how_to_bump(key)}")
    return lines


class FingerprintChangedError(ValueError):
    """A recorded fingerprint the code no longer matches: never rewritten (the message says
    how to bump the version instead)."""


def load(path: Path, *, what: str = "FILE", missing_ok: bool = False) -> dict[str, str]:
    """The fingerprints recorded in `path` (none yet if it is missing and `missing_ok`).
    InputError naming `what` (the option) and the file when it cannot be read or is not a
    JSON object of message names to fingerprints."""
    if missing_ok and not path.exists():
        return {}
    data = read_file(path, what)
    try:
        found = json.loads(data)
    except ValueError as e:  # not JSON, or not UTF-8
        raise InputError(f"{what} {path}: not JSON ({e})") from None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise InputError(f"{what} {path}: not a JSON object of message names to fingerprints")
    return found


def record(path: Path, current: Mapping[str, str], *, what: str = "FILE") -> list[str]:
    """Adds the missing fingerprints to `path` (made if missing); returns those added. A
    changed one is refused (FingerprintChangedError with every change and how to bump), and
    nothing is written; a file that cannot be read is InputError, one that cannot be written
    OutputPathError."""
    recorded = load(path, what=what, missing_ok=True)
    changed = {key: fp for key, fp in current.items() if recorded.get(key, fp) != fp}
    if changed:
        raise FingerprintChangedError("; ".join(differences(recorded, changed)))
    added = [key for key in current if key not in recorded]
    merged = dict(sorted({**recorded, **current}.items()))
    write_document(path, (json.dumps(merged, indent=2) + "\n").encode())
    return added
