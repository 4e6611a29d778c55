"""The text a sql source turns into: its policy location, the incremental query, the connection string, and the
scrubbing of credentials from messages. The reads themselves run against PostgreSQL in
tests/integration/test_sql_source.py."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from gyre.api.dataset import DatasetSource, SqlSource
from gyre.data.errors import DataError
from gyre.data.sql import SqlCredentials, connection_uri, incremental_query, scrub, sql_literal, watermark_of
from gyre.policy.sources import SourcePolicy, SourceScope, check_source

SQL: dict[str, Any] = {
    "host": "db.example.com",
    "database": "shop",
    "userSecretRef": {"name": "db", "key": "user"},
    "query": "SELECT * FROM orders ORDER BY id;",
    "watermark": "id",
}


def test_a_sql_source_is_located_without_credentials() -> None:
    source = DatasetSource.model_validate({"sql": SQL | {"port": 6432}})
    assert source.location == "postgresql://db.example.com:6432/shop"
    assert DatasetSource.model_validate({"sql": SQL | {"host": "fd00::5"}}).location.startswith(
        "postgresql://[fd00::5]:5432/"
    )


@pytest.mark.parametrize(
    "bad",
    [{"host": "db.example.com/x"}, {"host": "user:pw@db"}, {"watermark": 'id" OR 1=1 --'}, {"port": 0}],
)
def test_hosts_and_watermark_columns_are_plain_names(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SqlSource.model_validate(SQL | bad)


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("db.example.com", None),
        ("10.0.0.5", None),
        ("127.0.0.1", "refusedHosts"),
        ("169.254.169.254", "refusedHosts"),
        ("localhost", "refusedHosts"),
        ("2130706433", "syntax"),
    ],
)
def test_the_source_policy_decides_on_a_database_host(host: str, rule: str | None) -> None:
    location = DatasetSource.model_validate({"sql": SQL | {"host": host}}).location
    refusal = check_source(location, SourceScope(SourcePolicy()))
    assert (refusal.rule if refusal else None) == rule


def test_an_admin_can_leave_postgresql_out_of_the_schemes() -> None:
    location = DatasetSource.model_validate({"sql": SQL}).location
    refusal = check_source(location, SourceScope(SourcePolicy(schemes=("builtin", "https"))))
    assert refusal is not None and refusal.rule == "schemes" and "'postgresql'" in refusal.message


def test_the_incremental_query_reads_above_the_watermark_in_its_order() -> None:
    query = incremental_query("SELECT * FROM orders ORDER BY id;", "id", "100")
    assert query == (
        'SELECT * FROM (SELECT * FROM orders ORDER BY id) AS gyre_source WHERE "id" > \'100\' ORDER BY "id"'
    )


def test_a_watermark_value_cannot_escape_its_literal() -> None:
    assert sql_literal("2026-01-01' OR '1'='1") == "'2026-01-01'' OR ''1''=''1'"
    with pytest.raises(DataError):
        sql_literal("a\0b")


def test_watermarks_are_written_as_postgresql_reads_them() -> None:
    frame = pd.DataFrame(
        {"id": [3, 1, None], "at": pd.to_datetime(["2026-01-02T03:04:05Z", "2026-01-01T00:00:00Z", None])}
    )
    assert watermark_of(frame, "id") == "3"  # an integer column with a missing value arrives as float
    assert watermark_of(frame, "at") == "2026-01-02T03:04:05+00:00"
    with pytest.raises(DataError):
        watermark_of(frame, "missing")


def test_credentials_are_quoted_into_the_connection_string_and_hidden_elsewhere() -> None:
    credentials = SqlCredentials("ana@shop", "p@ss:w/rd?")
    uri = connection_uri(SqlSource.model_validate(SQL), credentials, hostaddr="10.0.0.5")
    assert uri.startswith("postgresql://ana%40shop:p%40ss%3Aw%2Frd%3F@db.example.com:5432/shop?")
    assert "hostaddr=10.0.0.5" in uri and "sslmode=prefer" in uri
    assert "require_auth=scram-sha-256" in uri  # the password never leaves as clear text or an md5 hash
    assert "require_auth" not in connection_uri(SqlSource.model_validate(SQL), SqlCredentials("ana"))
    message = f'FATAL: password authentication failed for user "ana@shop" at {uri}'
    cleaned = scrub(message, credentials.secrets())
    assert "ana" not in cleaned and "p@ss" not in cleaned and "p%40ss" not in cleaned
    assert "ana" not in repr(credentials)
