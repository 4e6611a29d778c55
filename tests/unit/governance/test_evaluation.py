"""The evaluation behind the card: bootstrap intervals that agree with the reported metrics, per-class metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gyre.api.dataset import ColumnKind
from gyre.governance.evaluation import _Resampler, bootstrap_intervals, evaluate, summarise_data
from gyre.training.manifest import FeatureSpec
from gyre.training.metrics import CLASSIFICATION_METRICS, compute_metrics
from gyre.training.trainer import TrainOptions, train_model


def _frame(n_classes: int, n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 3))
    score = x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.8, n)
    label = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": np.where(x[:, 2] > 0, "up", "down"),
            "label": [f"class-{v}" for v in label],
            "amount": score * 3 + 1,
        }
    )


def one_resample(r: _Resampler, rows: Any, *, auc: bool = True) -> dict[str, float]:
    """The reference the batched scoring is held to: one resample's metrics, from its rows, one metric at a time."""
    if r.task != "classification":
        e, y = r.errors[rows], r.y[rows]
        mse = float(np.mean(e**2))
        sse, sst = float(np.sum(e**2)), float(np.sum((y - y.mean()) ** 2))
        absolute = np.abs(e)
        return {
            "r2": 1 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0),
            "rmse": math.sqrt(mse),
            "mse": mse,
            "mae": float(absolute.mean()),
            "median_ae": float(np.median(absolute)),
        }
    k = len(r.labels)
    cm = np.bincount(r.true_index[rows] * k + r.pred_index[rows], minlength=k * k).reshape(k, k)
    tp, support, predicted = np.diag(cm).astype("float64"), cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(k), where=present)
    out = {
        "accuracy": float(tp.sum() / len(rows)),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "f1_macro": float(f1[present].mean()),
        "f1_weighted": float((f1 * support).sum() / support.sum()),
        "precision_macro": float(precision[present].mean()),
        "recall_macro": float(recall[present].mean()),
    }
    if r.row_loss is not None:
        out["log_loss"] = float(r.row_loss[rows].mean())
    if auc and r.proba is not None and r.classes is not None:
        counts = np.bincount(rows, minlength=len(r.y))
        aucs = [_weighted_auc(positive, group, groups, counts) for positive, group, groups in r.auc_columns]
        if aucs and all(a is not None for a in aucs):
            out["roc_auc"] = float(np.mean(aucs))
    return out


def _weighted_auc(positive: Any, group: Any, groups: int, counts: Any) -> float | None:
    """ROC AUC of rows repeated `counts` times, rows of equal score sharing a `group`: the share of (positive,
    negative) pairs ranked right, ties counting half; None without both classes."""
    pos = np.bincount(group, weights=counts * positive, minlength=groups)
    neg = np.bincount(group, weights=counts * ~positive, minlength=groups)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.cumsum(neg) - neg
    return float((pos @ below + 0.5 * (pos @ neg)) / (n_pos * n_neg))


@pytest.mark.parametrize(
    ("estimator", "target", "classes"),
    [
        ("LogisticRegression", "label", 2),
        ("RandomForestClassifier", "label", 3),
        ("GaussianNB", "label", 4),
        ("Ridge", "amount", 2),
    ],
)
def test_the_resampled_metrics_on_the_whole_test_split_equal_the_reported_metrics(
    estimator: str, target: str, classes: int
) -> None:
    frame = _frame(classes).drop(columns=["amount" if target == "label" else "label"])
    result = train_model(frame, TrainOptions(target=target, estimator=estimator))
    model, x, y = result.pipeline, result.x_test, result.y_test
    proba = model.predict_proba(x) if result.task == "classification" else None
    classes_ = list(model.classes_) if result.task == "classification" else None
    resampler = _Resampler(result.task, y, model.predict(x), proba, classes_)
    everything = {name: float(v[0]) for name, v in resampler.batch(np.arange(len(y))[None, :]).items()}
    expected = compute_metrics(result.task, model, x, y)
    assert everything.keys() == expected.keys()
    for name, value in expected.items():
        assert everything[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_intervals_are_reproducible_from_their_seed_and_hold_the_point_estimate() -> None:
    frame = _frame(3).drop(columns=["amount"])
    result = train_model(frame, TrainOptions(target="label", estimator="LogisticRegression", seed=11))
    first, second = evaluate(result, resamples=100), evaluate(result, resamples=100)
    assert first == second and first.seed == 11 and first.resamples == 100
    assert set(first.intervals) == set(result.metrics)
    for name, value in result.metrics.items():
        interval = first.intervals[name]
        assert interval.low <= value <= interval.high, name
        assert interval.low < interval.high, name  # 48 test rows: not a degenerate interval
    other = bootstrap_intervals(
        "classification",
        result.y_test,
        result.pipeline.predict(result.x_test),
        None,
        None,
        ["accuracy"],
        resamples=100,
        seed=12,
    )
    assert other["accuracy"] != first.intervals["accuracy"]


def test_per_class_metrics_and_the_confusion_matrix_count_every_test_row() -> None:
    frame = _frame(3).drop(columns=["amount"])
    result = train_model(frame, TrainOptions(target="label", estimator="RandomForestClassifier"))
    ev = evaluate(result, resamples=20)
    assert ev.classes == ["class-0", "class-1", "class-2"]
    matrix = np.array(ev.confusion_matrix)
    assert matrix.sum() == result.rows_test == ev.rows_test
    assert [c.support for c in ev.per_class or []] == matrix.sum(axis=1).tolist()
    accuracy = np.trace(matrix) / matrix.sum()
    assert accuracy == pytest.approx(result.metrics["accuracy"])


def test_the_data_summary_covers_features_and_target_with_missing_rates_and_top_values() -> None:
    frame = _frame(2).drop(columns=["amount"])
    frame.loc[::10, "a"] = np.nan
    result = train_model(frame, TrainOptions(target="label", estimator="LogisticRegression"))
    summary = summarise_data(frame, result.features, "label", "classification", {})
    by_name = {c.name: c for c in summary.columns}
    assert list(by_name) == ["a", "b", "c", "label"] and summary.rows == len(frame)
    assert by_name["a"].missing_rate == pytest.approx(0.1)
    assert by_name["a"].mean == pytest.approx(frame["a"].mean())
    assert set(by_name["c"].top or []) == {"up", "down"}
    assert by_name["label"].kind == "categorical" and by_name["label"].distinct == 2


def test_timestamps_are_summarised_by_missing_rate_and_distinct_count_only() -> None:
    frame = pd.DataFrame(
        {"when": pd.date_range("2026-01-01", periods=10, freq="D"), "x": np.arange(10.0), "y": [0, 1] * 5}
    )
    frame.loc[3, "when"] = pd.NaT
    features = [
        FeatureSpec(name="when", kind=ColumnKind.NUMERIC),
        FeatureSpec(name="x", kind=ColumnKind.NUMERIC),
    ]
    when = summarise_data(frame, features, "y", "classification", {}).columns[0]
    assert (when.missing_rate, when.distinct) == (0.1, 9)
    assert when.mean is None and when.min is None and when.max is None


@pytest.mark.parametrize("n_classes", [2, 3])
def test_resampled_roc_auc_equals_the_rank_sum_formula_to_the_last_bit(n_classes: int) -> None:
    from scipy.stats import rankdata

    def rank_sum(positive: np.ndarray, score: np.ndarray) -> float:
        n_pos = int(positive.sum())
        ranks = rankdata(score)
        return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(score) - n_pos)))

    rng = np.random.default_rng(3)
    y = rng.integers(0, n_classes, 300)
    proba = rng.dirichlet(np.ones(n_classes), 300).round(2)  # rounded: many tied scores
    resampler = _Resampler("classification", y, proba.argmax(axis=1), proba, list(range(n_classes)))
    for _ in range(20):
        rows = rng.integers(0, 300, 300)
        if n_classes == 2:
            expected = rank_sum(y[rows] == 1, proba[rows, 1])
        else:
            expected = float(np.mean([rank_sum(y[rows] == c, proba[rows, c]) for c in range(n_classes)]))
        assert resampler.batch(rows[None, :])["roc_auc"][0] == expected


def _bootstrap_one_by_one(
    task: str, y: Any, predicted: Any, proba: Any, classes: Any, metrics: list[str], resamples: int, seed: int
) -> dict[str, tuple[float, float]]:
    """The bootstrap as it was computed before the resamples were batched: one resample at a time."""
    resampler = _Resampler(task, y, predicted, proba, classes)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in metrics}
    n = len(resampler.y)
    for _ in range(resamples):
        values = one_resample(resampler, rng.integers(0, n, n), auc="roc_auc" in samples)
        for name in metrics:
            value = values.get(name)
            if value is not None and math.isfinite(value):
                samples[name].append(value)
    tail = (1 - 0.95) / 2 * 100
    return {
        name: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))
        for name, v in samples.items()
        if v
    }


# The label metrics; roc_auc and log_loss (scores) are added where a test needs them.
CLASSIFICATION = [m for m in CLASSIFICATION_METRICS if m not in ("roc_auc", "log_loss")]


# 12 classes on 60 rows: resamples that miss classes, where roc_auc is undefined.
@pytest.mark.parametrize(("n_classes", "rows"), [(2, 400), (3, 300), (12, 60)])
def test_batched_classification_resamples_give_the_intervals_of_one_resample_at_a_time_to_the_last_bit(
    n_classes: int, rows: int
) -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, n_classes, rows)
    proba = rng.dirichlet(np.ones(n_classes), rows).round(3)  # rounded: tied scores
    predicted = np.where(rng.random(rows) < 0.6, y, proba.argmax(axis=1))
    metrics = [*CLASSIFICATION, "log_loss", "roc_auc"]
    classes = list(range(n_classes))
    expected = _bootstrap_one_by_one("classification", y, predicted, proba, classes, metrics, 300, 4)
    got = bootstrap_intervals("classification", y, predicted, proba, classes, metrics, resamples=300, seed=4)
    assert {name: (i.low, i.high) for name, i in got.items()} == expected
    assert set(expected) >= set(CLASSIFICATION)


@pytest.mark.parametrize("labels", [[0, 1], ["no", "yes"]])
def test_a_binary_prediction_by_threshold_gives_the_intervals_of_one_resample_at_a_time_to_the_last_bit(
    labels: list[Any],
) -> None:
    # Predicted by a threshold on the score, as every binary classifier does: the confusion matrices then come
    # from the roc_auc counts, not from a second pass over the resampled rows.
    rng = np.random.default_rng(11)
    y = np.array(labels)[rng.integers(0, 2, 500)]
    positive = rng.random(500).round(2)  # rounded: tied scores
    proba = np.column_stack([1 - positive, positive])
    predicted = np.array(labels)[(positive > 0.5).astype(int)]
    metrics = [*CLASSIFICATION, "log_loss", "roc_auc"]
    assert _Resampler("classification", y, predicted, proba, labels).confusion_cells is not None
    expected = _bootstrap_one_by_one("classification", y, predicted, proba, labels, metrics, 300, 3)
    got = bootstrap_intervals("classification", y, predicted, proba, labels, metrics, resamples=300, seed=3)
    assert {name: (i.low, i.high) for name, i in got.items()} == expected
    assert set(expected) == set(metrics)


def test_batched_regression_resamples_give_the_intervals_of_one_resample_at_a_time_to_the_last_bit() -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(size=500)
    predicted = y + rng.normal(0, 0.3, 500)
    metrics = ["r2", "rmse", "mse", "mae", "median_ae"]
    expected = _bootstrap_one_by_one("regression", y, predicted, None, None, metrics, 200, 7)
    got = bootstrap_intervals("regression", y, predicted, None, None, metrics, resamples=200, seed=7)
    assert {name: (i.low, i.high) for name, i in got.items()} == expected


def test_resamples_scored_in_small_blocks_give_the_same_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    import gyre.governance.evaluation as evaluation

    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 200)
    proba = rng.dirichlet(np.ones(2), 200)
    args = ("classification", y, proba.argmax(axis=1), proba, [0, 1], ["accuracy", "roc_auc"])
    whole = bootstrap_intervals(*args, resamples=50, seed=1)
    monkeypatch.setattr(evaluation, "BATCH_CELLS", 7 * 200)  # blocks of 7 resamples, the last one of 1
    assert bootstrap_intervals(*args, resamples=50, seed=1) == whole
