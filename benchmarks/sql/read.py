"""Gyre's sql reader (ADBC, gyre.data.sql.read_sql) against psycopg 3's fetchall into a DataFrame, on one table.

Usage: read.py [ROWS] [--psycopg-path DIR]. Starts the tests' PostgreSQL (hack/postgres.sh, then stops it), loads
the tests' `orders` table with ROWS rows (default 120,000), and prints the median of 5 timed reads of
`SELECT * FROM orders ORDER BY id` by each, after one warm-up read. psycopg is not a Gyre dependency: install it
aside (`uv pip install --target DIR 'psycopg[binary]'`) and pass DIR.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[2]
QUERY = "SELECT * FROM orders ORDER BY id"


def _median(read: Callable[[], Any], runs: int = 5) -> float:
    read()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="?", type=int, default=120_000)
    parser.add_argument("--psycopg-path", default=None)
    args = parser.parse_args()
    if args.psycopg_path:
        sys.path.append(args.psycopg_path)
    sys.path.insert(0, str(ROOT / "tests"))
    import pandas as pd
    import psycopg

    from gyre.api.dataset import SqlSource
    from gyre.data.sql import SqlCredentials, read_sql
    from pgserver import orders_table

    script = str(ROOT / "hack/postgres.sh")
    out = subprocess.run(["bash", script, "start"], capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.split())
    try:
        host, port, password = env["GYRE_PG_HOST"], int(env["GYRE_PG_PORT"]), env["GYRE_PG_PASSWORD"]
        uri = f"postgresql://{env['GYRE_PG_USER']}:{password}@{host}:{port}/{env['GYRE_PG_DATABASE']}"
        with psycopg.connect(uri) as conn:
            conn.execute("DROP TABLE IF EXISTS orders")
            conn.execute(orders_table(args.rows, created_at=True))
        source = SqlSource.model_validate(
            {
                "host": host,
                "port": port,
                "database": env["GYRE_PG_DATABASE"],
                "userSecretRef": {"name": "unused", "key": "unused"},
                "sslmode": "disable",
                "query": QUERY,
            }
        )
        credentials = SqlCredentials(env["GYRE_PG_USER"], password)

        def by_psycopg() -> pd.DataFrame:
            with psycopg.connect(uri) as conn, conn.cursor() as cursor:
                cursor.execute(QUERY)
                rows = cursor.fetchall()
                return pd.DataFrame(rows, columns=[d.name for d in cursor.description or []])

        gyre = _median(lambda: read_sql(source, credentials))
        peer = _median(by_psycopg)
        load = os.getloadavg()[0]
        print(
            f"rows={args.rows} gyre_adbc={gyre:.3f}s psycopg3={peer:.3f}s ratio={peer / gyre:.2f} load1={load:.2f}"
        )
    finally:
        subprocess.run(["bash", script, "stop"], check=False)


if __name__ == "__main__":
    main()
