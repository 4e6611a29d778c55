"""The prediction log on the artifact store: the writer used by the model server, and the window reader used by
drift checks.

Layout (docs/architecture.md): `predictions/{ns}/{deployment}/{YYYY-MM-DD}/{unix_ms}-{pod}.jsonl.gz`, one gzipped
JSON-lines object per flush, each line `{"ts": float, "model": str, "version": str, "inputs": {feature: value},
"outputs": ...}`. `unix_ms` is the flush time, so no row in a file is newer than its name says; the reader relies on
that to skip whole files older than the window.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gyre.drift.check import CurrentData, DriftConfig, DriftReport, check, resolve_columns
from gyre.drift.profile import ReferenceProfile
from gyre.store.batches import encode_jsonl_gz, write_stamped_batch
from gyre.store.layout import prediction_batch_path, predictions_dir
from gyre.store.store import ArtifactStore

__all__ = [
    "PredictionBatch",
    "WindowInfo",
    "check_window",
    "encode_prediction_batch",
    "iter_prediction_batches",
    "read_window",
    "write_prediction_batch",
]


def _store(root: str | ArtifactStore) -> ArtifactStore:
    return root if isinstance(root, ArtifactStore) else ArtifactStore(root)


def encode_prediction_batch(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Gzipped JSON lines of prediction rows (numpy scalars and arrays allowed; NaN becomes null)."""
    return encode_jsonl_gz(rows)


def write_prediction_batch(
    fs_root: str | ArtifactStore,
    namespace: str,
    deployment: str,
    pod: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    now_ms: int | None = None,
) -> str | None:
    """Write one flush of prediction rows; returns the store-relative path, or None when `rows` is empty.

    Rows should carry `ts` (unix seconds), `model`, `version`, `inputs` and `outputs`. The file name uses the flush
    time (`now_ms`, default now), which must not be older than any row. Local stores write atomically (temp file and
    rename), so a concurrent reader never sees half a batch. Blocking: call it from a thread in async code.
    """
    return write_stamped_batch(
        _store(fs_root), rows, lambda ms: prediction_batch_path(namespace, deployment, ms, pod), now_ms=now_ms
    )


@dataclass
class PredictionBatch:
    """The rows of one log file that fall inside the window."""

    path: str
    unix_ms: int
    rows: list[dict[str, Any]]


@dataclass
class WindowInfo:
    """What a window read covered."""

    rows: int = 0
    files_read: int = 0
    files_skipped: int = 0
    """Unreadable files (truncated gzip, bad JSON): skipped, not fatal."""
    bad_rows: int = 0
    """Lines without an `inputs` object."""
    oldest_ts: float | None = None
    newest_ts: float | None = None
    hit_max_rows: bool = False
    """The window reached max_rows (older rows, if any, were not read)."""
    skipped_paths: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the drift report."""
        return {
            "rows": self.rows,
            "filesRead": self.files_read,
            "filesSkipped": self.files_skipped,
            "badRows": self.bad_rows,
            "oldestTs": self.oldest_ts,
            "newestTs": self.newest_ts,
            "hitMaxRows": self.hit_max_rows,
        }


def _parse_stamp(name: str) -> int | None:
    if not name.endswith(".jsonl.gz"):
        return None
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _row_ts(row: Mapping[str, Any]) -> float:
    ts = row.get("ts")
    return float(ts) if isinstance(ts, int | float) else 0.0


def _seconds(max_age: float | timedelta | None) -> float | None:
    if max_age is None:
        return None
    seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else float(max_age)
    if seconds <= 0:
        raise ValueError(f"max_age must be positive, got {max_age!r}")
    return seconds


def _list_files(store: ArtifactStore, prefix: str, cutoff_ms: float | None) -> Iterator[tuple[int, str]]:
    """(stamp, path) of the log files, newest first, listing one day directory at a time so that a window
    satisfied by today's files never lists last year's."""
    try:
        days = store.list_names(prefix)
    except FileNotFoundError:
        return
    cutoff_day = (
        datetime.fromtimestamp(cutoff_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
        if cutoff_ms is not None
        else None
    )
    for day in sorted(days, reverse=True):
        if len(day) != 10 or day[4] != "-" or (cutoff_day is not None and day < cutoff_day):
            continue
        try:
            names = store.list_names(f"{prefix}/{day}")
        except (FileNotFoundError, NotADirectoryError):
            continue
        found: list[tuple[int, str]] = []
        for name in names:
            stamp = _parse_stamp(name)
            if stamp is None or (cutoff_ms is not None and stamp < cutoff_ms):
                continue
            found.append((stamp, f"{prefix}/{day}/{name}"))
        # A file's day is its stamp's UTC day, so sorting within days keeps the global newest-first order.
        yield from sorted(found, reverse=True)


def iter_prediction_batches(
    fs_root: str | ArtifactStore,
    namespace: str,
    deployment: str,
    *,
    max_rows: int | None = None,
    max_age: float | timedelta | None = None,
    now: float | None = None,
    info: WindowInfo | None = None,
) -> Iterator[PredictionBatch]:
    """Batches of the newest prediction rows, newest file first, at most `max_rows` rows in total and none older
    than `max_age` (seconds or a timedelta) before `now` (unix seconds, default the current time).

    Only one file is decompressed at a time, so memory is bounded by the largest batch. Unreadable files are
    skipped and counted in `info`.
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    store = _store(fs_root)
    info = info if info is not None else WindowInfo()
    age = _seconds(max_age)
    now_s = time.time() if now is None else now
    cutoff = now_s - age if age is not None else None
    cutoff_ms = cutoff * 1000 if cutoff is not None else None
    for stamp, path in _list_files(store, predictions_dir(namespace, deployment), cutoff_ms):
        remaining = None if max_rows is None else max_rows - info.rows
        try:
            with store.open_read(path) as fh:
                raw = gzip.decompress(fh.read())
            rows = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        except (OSError, EOFError, zlib.error, orjson.JSONDecodeError) as exc:
            info.files_skipped += 1
            info.skipped_paths.append(f"{path}: {type(exc).__name__}")
            continue
        info.files_read += 1
        kept: list[dict[str, Any]] = []
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("inputs"), dict):
                info.bad_rows += 1
                continue
            ts = row.get("ts")
            if cutoff is not None and isinstance(ts, int | float) and ts < cutoff:
                continue
            if now is not None and isinstance(ts, int | float) and ts > now_s:
                continue
            kept.append(row)
        if remaining is not None and len(kept) > remaining:
            kept.sort(key=_row_ts, reverse=True)
            kept = kept[:remaining]
        if not kept:
            continue
        info.rows += len(kept)
        stamps = [float(r["ts"]) for r in kept if isinstance(r.get("ts"), int | float)]
        if stamps:
            info.oldest_ts = min(stamps) if info.oldest_ts is None else min(info.oldest_ts, *stamps)
            info.newest_ts = max(stamps) if info.newest_ts is None else max(info.newest_ts, *stamps)
        yield PredictionBatch(path=path, unix_ms=stamp, rows=kept)
        if max_rows is not None and info.rows >= max_rows:
            # Stop before listing or opening anything else.
            info.hit_max_rows = True
            return


def read_window(
    profile: ReferenceProfile,
    fs_root: str | ArtifactStore,
    namespace: str,
    deployment: str,
    *,
    max_rows: int | None = 100_000,
    max_age: float | timedelta | None = None,
    now: float | None = None,
    columns: Sequence[str] | None = None,
) -> tuple[CurrentData, WindowInfo]:
    """Accumulate the window's `inputs` into CurrentData for the profiled columns (see iter_prediction_batches).

    Blocking I/O and CPU: run it in a thread or a Job, never on the event loop.
    """
    current = CurrentData(profile, columns)
    info = WindowInfo()
    for batch in iter_prediction_batches(
        fs_root, namespace, deployment, max_rows=max_rows, max_age=max_age, now=now, info=info
    ):
        current.add_records([row["inputs"] for row in batch.rows])
    return current, info


def check_window(
    profile: ReferenceProfile,
    fs_root: str | ArtifactStore,
    namespace: str,
    deployment: str,
    *,
    max_rows: int | None = 100_000,
    max_age: float | timedelta | None = None,
    config: DriftConfig | None = None,
    now: float | None = None,
) -> DriftReport:
    """Read the window and check it: what a DriftMonitor run does. The report's `window` says what was read.

    Raises DriftConfigError when the configuration does not fit the profile. Blocking: run it in a thread or a Job.
    """
    config = config or DriftConfig()
    columns = resolve_columns(profile, config)
    current, info = read_window(
        profile, fs_root, namespace, deployment, max_rows=max_rows, max_age=max_age, now=now, columns=columns
    )
    report = check(profile, current, config)
    report.window = info.as_dict()
    return report
