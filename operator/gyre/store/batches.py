"""Gzipped JSON-lines batches named by their flush time: the file format of the prediction log and of the model
server's feedback files (docs/architecture.md, "Prediction log" and "Ground-truth feedback")."""

from __future__ import annotations

import gzip
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from gyre.store.store import ArtifactStore

__all__ = ["encode_jsonl_gz", "write_stamped_batch"]

_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def encode_jsonl_gz(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Gzipped JSON lines (numpy scalars and arrays allowed; NaN becomes null)."""
    lines = b"".join(orjson.dumps(row, option=_ORJSON_OPTS) + b"\n" for row in rows)
    # mtime=0 keeps the bytes deterministic; level 6 is the usual speed/size balance.
    return gzip.compress(lines, compresslevel=6, mtime=0)


def write_stamped_batch(
    store: ArtifactStore,
    rows: Sequence[Mapping[str, Any]],
    path_at: Callable[[int], str],
    *,
    now_ms: int | None = None,
) -> str | None:
    """Write `rows` to `path_at(unix_ms)`; returns the store-relative path, or None when `rows` is empty.

    `unix_ms` is the flush time (`now_ms`, default now), raised if needed to the newest row's `ts` (unix seconds),
    so no row in a file is newer than its name says: readers skip whole files older than a window on that
    promise. Local stores write atomically (temp file and rename), so a concurrent reader never sees half a batch.
    Blocking: call it from a thread in async code.
    """
    if not rows:
        return None
    stamp = int(time.time() * 1000) if now_ms is None else int(now_ms)
    newest = max((float(r["ts"]) for r in rows if isinstance(r.get("ts"), int | float)), default=0.0)
    stamp = max(stamp, math.ceil(newest * 1000))
    path = path_at(stamp)
    store.write_bytes(path, encode_jsonl_gz(rows))
    return path
