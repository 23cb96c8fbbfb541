"""The PostgreSQL schema named in BACKCHECK_DATABASE_URL (`?schema=`) is told in one line,
exit 78, when it cannot be used: one that is not there (it was an 85-line traceback, exit 1),
or a name the store's statements could not use as written (a traceback, or, for a mixed-case
name, four tables made in it before the traceback). So is an empty `?schema=` (the store was
made in `public`), a query parameter that is not one of libpq's the store passes on (a
`sslmode=require` was once left out unseen, and the store connected in clear), and the same
faults in `store migrate --to` (a mixed-case schema was made, tables in it, then a traceback).
The libpq parameters it takes (sslmode, application_name, ...) reach every connection."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from infra.bootstrap import build_app
from infra.config import Settings
from infra.http.idempotency import kept_answers
from infra.http.sessions import portal_sessions
from infra.problem import EX_CONFIG
from tests import story as s
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


@pytest.mark.parametrize(
    ("parameter", "rule"),
    [
        ("ssl_mode=require", "is not taken: the store would connect without it; taken: schema, "),
        ("options=-c", "is not taken: the store sets each connection's options itself"),
        ("sslpassword=pw", "is not taken: a passphrase does not belong in a URL"),
        ("sslmode=bogus", "sslmode 'bogus' cannot be used: it is one of disable, allow, "),
        ("connect_timeout=soon", "connect_timeout 'soon' cannot be used: it is whole seconds"),
        ("sslmode=require&sslmode=disable", "sslmode is given more than once"),
    ],
)
def test_a_url_parameter_the_store_would_connect_without_is_a_configuration_error(
    tmp_path: Path, parameter: str, rule: str
) -> None:
    """Only libpq's connection parameters the store passes to every connection are taken,
    each by its rule; anything else (a misspelt `ssl_mode`) is refused, never dropped
    unseen, and the password is never said."""
    password = "pw-" + uuid.uuid4().hex
    url = PG_URL.replace("postgres@", f"postgres:{password}@")
    env = {
        "BACKCHECK_DATABASE_URL": f"{url}?schema=tenant&{parameter}",
        "BACKCHECK_DATA_DIR": str(tmp_path),
    }

    said = one_line(run(env, "info"), EX_CONFIG)

    assert said.startswith("Configuration error (config): BACKCHECK_DATABASE_URL: ")
    assert rule in said
    assert password not in said
    assert not (tmp_path / "keys").exists()


def test_sslmode_in_the_url_is_used_and_a_tls_the_server_cannot_give_is_exit_78(
    tmp_path: Path, pg_schema: str
) -> None:
    """`?sslmode=require` was refused (8c9cc5d) and before that dropped: it is taken now, as
    psql takes it. This server has no TLS: `sslmode=disable` opens the store, `require` is
    refused in one line, exit 78 (the server answered; only a setting helps), and so is
    PGSSLMODE=require, which said 69 (unreachable) before."""
    store = f"{PG_URL}?schema={pg_schema}"
    data = {"BACKCHECK_DATA_DIR": str(tmp_path)}

    plain = run({"BACKCHECK_DATABASE_URL": f"{store}&sslmode=disable", **data}, "info")
    required = run({"BACKCHECK_DATABASE_URL": f"{store}&sslmode=require", **data}, "info")
    from_env = run({"BACKCHECK_DATABASE_URL": store, "PGSSLMODE": "require", **data}, "info")

    assert plain.returncode == 0, plain.stderr
    assert f"schema {pg_schema}" in plain.stdout
    for refused in (required, from_env):
        said = one_line(refused, EX_CONFIG)
        assert said.startswith(
            "Store misconfigured (store-misconfigured): BACKCHECK_DATABASE_URL: PostgreSQL "
        )
        assert "server does not support SSL, but SSL was required" in said


def _own_server_ports() -> set[int]:
    """The local ports of this process's TCP connections to the PostgreSQL server's port."""
    server_port = urlsplit(PG_URL).port or 5432
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_every_connection_the_store_makes_carries_the_url_s_libpq_parameters(
    tmp_path: Path, pg_schema: str
) -> None:
    """`?application_name=` (as any libpq parameter the URL gives) reaches every connection
    of the store: the event store's pool (its views too), the key store's pool, the HTTP
    server's kept answers and portal sessions."""
    name = "bc-" + uuid.uuid4().hex[:12]
    settings = Settings(
        database_url=f"{PG_URL}?schema={pg_schema}&sslmode=disable&application_name={name}"
        "&connect_timeout=7",
        data_dir=tmp_path,
    )
    assert "connect_timeout='7'" in settings.postgres_conninfo()
    app = build_app(settings)
    kept = kept_answers("postgres", None, settings.postgres_conninfo(), settings.postgres_schema)
    sessions = portal_sessions(settings)
    try:
        s.register(app, "Li Na")
        kept.get("hr:li.na", "k-1")
        ours = _own_server_ports()
        with psycopg.connect(PG_URL, application_name="watcher", autocommit=True) as watch:
            seen = watch.execute(
                "SELECT client_port, application_name FROM pg_stat_activity "
                "WHERE client_port = ANY(%s) AND application_name <> 'watcher'",
                (sorted(ours),),
            ).fetchall()
    finally:
        sessions.close()
        kept.close()
        app.close()

    # the event store's, the key store's, the kept answers', the sessions'
    assert len(seen) >= 4, seen
    assert {application for _, application in seen} == {name}, seen


@pytest.mark.parametrize(("prefix", "extra"), [("Mig_", ""), ("mig_", "&ssl_mode=require")])
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
