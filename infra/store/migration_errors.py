"""Why `store migrate` refuses to begin or go on (infra/store/migration.py); each has its row
in the problem table (infra/problem.py), and the message says what to do."""

from __future__ import annotations


class MigrationRefusedError(Exception):
    """The migration cannot begin or go on; nothing more was written."""


class TargetNotEmptyError(MigrationRefusedError):
    """The new store holds something other than this migration's own copy (exit 73)."""


class SourceNotVerifiedError(MigrationRefusedError):
    """The old store's chain does not verify, or changed since the copy began (exit 65)."""
