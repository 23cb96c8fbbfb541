"""The optional C core (infra/audit/_chain.c, ADR 0010): built at install where a compiler and
OpenSSL's headers exist. Each of its functions has a Python definition it must agree with
(tests/unit/test_chain.py, test_merkle.py, test_tree_check.py), used where it was not built."""

from __future__ import annotations

from typing import Any


def accelerated(name: str) -> Any | None:
    """The C core's function `name`, or None when the core was not built on this machine."""
    try:
        from infra.audit import _chain
    except ImportError:  # pragma: no cover - depends on the machine that installed us
        return None
    return getattr(_chain, name)
