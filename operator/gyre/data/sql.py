"""Dataset sql sources: a PostgreSQL query read into Arrow with the ADBC driver, in the profiling pod.

Credentials arrive as env vars from Secret keys (GYRE_SQL_USER, GYRE_SQL_PASSWORD) and go only into the connection
string; every message that leaves this module has them replaced by ***. A password is sent only as a SCRAM proof
(libpq's require_auth): a server that asks for it in clear text or as md5 is refused before it gets anything. The source policy decides on the host
before the connection (SourceGuard.check_name), on each address the name resolves to, and libpq is handed the
checked address (`hostaddr`), so it connects to what was checked (no DNS rebinding between check and use).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from gyre.api.dataset import SqlSource
from gyre.data.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from gyre.data.guard import SourceGuard

__all__ = [
    "SqlCredentials",
    "connection_uri",
    "incremental_query",
    "read_sql",
    "scrub",
    "sql_literal",
    "watermark_of",
]

_CONNECT_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class SqlCredentials:
    """What the pod read from the Secret keys; never printed (repr hides them)."""

    user: str
    password: str | None = None

    def __repr__(self) -> str:
        return "SqlCredentials(***)"

    def secrets(self) -> list[str]:
        """The values to scrub from messages (longest first, so a password containing the user name goes whole)."""
        values = [v for v in (self.password, self.user) if v]
        return sorted(values, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (and its URL-quoted form) replaced by ***."""
    for secret in secrets:
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, "***")
    return text


def sql_literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1): quotes doubled, no backslash
    escapes. PostgreSQL coerces it to the compared column's type (integer, timestamp, text)."""
    if "\0" in value:
        raise DataError("a watermark may not contain NUL", reason="InvalidWatermark")
    return "'" + value.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def incremental_query(query: str, watermark: str, after: str) -> str:
    """The rows of `query` whose `watermark` column is above `after`, in watermark order."""
    inner = query.strip().rstrip(";")
    column = _identifier(watermark)
    return f"SELECT * FROM ({inner}) AS gyre_source WHERE {column} > {sql_literal(after)} ORDER BY {column}"


def watermark_of(frame: pd.DataFrame, column: str) -> str | None:
    """The highest value of `column` as text PostgreSQL reads back as the same value (ISO 8601 for times)."""
    import pandas as pd

    if column not in frame.columns:
        raise DataError(
            f"the watermark column {column} is not in the query's result", reason="WatermarkMissing"
        )
    values = frame[column].dropna()
    if values.empty:
        return None
    highest = values.max()
    if isinstance(highest, pd.Timestamp):
        return str(highest.isoformat())
    if hasattr(highest, "item"):
        highest = highest.item()
    if isinstance(highest, float) and highest.is_integer():
        # An integer column with missing values arrives as float; PostgreSQL reads '3.0' as no integer.
        return str(int(highest))
    return str(highest)


def _checked_address(source: SqlSource, guard: SourceGuard | None) -> str | None:
    """Resolve the host and check every address; the first one, for libpq's hostaddr (None without a guard)."""
    if guard is None:
        return None
    by_name = guard.check_name(source.host)
    try:
        answers = socket.getaddrinfo(source.host, source.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DataError(
            f"cannot resolve the database host {source.host}: {exc}", reason="SourceUnreadable"
        ) from exc
    addresses = [str(info[4][0]) for info in answers]
    for address in addresses:
        guard.check_connect(address, by_name=by_name)
    return addresses[0]


def connection_uri(source: SqlSource, credentials: SqlCredentials, hostaddr: str | None = None) -> str:
    """The libpq URI with the credentials; it must never leave this process."""
    user = quote(credentials.user, safe="")
    auth = user + (":" + quote(credentials.password, safe="") if credentials.password else "")
    host = f"[{source.host}]" if ":" in source.host else source.host
    params: dict[str, Any] = {"sslmode": source.sslmode, "connect_timeout": _CONNECT_TIMEOUT_SECONDS}
    if credentials.password:
        # The spec names the server, and the Secret key could be any in the namespace: send the password only as a
        # SCRAM proof, never in clear text or as an md5 hash, whatever the server asks for.
        params["require_auth"] = "scram-sha-256"
    if hostaddr is not None:
        params["hostaddr"] = hostaddr
    database = quote(source.database, safe="")
    return f"postgresql://{auth}@{host}:{source.port}/{database}?{urlencode(params)}"


def read_sql(
    source: SqlSource,
    credentials: SqlCredentials,
    *,
    after: str | None = None,
    guard: SourceGuard | None = None,
) -> pd.DataFrame:
    """Run the source's query (only the rows above `after` when the source has a watermark) into a DataFrame.

    Raises DataError: SourceRefused (policy), SourceUnreadable (connection, authentication, query), with the
    credentials scrubbed from the message.
    """
    import adbc_driver_postgresql.dbapi as pg

    query = source.query
    if after is not None and source.watermark:
        query = incremental_query(source.query, source.watermark, after)
    hostaddr = _checked_address(source, guard)
    secrets = credentials.secrets()
    try:
        with pg.connect(connection_uri(source, credentials, hostaddr)) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            table = cursor.fetch_arrow_table()
    except DataError:
        raise
    except Exception as exc:  # the driver raises its own hierarchy (and OSError for sockets)
        refused = guard.error() if guard is not None else None
        if refused is not None:
            raise refused from None
        where = f"postgresql://{source.host}:{source.port}/{source.database}"
        detail = scrub(f"{type(exc).__name__}: {exc}", secrets)
        raise DataError(f"cannot read {where}: {detail}", reason="SourceUnreadable") from None
    frame: pd.DataFrame = table.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return frame
