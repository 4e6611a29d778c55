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
    LocalObjectReference,
    ResourceRequirements,
    StatusModel,
)

__all__ = [
    "ColumnExpectation",
    "ColumnKind",
    "ColumnStatus",
    "ContractStatus",
    "CsvOptions",
    "DatasetExpectations",
    "DatasetPhase",
    "DatasetSource",
    "DatasetSpec",
    "DatasetStatus",
    "DatasetVersion",
    "FeedbackMerge",
    "FeedbackSource",
    "LogicalType",
    "SchemaOverrides",
    "SecretKeyRef",
    "SqlSource",
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


class SecretKeyRef(ApiModel):
    """One key of a Secret in the Dataset's namespace; the pod gets it as an env var, the operator never reads it."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253)
    """Key in the Secret."""


class SqlSource(ApiModel):
    """A query against a PostgreSQL database, read in the profiling pod (ADBC, Arrow)."""

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:-]+$")
    """Database server name or IP. It is in the spec, not a Secret, so the source policy can decide on it before
    any pod runs (policy.sources `hosts` and `refusedHosts`, scheme `postgresql`)."""
    port: int = Field(default=5432, ge=1, le=65535)
    """Server port."""
    database: str = Field(min_length=1, max_length=63)
    """Database name."""
    user_secret_ref: SecretKeyRef
    """The user name, from a Secret key."""
    password_secret_ref: SecretKeyRef | None = None
    """The password, from a Secret key; unset for trust or certificate authentication."""
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    """libpq's sslmode."""
    query: str = Field(min_length=1, max_length=16384)
    """A SELECT whose rows are the dataset. Row order is part of a version's fingerprint: end it with ORDER BY
    (a key) so that an unchanged table always gives the same version."""
    watermark: str | None = Field(default=None, max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """A column that only grows (an id, an insertion time). A scheduled or requested refresh then reads only the
    rows above the last version's highest value and appends them to that version; a spec change reads everything
    again."""


FEEDBACK_SCHEME = "feedback"
"""The scheme of a feedback source's location (`feedback://<deployment>`), as the source policy names it."""


class FeedbackMerge(ApiModel):
    """An earlier Dataset version whose rows come first in every version built from feedback."""

    dataset_ref: LocalObjectReference
    """A Dataset in the same namespace (not this one), typically the one the served model was trained on. Its table
    must have the same columns as the feedback table: the served model's input features and its target."""
    version: int | None = Field(default=None, ge=1)
    """Which of its versions (status.history); unset means its current version at the time of each read."""


class FeedbackSource(ApiModel):
    """A ModelDeployment's logged predictions joined with their ground-truth labels by prediction id
    (docs/monitoring.md): one row per labelled prediction, the logged inputs and the label as the target."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minRows <= self.maxRows",
                    "message": "minRows must not be greater than maxRows",
                }
            ]
        }
    )

    deployment_ref: LocalObjectReference
    """The ModelDeployment whose prediction log and feedback labels are read. Its served model's manifest names the
    feature columns, the target column (as in the Dataset it was trained on) and the label type."""
    max_age: Duration = "168h"
    """Only predictions logged this recently are read."""
    max_rows: int = Field(default=1_000_000, ge=1, le=10_000_000)
    """Read at most this many of the newest logged predictions (labelled or not)."""
    min_rows: int = Field(default=1, ge=1, le=10_000_000)
    """Fewest labelled rows a version may have; a read with fewer fails (reason InsufficientFeedback) and, for a
    refresh, keeps the current version."""
    merge_with: FeedbackMerge | None = None
    """An earlier Dataset version to append the labelled rows to (its rows first)."""


class DatasetSource(ApiModel):
    """Where the data lives and how to read it: `uri` (a file or object), `sql` (a database query) or `feedback`
    (a deployment's labelled predictions)."""

    # Admission refuses what no source policy allows (the operator's policy check says the same, for old objects).
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.uri) ? 1 : 0) + (has(self.sql) ? 1 : 0) + (has(self.feedback) ? 1 : 0) == 1",
                    "message": "set exactly one of uri, sql and feedback",
                },
                {
                    "rule": "!has(self.feedback) || (!has(self.csv) && self.format == 'auto')",
                    "message": "format and csv describe a file; a feedback source has neither",
                },
                {
                    "rule": "!has(self.uri) || !self.uri.startsWith('file://') || "
                    "!self.uri.matches('/[.][.]?(/|$)')",
                    "message": "a file:// source may not have . or .. path segments",
                },
                {
                    "rule": "!has(self.uri) || self.uri.startsWith('http') || !self.uri.contains('::')",
                    "message": "a source is one URL, not an fsspec chain (::)",
                },
            ]
        }
    )

    uri: str | None = Field(default=None, pattern=SOURCE_URI_PATTERN, max_length=2048)
    """The data location: `builtin://iris` (scikit-learn's bundled datasets: iris, wine, breast_cancer, diabetes,
    ...), `file:///path`, `s3://bucket/key`, `gs://bucket/key` or `http(s)://...`. The cluster's source policy
    decides which are read: by default no loopback, link-local or cloud metadata host, and `file://` only under the
    namespace's `sources/` area of the artifact store (`/var/lib/gyre/artifacts/sources/` for the pvc store) or a
    directory the admin declared; a refused source is the condition reason SourceRefused."""
    format: Literal["auto", "csv", "parquet"] = "auto"
    """File format; `auto` decides from the file extension."""
    csv: CsvOptions | None = None
    """CSV read options; only used when the format is (or resolves to) csv."""
    sql: SqlSource | None = None
    """A PostgreSQL query instead of a uri; credentials come from Secret keys only."""
    feedback: FeedbackSource | None = None
    """A deployment's labelled predictions instead of a uri: closes the loop from production back to training."""

    @property
    def location(self) -> str:
        """The source as one URI without credentials: `uri`, `postgresql://host:port/database` for sql, or
        `feedback://<deployment>`. The source policy decides on it, and messages show it."""
        if self.feedback is not None:
            return f"{FEEDBACK_SCHEME}://{self.feedback.deployment_ref.name}"
        if self.sql is not None:
            host = f"[{self.sql.host}]" if ":" in self.sql.host else self.sql.host
            return f"postgresql://{host}:{self.sql.port}/{self.sql.database}"
        return self.uri or ""


class SchemaOverrides(ApiModel):
    """Corrections to the inferred schema."""

    kinds: dict[str, ColumnKind] | None = Field(default=None, max_length=1024)
    """Force a column's kind, e.g. `{zip_code: categorical}` for numbers that are really labels."""
    drop: list[str] | None = Field(default=None, max_length=1024)
    """Columns to leave out of the dataset entirely (identifiers, leaks, free text)."""


LogicalType = Literal["int", "float", "number", "bool", "datetime", "string"]
"""Column types of expectations: storage-independent (gyre.data.fingerprint.logical_type); number is int or float."""


class ColumnExpectation(ApiModel):
    """What one column of every version must satisfy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "message": "min must not exceed max",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=256)
    """Column name; the column must exist."""
    type: LogicalType | None = None
    """Required logical type: int, float, number (int or float), bool, datetime or string."""
    max_null_fraction: float | None = Field(default=None, ge=0, le=1)
    """Highest allowed share of missing values (0 means none)."""
    min: float | None = None
    """Lowest allowed value (numeric columns)."""
    max: float | None = None
    """Highest allowed value (numeric columns)."""
    allowed_values: list[str] | None = Field(default=None, max_length=1024)
    """The only values allowed (compared as text; missing values are governed by maxNullFraction)."""
    unique: bool = False
    """No value may appear twice."""


class DatasetExpectations(ApiModel):
    """A data contract: a version that breaks it is recorded but never trained on."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minRows) || !has(self.maxRows) || self.minRows <= self.maxRows",
                    "message": "minRows must not exceed maxRows",
                }
            ]
        }
    )

    columns: list[ColumnExpectation] | None = Field(default=None, max_length=1024)
    """Required columns and what their values must satisfy."""
    min_rows: int | None = Field(default=None, ge=0)
    """Fewest rows a version may have."""
    max_rows: int | None = Field(default=None, ge=0)
    """Most rows a version may have."""
    unique_key: list[str] | None = Field(default=None, min_length=1, max_length=16)
    """Columns whose combined values identify a row: no two rows may share them."""


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
    expectations: DatasetExpectations | None = None
    """A data contract checked on every new version in the profiling Job. A version that breaks it is kept in
    status.history with contractViolated, sets ContractSatisfied=False with the failures, and is never used by a
    TrainingRun: the current version stays the last one that satisfied it."""


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
    contract_violated: bool | None = None
    """True when this version broke spec.expectations: it is never trained on."""


class ContractStatus(StatusModel):
    """The result of checking the newest version against spec.expectations."""

    satisfied: bool
    """Whether the newest version satisfies the contract."""
    fingerprint: Fingerprint | None = None
    """The version that was checked."""
    failures: list[str] | None = None
    """What it broke (possibly cut short; see failureCount)."""
    failure_count: int | None = None
    """Number of failed expectations."""


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
    watermark: str | None = None
    """The highest value of spec.source.sql.watermark in the current version: the next refresh reads above it."""
    contract: ContractStatus | None = None
    """The newest version's check against spec.expectations."""
    conditions: list[Condition] | None = None
    """Ready: the current version is profiled and usable; ContractSatisfied: the newest version satisfies
    spec.expectations (False: it is not used, the current version stays the last good one)."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
