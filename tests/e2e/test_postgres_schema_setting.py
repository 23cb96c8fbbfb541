"""The PostgreSQL schema named in BACKCHECK_DATABASE_URL (`?schema=`) is told in one line,
exit 78, when it cannot be used: one that is not there (it was an 85-line traceback, exit 1),
or a name the store's statements could not use as written (a traceback, or, for a mixed-case
name, four tables made in it before the traceback). So is an empty `?schema=` (the store was
made in `public`), any other query parameter (a `sslmode=require` was left out unseen, and the
store connected in clear), and the same faults in `store migrate --to` (a mixed-case schema
was made, tables in it, then a traceback)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

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


def test_an_empty_schema_is_a_configuration_error_not_the_public_schema(tmp_path: Path) -> None:
    # a port nothing listens on: were it taken for `public`, the store is unreachable (69),
    # and no shared server's `public` is written
    env = {
        "BACKCHECK_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test?schema=",
        "BACKCHECK_DATA_DIR": str(tmp_path),
    }

    said = one_line(run(env, "info"), EX_CONFIG)

    assert said.startswith("Configuration error (config): BACKCHECK_DATABASE_URL: schema '' ")


@pytest.mark.parametrize("parameter", ["sslmode=require", "connect_timeout=1", "options=-c"])
def test_a_url_parameter_the_store_would_connect_without_is_a_configuration_error(
    tmp_path: Path, parameter: str
) -> None:
    env = {
        "BACKCHECK_DATABASE_URL": f"{PG_URL}?schema=tenant&{parameter}",
        "BACKCHECK_DATA_DIR": str(tmp_path),
    }

    said = one_line(run(env, "info"), EX_CONFIG)

    name = parameter.partition("=")[0]
    assert said == (
        f"Configuration error (config): BACKCHECK_DATABASE_URL: the query parameter {name!r} "
        "is not taken (only schema is): the store would connect without it; give libpq's "
        "settings in its environment instead (e.g. PGSSLMODE=verify-full, PGSSLROOTCERT=FILE)"
    )
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize(("prefix", "extra"), [("Mig_", ""), ("mig_", "&sslmode=require")])
def test_a_migration_target_the_store_cannot_use_is_refused_naming_to_and_nothing_is_made(
    tmp_path: Path, prefix: str, extra: str
) -> None:
    require_postgres()
    source = {"BACKCHECK_DATA_DIR": str(tmp_path / "old")}
    assert (
        run(source, "do", "register-candidate", '{"name": "Li Na", "actor": "hr:li.na"}').returncode
        == 0
    )
    schema = f"{prefix}{uuid.uuid4().hex[:8]}"

    try:
        said = one_line(
            run(
                source,
                "store",
                "migrate",
                "--to",
                f"{PG_URL}?schema={schema}{extra}",
                "--to-data-dir",
                str(tmp_path / "new"),
            ),
            EX_CONFIG,
        )

        assert said.startswith("Configuration error (config): --to: ")
        with psycopg.connect(PG_URL) as conn:
            made = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            assert made.fetchone() is None
    finally:  # what a regression made is not left on the shared server
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
