"""A Dataset version from a deployment's labelled predictions (spec.source.feedback), read in the profiling pod.

The table has one row per logged prediction that has a label: the served model's input features as logged, then
the label as the target column (named as in the Dataset the model was trained on, the manifest's `target.name`).
Rows are ordered by prediction time, then id, so the same log and labels always give the same fingerprint.
With mergeWith, an earlier Dataset version's rows come first; its columns must be the same (after spec.schema.drop).
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gyre.data.errors import DataError
from gyre.store import ArtifactStore, dataset_data_path

if TYPE_CHECKING:
    import pandas as pd

    from gyre.api.dataset import FeedbackSource
    from gyre.training.manifest import ModelManifest

__all__ = [
    "FeedbackTable",
    "build_feedback_table",
    "merge_tables",
    "read_merge_version",
    "read_served_manifest",
]

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FeedbackTable:
    """The labelled predictions as a table, and what the join counted."""

    frame: pd.DataFrame
    target: str
    stats: dict[str, Any]


def read_served_manifest(model_uri: str, expect_sha256: str | None = None) -> ModelManifest:
    """The served model's manifest (its features, target and classes); refused when it is not the pinned one."""
    import hashlib

    from pydantic import ValidationError

    from gyre.store import StoreError
    from gyre.training.manifest import ModelManifest

    try:
        raw = ArtifactStore(model_uri).read_bytes(MANIFEST)
    except (StoreError, OSError) as exc:
        raise DataError(
            f"cannot read the served model's {MANIFEST} at {model_uri}: {exc}", reason="ModelUnreadable"
        ) from exc
    digest = hashlib.sha256(raw).hexdigest()
    if expect_sha256 and expect_sha256.removeprefix("sha256:") != digest:
        raise DataError(
            f"the served model's {MANIFEST} at {model_uri} has sha256 {digest}, not the deployment's "
            f"{expect_sha256.removeprefix('sha256:')}",
            reason="ModelUnreadable",
        )
    try:
        return ModelManifest.model_validate_json(raw)
    except ValidationError as exc:
        raise DataError(
            f"the served model's {MANIFEST} does not validate: {exc}", reason="ModelUnreadable"
        ) from exc


def build_feedback_table(
    store: ArtifactStore,
    namespace: str,
    source: FeedbackSource,
    manifest: ModelManifest,
    *,
    target: str | None = None,
    now: float | None = None,
) -> FeedbackTable:
    """Join the deployment's prediction window with its labels (gyre.performance.join) into a training table.

    Raises DataError InsufficientFeedback when fewer than minRows predictions are labelled.
    """
    import pandas as pd

    from gyre.api.common import parse_duration
    from gyre.performance.join import join_feedback

    name = target or manifest.target.name
    features = [f.name for f in manifest.features]
    if name in features:
        raise DataError(f"target column {name!r} is also one of the model's features", reason="TargetMissing")
    deployment = source.deployment_ref.name
    joined = join_feedback(
        store,
        namespace,
        deployment,
        task=manifest.task,
        classes=manifest.target.classes,
        max_age=parse_duration(source.max_age),
        max_rows=source.max_rows,
        now=time.time() if now is None else now,
    )
    stats = joined.stats.as_dict()
    if len(joined) < source.min_rows:
        raise DataError(
            f"{len(joined)} labelled predictions of ModelDeployment {deployment} in the last {source.max_age}, "
            f"fewer than minRows {source.min_rows} ({stats['predictionRows']} predictions read, "
            f"{stats['labelRows']} labels, {stats['unknownIds']} with unknown ids, {stats['wrongTypeLabels']} "
            "of the wrong type)",
            reason="InsufficientFeedback",
        )
    columns = {f: [row.get(f) for row in joined.inputs] for f in features}
    frame = pd.DataFrame(columns, columns=features)
    frame[name] = joined.labels
    order = sorted(range(len(joined)), key=lambda i: (joined.prediction_ts[i], joined.ids[i]))
    frame = frame.iloc[order].reset_index(drop=True)
    return FeedbackTable(frame=frame, target=name, stats=stats)


def merge_tables(
    earlier: pd.DataFrame, feedback: pd.DataFrame, *, what: str, drop: Sequence[str] = ()
) -> pd.DataFrame:
    """`earlier`'s rows, then `feedback`'s, in `earlier`'s column order. Raises DataError SchemaMismatch, naming
    the differing columns, when their columns (after `drop`) or their kinds of values (numbers or text) differ."""
    import pandas as pd
    from pandas.api import types

    unknown = [c for c in drop if c not in earlier.columns and c not in feedback.columns]
    if unknown:
        raise DataError(f"cannot drop unknown columns: {', '.join(unknown)}", reason="UnknownColumn")
    earlier = earlier.drop(columns=[c for c in drop if c in earlier.columns])
    feedback = feedback.drop(columns=[c for c in drop if c in feedback.columns])
    missing = [c for c in earlier.columns if c not in feedback.columns]
    extra = [c for c in feedback.columns if c not in earlier.columns]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{what} has columns the feedback table lacks: {', '.join(map(str, missing[:20]))}")
        if extra:
            parts.append(f"the feedback table has columns {what} lacks: {', '.join(map(str, extra[:20]))}")
        raise DataError(
            "; ".join(parts)
            + ". The feedback table holds the served model's features and its target; drop other columns of the "
            "earlier version with spec.schema.drop, or merge with a Dataset of the same schema",
            reason="SchemaMismatch",
        )
    clashes = []
    for column in earlier.columns:
        old, new = earlier[column], feedback[column]
        if new.isna().all() or old.isna().all():
            continue
        if types.is_numeric_dtype(old) != types.is_numeric_dtype(new):
            clashes.append(f"{column} ({old.dtype} in {what}, {new.dtype} in the feedback)")
    if clashes:
        raise DataError(
            f"columns hold different kinds of values in {what} and in the feedback table: {', '.join(clashes[:20])}",
            reason="SchemaMismatch",
        )
    return pd.concat([earlier, feedback[list(earlier.columns)]], ignore_index=True)


def read_merge_version(store: ArtifactStore, namespace: str, dataset: str, fingerprint: str) -> pd.DataFrame:
    """The content-addressed copy of an earlier Dataset version of this namespace."""
    import pandas as pd

    from gyre.store import StoreError

    try:
        raw = store.read_bytes(dataset_data_path(namespace, dataset, fingerprint))
    except (StoreError, OSError) as exc:
        raise DataError(
            f"cannot read version {fingerprint[:19]}... of Dataset {dataset} (mergeWith): {exc}",
            reason="SourceNotFound",
        ) from exc
    return pd.read_parquet(io.BytesIO(raw))
