"""Dataset sources: fsspec URIs (file, s3, gs, http) in csv or parquet, and scikit-learn's bundled datasets."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

from gyre.data.errors import DataError
from gyre.policy.sources import redact

if TYPE_CHECKING:
    import pandas as pd

    from gyre.data.guard import SourceGuard

__all__ = [
    "BUILTIN_DATASETS",
    "BUILTIN_TARGET",
    "CsvReadOptions",
    "SourceFormat",
    "load_source",
    "resolve_format",
]

SourceFormat = Literal["auto", "csv", "parquet"]

BUILTIN_TARGET = "target"
"""Name of the label column of every builtin dataset."""

# Loaders that ship their data inside scikit-learn (no download). Values are sklearn.datasets function names.
BUILTIN_DATASETS: dict[str, str] = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
}

_CSV_EXTENSIONS = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz", ".tsv", ".txt")
_PARQUET_EXTENSIONS = (".parquet", ".pq", ".parq")
_SCHEMES = ("file", "s3", "gs", "gcs", "http", "https", "memory")


@dataclass(frozen=True)
class CsvReadOptions:
    """How to parse CSV (mirrors gyre.api.dataset.CsvOptions)."""

    delimiter: str = ","
    header: bool = True
    encoding: str = "utf-8"
    na_values: Sequence[str] = field(default_factory=tuple)


def resolve_format(uri: str, fmt: SourceFormat = "auto") -> Literal["csv", "parquet"]:
    """The concrete format of a source: explicit, or from the path's extension."""
    if fmt in ("csv", "parquet"):
        return fmt
    path = uri.split("?", 1)[0].lower()
    if path.endswith(_PARQUET_EXTENSIONS) or path.endswith("/"):
        return "parquet"
    if path.endswith(_CSV_EXTENSIONS):
        return "csv"
    raise DataError(
        f"cannot tell the format of {redact(uri)!r} from its extension; set format to csv or parquet",
        reason="UnknownFormat",
    )


def _load_builtin(name: str) -> pd.DataFrame:
    import sklearn.datasets

    from gyre.data.generated import GENERATED_DATASETS

    if name in GENERATED_DATASETS:
        return GENERATED_DATASETS[name]()
    loader_name = BUILTIN_DATASETS.get(name)
    if loader_name is None:
        known = ", ".join(sorted([*BUILTIN_DATASETS, *GENERATED_DATASETS]))
        raise DataError(f"unknown builtin dataset {name!r}; known: {known}", reason="UnknownBuiltin")
    loader: Callable[..., Any] = getattr(sklearn.datasets, loader_name)
    bunch = loader(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


@contextmanager
def _open(
    uri: str, scheme: str, guard: SourceGuard | None, storage_options: dict[str, Any]
) -> Iterator[IO[bytes]]:
    """The source's bytes, decompressed by its extension; through the guard's checked file or HTTP client."""
    import fsspec

    if guard is None or scheme not in ("file", "http", "https"):
        with fsspec.open(uri, "rb", compression="infer", **storage_options) as fh:
            yield fh
        return
    from fsspec.compression import compr
    from fsspec.utils import infer_compression

    with ExitStack() as stack:
        raw: IO[bytes]
        if scheme == "file":
            raw = stack.enter_context(guard.open_file(uri[len("file://") :]))
        else:
            from fsspec.implementations.http import HTTPFileSystem

            fs = HTTPFileSystem(get_client=guard.client, skip_instance_cache=True)
            raw = stack.enter_context(fs.open(uri, "rb"))
        codec = infer_compression(uri.split("?", 1)[0])
        yield stack.enter_context(compr[codec](raw, mode="rb")) if codec else raw


def load_source(
    uri: str,
    fmt: SourceFormat = "auto",
    *,
    csv: CsvReadOptions | None = None,
    storage_options: dict[str, Any] | None = None,
    guard: SourceGuard | None = None,
) -> pd.DataFrame:
    """Read a whole table from a source URI.

    `builtin://NAME` loads a scikit-learn bundled dataset, or a table gyre.data.generated makes, with its label in
    a `target` column. Anything else is
    opened through fsspec. With a `guard` (the profiling pod), the source policy is checked first, and then every
    file and connection the read opens. Raises DataError (with a reason) for refused sources, unknown schemes,
    builtins, formats and unreadable or empty sources.
    """
    import pandas as pd

    if guard is not None:
        guard.check()
    if uri.startswith("builtin://"):
        return _load_builtin(uri[len("builtin://") :].strip("/"))
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in _SCHEMES:
        if not scheme and posixpath.isabs(uri):
            uri, scheme = "file://" + uri, "file"
        else:
            raise DataError(
                f"unsupported source {redact(uri)!r}; use builtin://, file://, s3://, gs:// or http(s)://",
                reason="UnsupportedSource",
            )
    concrete = resolve_format(uri, fmt)
    opts = csv or CsvReadOptions()
    try:
        with _open(uri, scheme, guard, storage_options or {}) as fh:
            if concrete == "parquet":
                frame = pd.read_parquet(fh)
            else:
                frame = pd.read_csv(
                    fh,
                    sep=opts.delimiter,
                    header=0 if opts.header else None,
                    encoding=opts.encoding,
                    na_values=list(opts.na_values) or None,
                )
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow/fsspec raise many unrelated types for the same user problem
        refused = guard.error() if guard is not None else None
        if refused is not None:
            raise refused from exc  # whatever the transport made of a refusal, report the refusal
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"source not found: {redact(uri)}", reason="SourceNotFound") from exc
        if isinstance(exc, ImportError):
            raise DataError(
                f"no filesystem driver for {scheme}:// sources: {exc}", reason="UnsupportedSource"
            ) from exc
        raise DataError(
            f"cannot read {redact(uri)} as {concrete}: {str(exc).replace(uri, redact(uri))}",
            reason="SourceUnreadable",
        ) from exc
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise DataError(f"source {redact(uri)} has no rows or no columns", reason="EmptyDataset")
    frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise DataError(f"source {redact(uri)} has duplicate column names", reason="DuplicateColumns")
    return frame.reset_index(drop=True)
