"""Ports: what the use cases need from the outside world, named by role."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class KeyStore(Protocol):
    """Holds the per-subject data keys personal values are encrypted with."""

    def destroy(self, subject: UUID) -> int:
        """Destroy every data key of the subject; returns how many were destroyed."""
        ...

    def has_keys(self, subject: UUID) -> bool: ...


class ReceiptSigner(Protocol):
    """Signs what an erasure did, so the subject can be given proof of it."""

    def sign(self, statement: bytes) -> tuple[str, str]:
        """Returns (key id, base64 signature)."""
        ...
