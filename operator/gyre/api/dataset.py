"""Dataset: a versioned, fingerprinted tabular dataset with a schema and a stored reference profile."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field

from gyre.api.common import (
    ApiModel,
    Condition,
    Duration,
    Fingerprint,
    ResourceRequirements,
    StatusModel,
)

__all__ = [
    "ColumnKind",
    "ColumnStatus",
    "CsvOptions",
    "DatasetPhase",
    "DatasetSource",
    "DatasetSpec",
    "DatasetStatus",
    "DatasetVersion",
    "SchemaOverrides",
]


# How Gyre treats a column, everywhere: the Dataset's schema, preprocessing, the model manifest and the drift tests.
# No docstring: pydantic would copy it into the CRD under every field of this type.
class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BINARY = "binary"


DatasetPhase = Literal["Pending", "Profiling", "Ready", "Failed"]

SOURCE_URI_PATTERN = r"^(builtin://[a-z0-9_]+|file:///.+|s3://[^/]+/.+|gs://[^/]+/.+|https?://.+)$"


class CsvOptions(ApiModel):
    """How to read a CSV source; anything not listed here uses pandas' defaults."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    """Field separator, one character."""
    header: bool = True
    """Whether the first row holds the column names."""
    encoding: str = Field(default="utf-8", max_length=32)
    """Text encoding of the file."""
    na_values: list[str] | None = Field(default=None, max_length=32)
    """Extra strings to read as missing values, besides pandas' defaults (empty, NA, NaN, ...)."""


class DatasetSource(ApiModel):
    """Where the data lives and how to read it."""

    # Admission refuses what no source policy allows (the operator's policy check says the same, for old objects).
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!self.uri.startsWith('file://') || !self.uri.matches('/[.][.]?(/|$)')",
                    "message": "a file:// source may not have . or .. path segments",
                },
                {
                    "rule": "self.uri.startsWith('http') || !self.uri.contains('::')",
                    "message": "a source is one URL, not an fsspec chain (::)",
                },
            ]
        }
    )

    uri: str = Field(pattern=SOURCE_URI_PATTERN, max_length=2048)
    """The data location: `builtin://iris` (scikit-learn's bundled datasets: iris, wine, breast_cancer, diabetes,
    ...), `file:///path`, `s3://bucket/key`, `gs://bucket/key` or `http(s)://...`. The cluster's source policy
    decides which are read: by default no loopback, link-local or cloud metadata host, and `file://` only under the
    namespace's `sources/` area of the artifact store (`/var/lib/gyre/artifacts/sources/` for the pvc store) or a
    directory the admin declared; a refused source is the condition reason SourceRefused."""
    format: Literal["auto", "csv", "parquet"] = "auto"
    """File format; `auto` decides from the file extension."""
    csv: CsvOptions | None = None
    """CSV read options; only used when the format is (or resolves to) csv."""


class SchemaOverrides(ApiModel):
    """Corrections to the inferred schema."""

    kinds: dict[str, ColumnKind] | None = Field(default=None, max_length=1024)
    """Force a column's kind, e.g. `{zip_code: categorical}` for numbers that are really labels."""
    drop: list[str] | None = Field(default=None, max_length=1024)
    """Columns to leave out of the dataset entirely (identifiers, leaks, free text)."""


class DatasetSpec(ApiModel):
    """Desired state of a Dataset."""

    source: DatasetSource
    """Where to read the data from."""
    target: str | None = Field(default=None, max_length=256)
    """The column TrainingRuns predict by default; it must exist in the data."""
    schema_: SchemaOverrides | None = Field(default=None, alias="schema")
    """Overrides of the inferred column kinds, and columns to drop."""
    refresh_interval: Duration | None = None
    """Re-read the source this often (e.g. `1h`); new content at the source becomes a new version. Unset means
    profile once per spec change."""
    history_limit: int = Field(default=10, ge=1, le=100)
    """How many versions status.history keeps."""
    resources: ResourceRequirements | None = None
    """Resources of the profiling Job's container."""
    image: str | None = Field(default=None, max_length=512)
    """Image of the profiling Job; defaults to the operator's GYRE_IMAGE."""
    active_deadline_seconds: int = Field(default=1800, ge=10, le=86400)
    """Fail the profiling Job when it runs longer than this."""


class ColumnStatus(StatusModel):
    """One column of the current version."""

    name: str
    """Column name."""
    kind: ColumnKind
    """How Gyre treats the column: numeric, categorical or binary."""
    dtype: str
    """The pandas dtype it was read as."""


class DatasetVersion(StatusModel):
    """One past version of the dataset."""

    version: int
    """Version number; increments only when the content fingerprint changes."""
    fingerprint: Fingerprint
    """Content fingerprint of that version."""
    rows: int
    """Number of rows."""
    created_at: datetime
    """When the version was first seen."""


class DatasetStatus(StatusModel):
    """Observed state of a Dataset."""

    phase: DatasetPhase | None = None
    """Pending, Profiling, Ready or Failed."""
    fingerprint: Fingerprint | None = None
    """Content fingerprint (sha256) of the current version."""
    version: int | None = None
    """Current version number; increments only when the fingerprint changes."""
    rows: int | None = None
    """Number of rows of the current version."""
    columns: list[ColumnStatus] | None = None
    """Schema of the current version (possibly cut short for very wide tables; see columnCount)."""
    column_count: int | None = None
    """Number of columns of the current version."""
    target: str | None = None
    """The target column, when the spec names one."""
    data_uri: str | None = None
    """Content-addressed copy of the current version in the artifact store (parquet)."""
    profile_uri: str | None = None
    """Reference profile of the current version (used by DriftMonitors)."""
    history: list[DatasetVersion] | None = None
    """The most recent versions, newest first (see spec.historyLimit)."""
    job_name: str | None = None
    """The profiling Job of the current generation or refresh."""
    last_profile_time: datetime | None = None
    """When the source was last read successfully."""
    conditions: list[Condition] | None = None
    """Ready: the current version is profiled and usable."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
