"""Dataset sql sources against a real PostgreSQL (tests/pgserver.py): the reader, fingerprints, incremental refresh,
contracts and credentials, through the profiling Job's own code (`run_profile`, and `python -m gyre profile`).

No API server is involved: these run without the cluster lock.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gyre.api.dataset import DatasetExpectations, DatasetSource, SqlSource
from gyre.data.profiling import ProfileRequest, run_profile
from gyre.data.report import ProfileReport
from gyre.data.sql import SqlCredentials
from gyre.policy.sources import DEFAULT_REFUSED_HOSTS, SourcePolicy
from gyre.store import ArtifactStore, dataset_data_path
from pgserver import Postgres, orders_table, start_postgres, stop_postgres

pytestmark = pytest.mark.integration

ROWS = 120_000
WRONG_PASSWORD = "n0t-the-Pa55word-7f3a"

ORDERS = orders_table(ROWS, created_at=True)


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    directory = Path(tempfile.mkdtemp(prefix="gyre-pg-"))
    server = start_postgres(directory)
    try:
        server.execute("DROP TABLE IF EXISTS orders", ORDERS)
        yield server
    finally:
        stop_postgres(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def orders(pg: Postgres) -> Iterator[Postgres]:
    """The orders table as created, again after each test that changes it."""
    yield pg
    pg.execute("DROP TABLE IF EXISTS orders", ORDERS)


def policy_for(pg: Postgres) -> SourcePolicy:
    """The default policy when the server is on the cluster's host link; only loopback unrefused when it is not."""
    if not pg.host.startswith("127."):
        return SourcePolicy()
    return SourcePolicy(refused_hosts=tuple(h for h in DEFAULT_REFUSED_HOSTS if h != "127.0.0.0/8"))


def sql_source(pg: Postgres, **overrides: Any) -> SqlSource:
    fields: dict[str, Any] = {
        "host": pg.host,
        "port": pg.port,
        "database": pg.database,
        "userSecretRef": {"name": "db", "key": "user"},
        "passwordSecretRef": {"name": "db", "key": "password"},
        "query": "SELECT * FROM orders ORDER BY id",
        "sslmode": "disable",
    }
    return SqlSource.model_validate(fields | overrides)


def profile(
    pg: Postgres,
    store: Path,
    *,
    password: str | None = None,
    user: str | None = None,
    expectations: DatasetExpectations | None = None,
    previous: ProfileReport | None = None,
    **overrides: Any,
) -> ProfileReport:
    sql = sql_source(pg, **overrides)
    return run_profile(
        ProfileRequest(
            store_url=f"file://{store}",
            namespace="ml",
            name="orders",
            source=DatasetSource(sql=sql).location,
            target="returned",
            drop=("created_at",),  # Gyre's schema has no datetime kind: the time is only the watermark here
            source_policy=policy_for(pg),
            sql=sql,
            credentials=SqlCredentials(user or pg.user, password or pg.password),
            previous_fingerprint=previous.fingerprint if previous else None,
            after=previous.watermark if previous else None,
            expectations=expectations,
        )
    )


def stored(store: Path, report: ProfileReport) -> pd.DataFrame:
    assert report.fingerprint is not None
    data = ArtifactStore(f"file://{store}").read_bytes(dataset_data_path("ml", "orders", report.fingerprint))
    return pd.read_parquet(io.BytesIO(data))


def test_a_query_of_over_100k_rows_becomes_a_stored_version(orders: Postgres, tmp_path: Path) -> None:
    report = profile(orders, tmp_path)
    assert report.phase == "Succeeded", report.error
    assert report.rows == ROWS
    assert [c.name for c in report.columns or []] == ["id", "amount", "region", "returned"]
    frame = stored(tmp_path, report)
    assert len(frame) == ROWS
    assert frame["id"].tolist()[:3] == [1, 2, 3]
    assert frame["region"].value_counts().to_dict() == {
        r: ROWS // 4 for r in ("north", "south", "east", "west")
    }


def test_an_unchanged_table_gives_the_same_version_and_a_changed_one_a_new_one(
    orders: Postgres, tmp_path: Path
) -> None:
    first = profile(orders, tmp_path)
    again = profile(orders, tmp_path)
    assert first.phase == again.phase == "Succeeded"
    assert again.fingerprint == first.fingerprint
    assert again.reused is True
    orders.execute("UPDATE orders SET amount = amount + 1 WHERE id = 5")
    changed = profile(orders, tmp_path)
    assert changed.phase == "Succeeded" and changed.rows == ROWS
    assert changed.fingerprint != first.fingerprint


@pytest.mark.parametrize("column", ["id", "created_at"])
def test_an_incremental_refresh_appends_the_new_rows_and_equals_a_full_read(
    orders: Postgres, tmp_path: Path, column: str
) -> None:
    first = profile(orders, tmp_path, watermark=column)
    assert first.phase == "Succeeded", first.error
    assert first.watermark is not None
    nothing_new = profile(orders, tmp_path, watermark=column, previous=first)
    assert (nothing_new.fingerprint, nothing_new.rows) == (first.fingerprint, ROWS)

    orders.execute(
        "INSERT INTO orders SELECT i, 1.5, 'east', timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute', "
        f"false FROM generate_series({ROWS + 1}, {ROWS + 250}) AS i"
    )
    # Rows below the watermark are never read again: a change to one does not reach the incremental version.
    orders.execute("UPDATE orders SET region = 'west' WHERE id = 1")
    incremental = profile(orders, tmp_path, watermark=column, previous=first)
    assert incremental.phase == "Succeeded", incremental.error
    assert incremental.rows == ROWS + 250
    assert incremental.fingerprint != first.fingerprint
    assert incremental.watermark != first.watermark
    frame = stored(tmp_path, incremental)
    assert frame["id"].tolist()[-2:] == [ROWS + 249, ROWS + 250]
    assert frame["region"].iloc[0] == "south"

    orders.execute("UPDATE orders SET region = 'south' WHERE id = 1")
    full = profile(orders, tmp_path, watermark=column)
    assert full.fingerprint == incremental.fingerprint  # the same table read whole: the same version


def test_a_contract_is_checked_on_every_version_read(orders: Postgres, tmp_path: Path) -> None:
    expectations = DatasetExpectations.model_validate(
        {
            "minRows": 100_000,
            "uniqueKey": ["id"],
            "columns": [
                {"name": "amount", "type": "number", "min": 0, "max": 100, "maxNullFraction": 0},
                {"name": "region", "type": "string", "allowedValues": ["north", "south", "east", "west"]},
            ],
        }
    )
    good = profile(orders, tmp_path, expectations=expectations)
    assert good.phase == "Succeeded" and good.contract_checked and not good.contract_violated
    orders.execute(
        "UPDATE orders SET amount = -5, region = 'mars' WHERE id <= 10",
        "UPDATE orders SET id = 1 WHERE id = 2",
    )
    bad = profile(orders, tmp_path, expectations=expectations)
    assert bad.phase == "Succeeded" and bad.contract_violated
    assert bad.fingerprint != good.fingerprint
    text = "\n".join(bad.contract_failures or [])
    assert "column amount: 10 values below the minimum 0" in text
    assert "column region: 10 values outside the allowed ones" in text
    assert "unique key (id): 1 rows repeat a key" in text


def test_a_wrong_password_fails_without_showing_it(orders: Postgres, tmp_path: Path) -> None:
    report = profile(orders, tmp_path, password=WRONG_PASSWORD)
    assert report.phase == "Failed" and report.reason == "SourceUnreadable"
    assert "password authentication failed" in (report.error or "")
    assert WRONG_PASSWORD not in report.to_termination_message()


def test_a_server_asking_for_the_password_in_clear_text_never_gets_it(
    orders: Postgres, tmp_path: Path
) -> None:
    orders.execute(
        "DROP ROLE IF EXISTS gyre_cleartext",
        f"CREATE ROLE gyre_cleartext LOGIN PASSWORD '{WRONG_PASSWORD}'",
        "GRANT SELECT ON orders TO gyre_cleartext",
    )
    report = profile(orders, tmp_path, user="gyre_cleartext", password=WRONG_PASSWORD)
    assert report.phase == "Failed" and report.reason == "SourceUnreadable"
    assert 'authentication method requirement "scram-sha-256" failed' in (report.error or "")
    assert "cleartext password" in (report.error or "")
    assert WRONG_PASSWORD not in (report.error or "")


def test_the_source_policy_refuses_a_database_host(orders: Postgres, tmp_path: Path) -> None:
    report = profile(orders, tmp_path, host="169.254.169.254")
    assert report.phase == "Failed" and report.reason == "SourceRefused"
    assert "refusedHosts" in (report.error or "")


def run_entrypoint(
    pg: Postgres, tmp_path: Path, password: str
) -> tuple[int, dict[str, Any], dict[str, bytes]]:
    """`python -m gyre profile` as the pod runs it: the Secret's keys in the environment, the spec as JSON."""
    store = tmp_path / "store"
    termination = tmp_path / "termination-log"
    spec = {
        "source": {"sql": sql_source(pg).model_dump(by_alias=True, exclude_none=True)},
        "target": "returned",
        "schema": {"drop": ["created_at"]},
    }
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "GYRE_TERMINATION_LOG": str(termination),
        "GYRE_SOURCE_POLICY": policy_for(pg).to_json(),
        "GYRE_DATASET_SPEC": json.dumps(spec),
        "GYRE_SQL_USER": pg.user,
        "GYRE_SQL_PASSWORD": password,
    }
    location = f"postgresql://{pg.host}:{pg.port}/{pg.database}"
    args = [
        "profile",
        "--store",
        f"file://{store}",
        "--namespace",
        "ml",
        "--name",
        "orders",
        "--source",
        location,
    ]
    done = subprocess.run(
        [sys.executable, "-m", "gyre", *args, "--target", "returned"],
        env=environ,
        capture_output=True,
        timeout=300,
        check=False,
    )
    outputs = {"stdout": done.stdout, "stderr": done.stderr, "termination message": termination.read_bytes()}
    outputs |= {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    return done.returncode, json.loads(termination.read_text()), outputs


@pytest.mark.parametrize("right", [True, False], ids=["right password", "wrong password"])
def test_the_entrypoint_leaves_the_credentials_out_of_every_output(
    orders: Postgres, tmp_path: Path, right: bool
) -> None:
    password = orders.password if right else WRONG_PASSWORD
    code, report, outputs = run_entrypoint(orders, tmp_path, password)
    assert code == (0 if right else 1), report
    assert report["phase"] == ("Succeeded" if right else "Failed")
    if right:
        assert report["rows"] == ROWS and any(name.endswith("profile.json") for name in outputs)
    leaks = [name for name, data in outputs.items() if password.encode() in data]
    assert leaks == []
