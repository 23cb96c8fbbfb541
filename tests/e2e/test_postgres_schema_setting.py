"""The PostgreSQL schema named in BACKCHECK_DATABASE_URL (`?schema=`) is told in one line,
exit 78, when it cannot be used: one that is not there (it was an 85-line traceback, exit 1),
or a name the store's statements could not use as written (a traceback, or, for a mixed-case
name, four tables made in it before the traceback)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from infra.problem import EX_CONFIG
from tests.conftest import PG_URL, require_postgres
from tests.e2e.test_faults_in_one_line import one_line, run


def test_a_schema_that_is_not_there_is_told_and_nothing_is_made(tmp_path: Path) -> None:
    require_postgres()
    schema = f"absent_{uuid.uuid4().hex[:8]}"
    env = {
        "BACKCHECK_DATABASE_URL": f"{PG_URL}?schema={schema}",
        "BACKCHECK_DATA_DIR": str(tmp_path),
    }

    said = one_line(run(env, "info"), EX_CONFIG)

    assert said.startswith("Store misconfigured (store-misconfigured): BACKCHECK_DATABASE_URL: ")
    assert f"has no schema '{schema}': create it (CREATE SCHEMA {schema})" in said
    with psycopg.connect(PG_URL) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
            is None
        )


@pytest.mark.parametrize("schema", ["bad-name", "Tenant2", "1st", "a" * 64])
def test_a_schema_name_the_store_cannot_use_is_a_configuration_error(
    tmp_path: Path, schema: str
) -> None:
    env = {
        "BACKCHECK_DATABASE_URL": f"{PG_URL}?schema={schema}",
        "BACKCHECK_DATA_DIR": str(tmp_path),
    }

    said = one_line(run(env, "info"), EX_CONFIG)

    assert said == (
        f"Configuration error (config): BACKCHECK_DATABASE_URL: schema {schema!r} cannot be "
        "used: lower-case letters, digits and _, beginning with a letter or _, at most 63 "
        "(PostgreSQL folds other names to lower case)"
    )
