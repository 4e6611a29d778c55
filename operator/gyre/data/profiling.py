"""The Dataset profiling job: load, fingerprint, store a content-addressed copy and the reference profile."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gyre.api import env
from gyre.api.dataset import ColumnKind
from gyre.data.errors import DataError
from gyre.data.fingerprint import fingerprint_frame
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.data.schema import ColumnSchema, apply_overrides, infer_schema
from gyre.data.sources import CsvReadOptions, SourceFormat, load_source
from gyre.policy.sources import SourcePolicy, source_scope
from gyre.store import ArtifactStore, StoreError, dataset_data_path, dataset_profile_path

if TYPE_CHECKING:
    import pandas as pd

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
        frame = load_source(request.source, request.format, csv=request.csv, guard=guard)
        frame = apply_overrides(frame, request.drop)
        if request.target is not None and request.target not in frame.columns:
            raise DataError(
                f"target column {request.target!r} is not in the data (columns: {', '.join(map(str, frame.columns[:20]))})",
                reason="TargetMissing",
            )
        schema = infer_schema(frame, request.kinds)
        fingerprint = fingerprint_frame(frame)
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
        target=request.target,
        data_uri=store.uri(data_rel),
        profile_uri=profile_uri,
        reused=reused,
    )
