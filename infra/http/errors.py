"""Errors of the HTTP entry point that the problem table (infra/problem.py) reports."""

from __future__ import annotations


class PortUnavailableError(Exception):
    """The address to serve on cannot be bound (in use, not ours, not allowed)."""
