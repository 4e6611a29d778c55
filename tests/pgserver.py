"""A real PostgreSQL for the tests: Debian's package, started by hack/postgres.sh in a temp dir on a free port.

`start_postgres(dir)` starts (or finds) the server and returns how to reach it; `stop_postgres(dir)` ends it and
removes the dir. A server that cannot start fails the test with its log (never a skip). Used by
tests/integration/test_sql_source.py and tests/e2e/test_sql_dataset.py; the pods of the e2e tier reach it on the
test cluster's host link (10.213.0.1).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Postgres", "orders_table", "start_postgres", "stop_postgres"]

SCRIPT = Path(__file__).resolve().parents[1] / "hack" / "postgres.sh"


@dataclass(frozen=True)
class Postgres:
    """A running server: `host` is the address pods and the tests reach it on."""

    host: str
    port: int
    socket_dir: str
    user: str
    password: str
    database: str

    @property
    def uri(self) -> str:
        """A libpq URI with the password (for the tests' own connections only)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def connect(self) -> Any:
        """An ADBC DB-API connection (autocommit off: call commit())."""
        import adbc_driver_postgresql.dbapi as pg

        return pg.connect(self.uri)

    def execute(self, *statements: str) -> None:
        """Run statements and commit."""
        with self.connect() as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            conn.commit()

    def scalar(self, query: str) -> Any:
        """The first value of the first row."""
        with self.connect() as conn, conn.cursor() as cursor:
            cursor.execute(query)
            row = cursor.fetchone()
            return None if row is None else row[0]


def orders_table(rows: int, *, created_at: bool = False) -> str:
    """SQL creating the tests' `orders` table of `rows` rows: ids 1..rows, amounts in [0, 100), four regions
    (a quarter each), every seventh order returned; optionally a creation time a minute apart."""
    time = (
        "timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute' AS created_at," if created_at else ""
    )
    return f"""
        CREATE TABLE orders AS
        SELECT i AS id,
               round(((i * 37) % 1000) / 10.0, 1)::float8 AS amount,
               (ARRAY['north', 'south', 'east', 'west'])[i % 4 + 1] AS region,
               {time}
               (i % 7 = 0) AS returned
        FROM generate_series(1, {rows}) AS i
    """


def _run(command: str, directory: Path) -> str:
    environment = {**os.environ, "GYRE_PG_DIR": str(directory)}
    result = subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, env=environment, timeout=300
    )
    if result.returncode != 0:
        log = directory / "server.log"
        tail = log.read_text()[-3000:] if log.exists() else ""
        pytest.fail(f"hack/postgres.sh {command} failed ({result.returncode}): {result.stderr}\n{tail}")
    return result.stdout


def start_postgres(directory: Path) -> Postgres:
    """Start a server whose files live in `directory` (idempotent)."""
    values = dict(line.split("=", 1) for line in _run("start", directory).split() if "=" in line)
    return Postgres(
        host=values["GYRE_PG_HOST"],
        port=int(values["GYRE_PG_PORT"]),
        socket_dir=values["GYRE_PG_SOCKET"],
        user=values["GYRE_PG_USER"],
        password=values["GYRE_PG_PASSWORD"],
        database=values["GYRE_PG_DATABASE"],
    )


def stop_postgres(directory: Path) -> None:
    """End the server and remove its files."""
    _run("stop", directory)
