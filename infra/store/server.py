"""Reaching the PostgreSQL server: asked once, quickly, before anything waits for it.

The library's connection pool retries in the background and gives up after 30 seconds with
"couldn't get a connection", whatever the cause. A store that cannot be reached at all, or
that refuses us, is told at once instead, as one of our errors: unreachable (nothing answers
there: no server, a host that does not resolve, a port nobody listens on; worth trying
again later) or misconfigured (a server answered and refused the database, the user or the
password, or cannot give the TLS the settings ask for: trying again will not help until the
setting is changed).
"""

from __future__ import annotations

import re

import psycopg

# What a server that answered says when it refuses the connection for good.
_REFUSED = re.compile(
    r"does not exist|authentication failed|no pg_hba\.conf entry|password|permission denied|"
    r"not permitted to log in",
    re.IGNORECASE,
)
# What libpq says when the TLS the settings ask for (the URL's sslmode, sslrootcert, ...,
# or PGSSLMODE and the like) cannot be had with this server: the server answered, and no
# retry helps until a setting changes, so it is a configuration fault too (exit 78), the
# same whether the URL or the environment asked for it.
_TLS_REFUSED = re.compile(
    r"does not support SSL|SSL is not supported|certificate|private key|sslmode value|"
    r"root cert|SSL error",
    re.IGNORECASE,
)


class StoreUnavailableError(Exception):
    """The event store's database cannot be used; the message says where and why."""


class StoreUnreachableError(StoreUnavailableError):
    """Nothing answered at the store's address (exit 69: try again when it is up)."""


class StoreMisconfiguredError(StoreUnavailableError):
    """The server answered and refused the database, user or password, or cannot give the
    TLS the settings ask for (exit 78)."""


def check_server(conninfo: str, where: str, schema: str = "public") -> None:
    """Connects once to the server `conninfo` names (`where`, as a person would read it), or
    raises the error that says why not, and makes sure the store's `schema` is there (the
    store makes its tables, not the schema: a misspelt name would otherwise end in the
    driver's traceback, or in tables made elsewhere). How long it may take is in `conninfo`
    (`connect_timeout`, infra/config). A server that answered but cannot take us just now
    (all connection slots taken, starting up) is left to the library's pool, which waits for
    it as before."""
    try:
        with psycopg.connect(conninfo) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
    except psycopg.OperationalError as e:
        error = store_error(e, where)
        if isinstance(error, StoreUnreachableError) and "FATAL" in str(e):
            return  # it answered: busy, not gone
        raise error from None
    if found is None:
        raise StoreMisconfiguredError(
            f"BACKCHECK_DATABASE_URL: {where} has no schema {schema!r}: create it "
            f"(CREATE SCHEMA {schema}) or name one that exists; `backcheck store migrate` "
            "makes its target's"
        )


def store_error(error: psycopg.OperationalError, where: str) -> StoreUnavailableError:
    """The driver's refusal to connect as one of our errors, in one line."""
    reason = _reason(str(error))
    if _TLS_REFUSED.search(reason):
        return StoreMisconfiguredError(
            f"BACKCHECK_DATABASE_URL: {where} cannot be reached as the settings ask: "
            f"{reason} (TLS is asked for by the URL's sslmode, sslrootcert, sslcert, sslkey, "
            "or by PGSSLMODE and the like in the environment)"
        )
    if _REFUSED.search(reason):
        return StoreMisconfiguredError(
            f"BACKCHECK_DATABASE_URL: {where} refused the connection: {reason}"
        )
    return StoreUnreachableError(f"{where} does not answer: {reason}")


def _reason(message: str) -> str:
    """The last thing libpq says went wrong, on one line, e.g. 'Connection refused' or
    'database "x" does not exist'."""
    first = message.strip().splitlines()[0] if message.strip() else "no reason given"
    last = first.rsplit(" failed: ", 1)[-1]
    return last.removeprefix("FATAL:").strip() or first
