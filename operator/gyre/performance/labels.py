"""Ground-truth labels under a deployment's feedback prefix (docs/architecture.md, "Ground-truth feedback").

Two kinds of file, both rows of `id`, `label` and optional `ts` (when the label was observed: unix seconds; bulk
files may also hold ISO 8601 text or a timestamp column, naive times being UTC):

- `{YYYY-MM-DD}/{unix_ms}-{pod}.jsonl.gz` batches the model server's feedback endpoint writes;
- bulk `.csv`, `.csv.gz` and `.parquet` files users drop anywhere under the prefix; a row without `ts` takes the
  file's modification time.

Reading never fails on bad content: an unreadable file or a row without an id is counted and skipped.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gyre.store.layout import feedback_dir
from gyre.store.store import ArtifactStore

__all__ = [
    "LABEL_SUFFIXES",
    "LabelRead",
    "LabelRecord",
    "parse_label_file",
    "read_labels",
]

LABEL_SUFFIXES = (".jsonl.gz", ".csv", ".csv.gz", ".parquet")
"""The file types read under a feedback prefix; other files are ignored."""


@dataclass(frozen=True)
class LabelRecord:
    """One label as read: the prediction id it belongs to, the label value and when it was observed."""

    id: str
    label: Any
    ts: float | None
    source: str
    """The file it came from (store-relative path, or the local path for `gyre perf check`)."""


@dataclass
class LabelRead:
    """What reading the feedback files found."""

    records: list[LabelRecord] = field(default_factory=list)
    files_read: int = 0
    files_skipped: int = 0
    """Unreadable files (bad gzip, bad JSON or Parquet, no `id`/`label` column): skipped, not fatal."""
    rows_without_id: int = 0
    """Rows with no usable `id`: they cannot be joined and are counted, not kept."""
    skipped_paths: list[str] = field(default_factory=list)


class _BadFile(ValueError):
    pass


def _plain(value: Any) -> Any:
    """numpy and pandas scalars to Python ones; NaN and NA to None."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, TypeError):
            value = item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _as_id(value: Any) -> str | None:
    value = _plain(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _as_ts(value: Any, default: float | None) -> float | None:
    """Unix seconds from a number, a numeric or ISO 8601 string, or a datetime (naive means UTC); else
    `default` (the file's time)."""
    value = _plain(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return default
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


def _rows_jsonl(data: bytes) -> Iterator[Mapping[str, Any]]:
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise _BadFile(f"not gzip: {exc}") from exc
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _BadFile(f"bad JSON line: {exc}") from exc
        yield row if isinstance(row, dict) else {}


def _rows_table(data: bytes, name: str) -> Iterator[Mapping[str, Any]]:
    import pandas as pd

    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            # Ids are strings whatever they look like ("007" must stay "007"); labels are inferred.
            compression = "gzip" if name.endswith(".gz") else None
            frame = pd.read_csv(io.BytesIO(data), dtype={"id": str}, compression=compression)
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        raise _BadFile(f"cannot read: {exc}") from exc
    if "id" not in frame.columns or "label" not in frame.columns:
        raise _BadFile(f"needs columns id and label, has {list(frame.columns)[:10]}")
    columns = ["id", "label"] + (["ts"] if "ts" in frame.columns else [])
    for values in frame[columns].itertuples(index=False, name=None):
        yield dict(zip(columns, values, strict=True))


def parse_label_file(
    name: str, data: bytes, *, default_ts: float | None, source: str, out: LabelRead
) -> None:
    """Add the labels of one file's bytes to `out` (`name` decides the format; see LABEL_SUFFIXES)."""
    lower = name.lower()
    try:
        rows: Iterable[Mapping[str, Any]]
        if lower.endswith(".jsonl.gz"):
            rows = list(_rows_jsonl(data))
        elif lower.endswith((".csv", ".csv.gz", ".parquet")):
            rows = list(_rows_table(data, lower))
        else:
            raise _BadFile("unsupported file type")
    except _BadFile as exc:
        out.files_skipped += 1
        out.skipped_paths.append(f"{source}: {exc}")
        return
    out.files_read += 1
    for row in rows:
        ident = _as_id(row.get("id"))
        if ident is None:
            out.rows_without_id += 1
            continue
        out.records.append(
            LabelRecord(
                id=ident, label=_plain(row.get("label")), ts=_as_ts(row.get("ts"), default_ts), source=source
            )
        )


def read_labels(
    fs_root: str | ArtifactStore,
    namespace: str,
    deployment: str,
    *,
    since: float | None = None,
) -> LabelRead:
    """Every label under `feedback_dir(namespace, deployment)`, from files modified at or after `since` (unix
    seconds; a label file cannot hold labels for predictions made after it was written, so files older than a
    window's oldest prediction are not read).

    Blocking I/O: run it in a thread or a Job.
    """
    store = fs_root if isinstance(fs_root, ArtifactStore) else ArtifactStore(fs_root)
    out = LabelRead()
    for path, modified in store.find_files(feedback_dir(namespace, deployment)):
        name = path.rsplit("/", 1)[-1]
        if name.startswith(".") or not name.lower().endswith(LABEL_SUFFIXES):
            continue  # temp files of atomic writes, READMEs, ...
        stamp = _batch_stamp(name)
        written = stamp / 1000 if stamp is not None else modified
        if since is not None and written is not None and written < since:
            continue
        try:
            data = store.read_bytes(path)
        except Exception as exc:  # a file deleted under us or refused: skip it, never fail the check
            out.files_skipped += 1
            out.skipped_paths.append(f"{path}: {type(exc).__name__}")
            continue
        parse_label_file(name, data, default_ts=written, source=path, out=out)
    return out


def _batch_stamp(name: str) -> int | None:
    """The flush time of a `{unix_ms}-{pod}.jsonl.gz` batch written by the server, else None."""
    if not name.endswith(".jsonl.gz"):
        return None
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None
