"""Content fingerprints of tables: sha256 over a canonical serialization.

The serialization covers column names, a logical type per column and every value, in row and column order.
Logical types erase storage details, so the same data read from csv or parquet (or held as numpy, nullable or
pyarrow-backed dtypes) fingerprints the same:

- integers (any width, signed or not, nullable or not) -> int64 values plus a missing mask
- floats -> float64 bytes, every NaN written as one canonical NaN
- booleans -> one byte per value plus a missing mask
- strings, objects and categoricals -> the values' text, length-prefixed; missing values get a marker
- datetimes -> int64 nanoseconds since the epoch (UTC)

Row order is part of the content on purpose: a seeded train/test split depends on it, so equal fingerprints must
mean the trainer sees exactly the same rows in the same order, and a model is reproducible from its fingerprint.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FINGERPRINT_VERSION", "fingerprint_frame", "logical_type"]

FINGERPRINT_VERSION = b"gyre-fingerprint-v1"
_MISSING = b"\xff\xff\xff\xff"


def logical_type(series: pd.Series[Any]) -> str:
    """The storage-independent type of a column: int, float, bool, datetime or string."""
    from pandas.api import types

    dtype = series.dtype
    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype):
        return "int"
    if types.is_float_dtype(dtype):
        return "float"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def _hash_column(digest: Any, series: pd.Series[Any]) -> None:
    import pandas as pd

    kind = logical_type(series)
    name = str(series.name).encode()
    digest.update(struct.pack("<I", len(name)) + name + kind.encode() + b"\0")
    missing = series.isna().to_numpy(dtype=bool)
    if kind in ("int", "bool", "datetime"):
        digest.update(np.packbits(missing).tobytes())
        if kind == "datetime":
            values = pd.to_datetime(series, utc=True).dt.tz_localize(None).astype("datetime64[ns]")
            ints = values.to_numpy(dtype="datetime64[ns]").view("<i8").copy()
        elif kind == "bool":
            ints = series.fillna(False).to_numpy(dtype="<i8", copy=True)
        else:
            ints = series.fillna(0).to_numpy(dtype="<i8", copy=True)
        ints[missing] = 0
        digest.update(ints.astype("<i8" if kind != "bool" else "u1").tobytes())
        return
    if kind == "float":
        floats = series.to_numpy(dtype="<f8", na_value=np.nan).copy()
        # Every NaN (np.nan, pd.NA, None, any payload) becomes the one canonical quiet NaN.
        floats[np.isnan(floats)] = np.nan
        digest.update(floats.tobytes())
        return
    parts: list[bytes] = []
    for value, is_missing in zip(series.astype(object).tolist(), missing.tolist(), strict=True):
        if is_missing:
            parts.append(_MISSING)
        else:
            text = str(value).encode()
            parts.append(struct.pack("<I", len(text)) + text)
    digest.update(b"".join(parts))


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """`sha256:<hex>` of the table's content (names, logical types, values; row and column order matter)."""
    digest = hashlib.sha256()
    digest.update(FINGERPRINT_VERSION + b"\n")
    digest.update(struct.pack("<QQ", frame.shape[0], frame.shape[1]))
    for position in range(frame.shape[1]):
        _hash_column(digest, frame.iloc[:, position])
    return "sha256:" + digest.hexdigest()
