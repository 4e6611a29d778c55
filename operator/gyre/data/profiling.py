"""The Dataset profiling job: load, fingerprint, store a content-addressed copy and the reference profile."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gyre.api import env
from gyre.api.dataset import ColumnKind, DatasetExpectations, FeedbackSource, SqlSource
from gyre.data.contracts import check_expectations
from gyre.data.errors import DataError
from gyre.data.fingerprint import fingerprint_frame
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.data.schema import ColumnSchema, apply_overrides, infer_schema
from gyre.data.sources import CsvReadOptions, SourceFormat, load_source
from gyre.data.sql import SqlCredentials
from gyre.policy.sources import SourcePolicy, source_scope
from gyre.store import ArtifactStore, StoreError, dataset_data_path, dataset_profile_path

if TYPE_CHECKING:
    import pandas as pd

    from gyre.data.guard import SourceGuard

__all__ = ["ProfileRequest", "build_reference_profile", "frame_to_parquet_bytes", "run_profile"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProfileRequest:
    """Everything `gyre profile` needs."""

    store_url: str
    namespace: str
    name: str
    source: str
    format: SourceFormat = "auto"
    target: str | None = None
    csv: CsvReadOptions | None = None
    kinds: Mapping[str, ColumnKind] = field(default_factory=dict)
    drop: Sequence[str] = ()
    source_policy: SourcePolicy = field(default_factory=SourcePolicy)
    """Enforced on the source and on every file and address the read opens (gyre.data.guard)."""
    sql: SqlSource | None = None
    """A database source (then `source` is its credential-free postgresql:// location)."""
    credentials: SqlCredentials | None = None
    """The sql source's user and password, from the pod's Secret-backed env."""
    previous_fingerprint: str | None = None
    """An incremental refresh: the version new rows are appended to (read from this namespace's store)."""
    after: str | None = None
    """An incremental refresh: the previous version's watermark; only rows above it are read."""
    expectations: DatasetExpectations | None = None
    """The data contract every version is checked against (gyre.data.contracts)."""
    feedback: FeedbackSource | None = None
    """A deployment's labelled predictions (then `source` is `feedback://<deployment>`)."""
    model_uri: str | None = None
    """A feedback source: the served model's directory, whose manifest names the columns."""
    model_sha256: str | None = None
    """A feedback source: the served model's digest; a manifest that differs is refused."""
    merge_dataset: str | None = None
    """A feedback source's mergeWith: the Dataset of this namespace whose version comes first."""
    merge_fingerprint: str | None = None
    """That version's fingerprint."""


def frame_to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as parquet bytes (no index)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def build_reference_profile(frame: pd.DataFrame, schema: list[ColumnSchema]) -> bytes | None:
    """The reference profile JSON from gyre.drift.profile, or None when that module is not available."""
    try:
        from gyre.drift import profile as drift_profile
    except ModuleNotFoundError as exc:
        if exc.name not in ("gyre.drift.profile",):
            raise
        log.warning("gyre.drift.profile is not available; skipping the reference profile")
        return None
    built = drift_profile.build_profile(frame, {column.name: column for column in schema})
    return built.to_json().encode()


def run_profile(request: ProfileRequest) -> ProfileReport:
    """Profile one dataset version; failures become a Failed report (never an exception) with a reason."""
    from gyre.data.guard import SourceGuard

    pvc_mount = os.environ.get(env.PVC_MOUNT) or env.DEFAULT_PVC_MOUNT
    scope = source_scope(request.source_policy, request.store_url, request.namespace, pvc_mount=pvc_mount)
    try:
        guard = SourceGuard(scope, request.source)
        watermark: str | None = None
        target = request.target
        if request.feedback is not None:
            frame, target = _read_feedback(request)
        elif request.sql is not None:
            frame, watermark = _read_sql(request, guard)
        else:
            frame = apply_overrides(
                load_source(request.source, request.format, csv=request.csv, guard=guard), request.drop
            )
        if target is not None and target not in frame.columns:
            raise DataError(
                f"target column {target!r} is not in the data (columns: {', '.join(map(str, frame.columns[:20]))})",
                reason="TargetMissing",
            )
        schema = infer_schema(frame, request.kinds)
        fingerprint = fingerprint_frame(frame)
        failures = check_expectations(frame, request.expectations) if request.expectations else None
        store = ArtifactStore(request.store_url)
        data_rel = dataset_data_path(request.namespace, request.name, fingerprint)
        reused = store.exists(data_rel)
        if not reused:
            store.write_bytes(data_rel, frame_to_parquet_bytes(frame))
        profile_rel = dataset_profile_path(request.namespace, request.name, fingerprint)
        profile_uri: str | None = None
        if store.exists(profile_rel):
            profile_uri = store.uri(profile_rel)
        else:
            profile = build_reference_profile(frame, schema)
            if profile is not None:
                profile_uri = store.write_bytes(profile_rel, profile)
    except DataError as exc:
        return ProfileReport(phase="Failed", error=str(exc), reason=exc.reason, target=request.target)
    except StoreError as exc:
        return ProfileReport(phase="Failed", error=str(exc), reason=exc.reason, target=request.target)
    except Exception as exc:
        log.exception("profiling failed")
        return ProfileReport(
            phase="Failed",
            error=f"{type(exc).__name__}: {exc}",
            reason="ProfilingFailed",
            target=request.target,
        )
    return ProfileReport(
        phase="Succeeded",
        fingerprint=fingerprint,
        rows=int(frame.shape[0]),
        columns=[ColumnInfo(name=c.name, kind=c.kind, dtype=c.dtype) for c in schema],
        column_count=len(schema),
        target=target,
        data_uri=store.uri(data_rel),
        profile_uri=profile_uri,
        reused=reused,
        watermark=watermark,
        contract_checked=request.expectations is not None,
        contract_failures=failures or None,
    )


def _read_feedback(request: ProfileRequest) -> tuple[pd.DataFrame, str]:
    """The feedback table (gyre.data.feedback), after the mergeWith version's rows when there is one."""
    from gyre.data.feedback import (
        build_feedback_table,
        merge_tables,
        read_merge_version,
        read_served_manifest,
    )

    assert request.feedback is not None
    if not request.model_uri:
        raise DataError(
            "a feedback source needs --model-uri, the served model's directory", reason="InvalidSpec"
        )
    manifest = read_served_manifest(request.model_uri, request.model_sha256)
    store = ArtifactStore(request.store_url)
    table = build_feedback_table(store, request.namespace, request.feedback, manifest, target=request.target)
    log.info("feedback join: %s", table.stats)
    if not (request.merge_dataset and request.merge_fingerprint):
        return apply_overrides(table.frame, request.drop), table.target
    earlier = read_merge_version(store, request.namespace, request.merge_dataset, request.merge_fingerprint)
    what = f"Dataset {request.merge_dataset} version {request.merge_fingerprint[:19]}..."
    return merge_tables(earlier, table.frame, what=what, drop=request.drop), table.target


def _read_sql(request: ProfileRequest, guard: SourceGuard) -> tuple[pd.DataFrame, str | None]:
    """The sql source's version and its watermark: the whole query, or (incremental) the previous version plus
    the rows above its watermark. Columns in spec.schema.drop are left out after the watermark is taken."""
    import pandas as pd

    from gyre.data.sql import read_sql, watermark_of

    sql = request.sql
    assert sql is not None
    guard.check()
    credentials = request.credentials or SqlCredentials(user="")
    column = sql.watermark
    if column and request.previous_fingerprint and request.after is not None:
        store = ArtifactStore(request.store_url)
        previous = pd.read_parquet(
            io.BytesIO(
                store.read_bytes(
                    dataset_data_path(request.namespace, request.name, request.previous_fingerprint)
                )
            )
        )
        new = read_sql(sql, credentials, after=request.after, guard=guard)
        if new.empty:
            return previous, request.after
        watermark = watermark_of(new, column)
        new = apply_overrides(new, request.drop)
        if list(new.columns) == list(previous.columns):
            return pd.concat([previous, new], ignore_index=True), watermark
        log.info("the query's columns changed since the previous version; reading all rows again")
    frame = read_sql(sql, credentials, guard=guard)
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"source {request.source} has no rows or no columns", reason="EmptyDataset")
    watermark = watermark_of(frame, column) if column else None
    return apply_overrides(frame, request.drop), watermark
