"""The optional C chain core (ADR 0010) in tests: where CI runs it must be built (its tests
fail there without it); on a machine without a C compiler they are skipped with the reason."""

from __future__ import annotations

import os
from typing import TypeVar

import pytest

T = TypeVar("T")


def require_c_core(present: T | None) -> T:
    """The C core's function; a test of it is skipped (elsewhere) or fails (under CI=true)
    when it is not built."""
    if present is not None:
        return present
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("the C core was not built, and CI insists on it (pip install -e . builds it)")
    pytest.skip("the C core was not built on this machine")
