"""Join logged predictions with their ground-truth labels by prediction id.

The prediction log (gyre.drift.window) rows carry `id`; labels (gyre.performance.labels) carry the same id. The
join keeps, per id, the first label observed (by label time, then file order) and counts what it cannot use:

- unknown ids: labels whose id no prediction in the window carries (a wrong id, or a prediction older than the
  window or not sampled into the log);
- duplicates: further labels of an id already labelled (first wins);
- wrong type: labels that cannot be a value of the model's target (a string for a regressor, a number for a
  classifier with string classes, null, NaN).

`join_feedback` reads both from the store; `join_rows` is the pure join of rows already read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from gyre.performance.labels import LabelRead, LabelRecord, read_labels

if TYPE_CHECKING:
    import pandas as pd

    from gyre.store.store import ArtifactStore

__all__ = [
    "JoinStats",
    "JoinedWindow",
    "Task",
    "join_feedback",
    "join_rows",
    "label_key",
]

Task = Literal["classification", "regression"]


@dataclass
class JoinStats:
    """What the join counted; every field is also reported in status and the check report."""

    prediction_rows: int = 0
    """Rows of the prediction window read."""
    predictions_without_id: int = 0
    """Window rows with no `id` (logged before ids existed): they can never be labelled."""
    other_version_rows: int = 0
    """Window rows logged by another model version than the one checked (before a rollout): left out."""
    other_version_labels: int = 0
    """Labels of those rows: known ids, but not of the model checked."""
    label_rows: int = 0
    """Labels read (with an id)."""
    labelled_rows: int = 0
    """Predictions of the window joined with a valid label."""
    unknown_ids: int = 0
    duplicate_labels: int = 0
    wrong_type_labels: int = 0
    rows_without_id: int = 0
    """Label rows with no usable id."""
    label_files_read: int = 0
    label_files_skipped: int = 0
    label_delay_p50_seconds: float | None = None
    label_delay_p90_seconds: float | None = None
    label_delay_max_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """camelCase, JSON-friendly."""
        return {
            "predictionRows": self.prediction_rows,
            "predictionsWithoutId": self.predictions_without_id,
            "otherVersionRows": self.other_version_rows,
            "otherVersionLabels": self.other_version_labels,
            "labelRows": self.label_rows,
            "labelledRows": self.labelled_rows,
            "unknownIds": self.unknown_ids,
            "duplicateLabels": self.duplicate_labels,
            "wrongTypeLabels": self.wrong_type_labels,
            "rowsWithoutId": self.rows_without_id,
            "labelFilesRead": self.label_files_read,
            "labelFilesSkipped": self.label_files_skipped,
            "labelDelayP50Seconds": self.label_delay_p50_seconds,
            "labelDelayP90Seconds": self.label_delay_p90_seconds,
            "labelDelayMaxSeconds": self.label_delay_max_seconds,
        }


@dataclass
class JoinedWindow:
    """The labelled predictions of a window, one entry per joined row in each list (columnar, so that turning it
    into a table is one call: `to_frame`)."""

    ids: list[str] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    """The logged `inputs` object of each prediction (feature -> value)."""
    predictions: list[Any] = field(default_factory=list)
    """`outputs.predict`: the served answer."""
    probabilities: list[list[float] | None] = field(default_factory=list)
    """`outputs.predict_proba` (columns in the order of the manifest's target classes), None when not logged."""
    labels: list[Any] = field(default_factory=list)
    """The true value, coerced to the target's type (numbers for regression; for classification, the value of the
    matching known class when one matches)."""
    prediction_ts: list[float] = field(default_factory=list)
    label_ts: list[float | None] = field(default_factory=list)
    model_versions: list[str | None] = field(default_factory=list)
    stats: JoinStats = field(default_factory=JoinStats)

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self, *, target: str = "label", with_outputs: bool = True) -> pd.DataFrame:
        """A DataFrame: one column per input feature, then `target` (the label); with `with_outputs` also
        `prediction`, `prediction_id`, `prediction_ts`, `label_ts` and `model_version` (and `proba_<class>` is
        left to the caller: classes are the manifest's). Feature columns keep the logged values (null stays
        missing)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.inputs) if self.inputs else pd.DataFrame()
        if target in frame.columns:
            raise ValueError(f"target column {target!r} is also an input feature")
        frame[target] = self.labels
        if with_outputs:
            frame["prediction"] = self.predictions
            frame["prediction_id"] = self.ids
            frame["prediction_ts"] = self.prediction_ts
            frame["label_ts"] = self.label_ts
            frame["model_version"] = self.model_versions
        return frame


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    """A finite number from a number or a numeric string, else None."""
    if _is_number(value):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def label_key(value: Any) -> str | None:
    """The canonical form two class labels are compared in: `1`, `1.0` and `"1"` are the same class, `True`
    and `"true"` too. None for a value that cannot be a class (null, NaN, a list)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        if not math.isfinite(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, str):
        text = value.strip()
        number = _number(text)
        if number is not None:
            return label_key(number)
        lowered = text.lower()
        return lowered if lowered in ("true", "false") else text
    return None


class _Coercer:
    """Turns a raw label into the target's type, or None when it is of the wrong type."""

    def __init__(self, task: Task, classes: Sequence[Any] | None, sample_predictions: Sequence[Any]) -> None:
        self.task = task
        known = list(classes) if classes else [p for p in sample_predictions if p is not None]
        self.by_key = {label_key(c): c for c in known if label_key(c) is not None}
        # The kind of the classes decides what a well-typed label is: numeric classes take numbers (or numeric
        # strings), string classes take strings, boolean classes take booleans.
        kinds = {("bool" if isinstance(c, bool) else "number" if _is_number(c) else "string") for c in known}
        self.kind = kinds.pop() if len(kinds) == 1 else "any"

    def __call__(self, raw: Any) -> Any:
        if self.task == "regression":
            return None if isinstance(raw, bool) else _number(raw)
        key = label_key(raw)
        if key is None:
            return None
        if key in self.by_key:
            return self.by_key[key]
        # An unseen class of the right kind is a valid label the model cannot get right; keep it.
        if self.kind == "number":
            number = _number(raw)
            if number is None or isinstance(raw, bool):
                return None
            return int(number) if number.is_integer() else number
        if self.kind == "bool":
            return None  # booleans have no unseen values
        if self.kind == "string" and not isinstance(raw, str):
            return None
        return raw


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    # Nearest-rank on the sorted delays: exact values that occurred, no interpolation.
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def join_rows(
    predictions: Iterable[Mapping[str, Any]],
    labels: Iterable[LabelRecord],
    *,
    task: Task,
    classes: Sequence[Any] | None = None,
    label_read: LabelRead | None = None,
    model_version: str | None = None,
) -> JoinedWindow:
    """Join prediction-log rows with label records by id (pure; see the module docstring for what is counted).

    `classes` are the model's target classes (the manifest's `target.classes`); without them a classifier's label
    type is inferred from the logged predictions. With `model_version`, only rows logged by that version (their
    `version`) are joined: a model is judged on its own answers. Rows are returned in prediction order. Never
    raises on bad labels or rows: they are counted in `stats`.
    """
    stats = JoinStats()
    by_id: dict[str, Mapping[str, Any]] = {}
    other: set[str] = set()
    for row in predictions:
        stats.prediction_rows += 1
        ident = row.get("id")
        if not isinstance(ident, str) or not ident:
            stats.predictions_without_id += 1
            continue
        if model_version is not None and str(row.get("version")) != model_version:
            stats.other_version_rows += 1
            other.add(ident)
            continue
        by_id.setdefault(ident, row)
    if label_read is not None:
        stats.rows_without_id = label_read.rows_without_id
        stats.label_files_read = label_read.files_read
        stats.label_files_skipped = label_read.files_skipped
    ordered = sorted(
        enumerate(labels), key=lambda item: (item[1].ts if item[1].ts is not None else math.inf, item[0])
    )
    stats.label_rows = len(ordered)
    outputs = [row.get("outputs") for row in by_id.values()]
    sample = [o.get("predict") for o in outputs[:1000] if isinstance(o, dict)]
    coerce = _Coercer(task, classes, sample)
    first: dict[str, tuple[Any, float | None]] = {}
    seen: set[str] = set()
    for _, record in ordered:
        if record.id in seen:
            stats.duplicate_labels += 1
            continue
        seen.add(record.id)
        if record.id not in by_id:
            if record.id in other:
                stats.other_version_labels += 1
            else:
                stats.unknown_ids += 1
            continue
        value = coerce(record.label)
        if value is None:
            stats.wrong_type_labels += 1
            continue
        first[record.id] = (value, record.ts)
    joined = JoinedWindow(stats=stats)
    delays: list[float] = []
    for ident, row in by_id.items():
        if ident not in first:
            continue
        value, label_ts = first[ident]
        out = row.get("outputs") if isinstance(row.get("outputs"), dict) else {}
        proba = out.get("predict_proba") if isinstance(out, dict) else None
        ts = row.get("ts")
        pred_ts = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else math.nan
        joined.ids.append(ident)
        joined.inputs.append(dict(row.get("inputs") or {}))
        joined.predictions.append(out.get("predict") if isinstance(out, dict) else None)
        joined.probabilities.append([float(p) for p in proba] if isinstance(proba, list) else None)
        joined.labels.append(value)
        joined.prediction_ts.append(pred_ts)
        joined.label_ts.append(label_ts)
        version = row.get("version")
        joined.model_versions.append(str(version) if version is not None else None)
        if label_ts is not None and math.isfinite(pred_ts):
            delays.append(label_ts - pred_ts)
    stats.labelled_rows = len(joined)
    if delays:
        delays.sort()
        stats.label_delay_p50_seconds = round(_percentile(delays, 0.5), 3)
        stats.label_delay_p90_seconds = round(_percentile(delays, 0.9), 3)
        stats.label_delay_max_seconds = round(delays[-1], 3)
    return joined


def join_feedback(
    fs_root: str | ArtifactStore,
    namespace: str,
    deployment: str,
    *,
    task: Task,
    classes: Sequence[Any] | None = None,
    max_age: float | timedelta | None = None,
    max_rows: int | None = 100_000,
    now: float | None = None,
    model_version: str | None = None,
) -> JoinedWindow:
    """Read a window of the deployment's prediction log (newest `max_rows` rows, none older than `max_age`
    seconds before `now`) and every label that can belong to it, and join them by id (`join_rows`; with
    `model_version`, only that version's predictions).

    Blocking I/O and CPU: run it in a thread or a Job, never on the event loop.
    """
    from gyre.drift.window import WindowInfo, iter_prediction_batches

    info = WindowInfo()
    rows: list[dict[str, Any]] = []
    for batch in iter_prediction_batches(
        fs_root, namespace, deployment, max_rows=max_rows, max_age=max_age, now=now, info=info
    ):
        rows.extend(batch.rows)
    labels = read_labels(fs_root, namespace, deployment, since=info.oldest_ts)
    return join_rows(
        rows, labels.records, task=task, classes=classes, label_read=labels, model_version=model_version
    )
