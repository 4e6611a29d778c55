"""The metrics, their bootstrap intervals and the degradation rule, on windows whose true answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m

from gyre.performance.check import Baseline, PerformanceConfig, PerformanceConfigError, check_joined
from gyre.performance.join import JoinedWindow, join_rows
from gyre.performance.labels import LabelRecord
from gyre.performance.stats import compare, estimate_metrics


def _classification_window(n: int, accuracy: float, seed: int) -> JoinedWindow:
    """n rows of a binary classifier that is right with probability `accuracy` (its probabilities say 0.8 for
    the class it predicts)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy
    predictions = np.where(right, labels, 1 - labels)
    window = JoinedWindow()
    window.labels = labels.tolist()
    window.predictions = predictions.tolist()
    window.probabilities = [[0.2, 0.8] if p == 1 else [0.8, 0.2] for p in predictions.tolist()]
    window.ids = [str(i) for i in range(n)]
    return window


BASELINE = Baseline(
    task="classification",
    metrics={
        "accuracy": 0.9,
        "f1_macro": 0.9,
        "log_loss": 0.3618,
    },  # what a 90 % model with 0.8 confidence scores
    classes=[0, 1],
    test_rows=2000,
)
CONFIG = PerformanceConfig(metrics=["accuracy"], min_labelled_rows=10)


def test_metrics_equal_scikit_learns_on_the_same_rows() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    p = np.where(rng.random(300) < 0.7, y, rng.integers(0, 3, 300))
    proba = rng.dirichlet([1, 1, 1], 300)
    est = estimate_metrics(
        "classification", y.tolist(), p.tolist(), probabilities=proba.tolist(), classes=[0, 1, 2]
    )
    assert est["accuracy"].value == pytest.approx(m.accuracy_score(y, p))
    assert est["f1_macro"].value == pytest.approx(m.f1_score(y, p, average="macro"))
    assert est["log_loss"].value == pytest.approx(m.log_loss(y, proba, labels=[0, 1, 2]))
    for metric in est.values():
        assert metric.low <= metric.value <= metric.high

    yt = rng.normal(10, 3, 400)
    yp = yt + rng.normal(0, 1, 400)
    reg = estimate_metrics("regression", yt.tolist(), yp.tolist())
    assert reg["rmse"].value == pytest.approx(np.sqrt(m.mean_squared_error(yt, yp)))
    assert reg["mae"].value == pytest.approx(m.mean_absolute_error(yt, yp))
    assert reg["r2"].value == pytest.approx(m.r2_score(yt, yp))


def test_f1_macro_counts_a_class_only_in_the_predictions() -> None:
    est = estimate_metrics("classification", [0, 0, 1, 1], [0, 2, 1, 1], names=["f1_macro"])
    assert est["f1_macro"].value == pytest.approx(m.f1_score([0, 0, 1, 1], [0, 2, 1, 1], average="macro"))


def test_log_loss_is_left_out_when_probabilities_were_not_logged() -> None:
    est = estimate_metrics("classification", [0, 1], [0, 1], probabilities=[None, None], classes=[0, 1])
    assert "log_loss" not in est and "accuracy" in est


def test_log_loss_is_left_out_when_the_probabilities_do_not_cover_every_row() -> None:
    est = estimate_metrics("classification", [0, 1, 1], [0, 1, 0], probabilities=[], classes=[0, 1])
    assert "log_loss" not in est and est["accuracy"].value == pytest.approx(2 / 3)


def test_the_intervals_are_reproducible_for_a_seed() -> None:
    window = _classification_window(200, 0.8, seed=2)
    a = estimate_metrics("classification", window.labels, window.predictions, seed=7)
    b = estimate_metrics("classification", window.labels, window.predictions, seed=7)
    assert a == b


def test_a_window_whose_accuracy_is_clearly_lower_is_degraded() -> None:
    report = check_joined(_classification_window(1000, 0.75, seed=3), BASELINE, CONFIG)
    assert report.verdict == "degraded"
    assert report.degraded_metrics == ["accuracy"]
    (acc,) = report.metrics
    assert acc["baseline"] == 0.9 and acc["dropLow"] > acc["tolerance"]


def test_a_small_window_with_the_same_degradation_is_not() -> None:
    report = check_joined(_classification_window(25, 0.75, seed=3), BASELINE, CONFIG)
    assert report.verdict == "ok"
    assert report.metrics[0]["value"] < 0.9  # worse, but not with confidence


def test_an_unchanged_model_is_not_degraded_in_any_of_many_windows() -> None:
    verdicts = [
        check_joined(
            _classification_window(500, 0.9, seed=s), BASELINE, PerformanceConfig(min_labelled_rows=10)
        ).verdict
        for s in range(40)
    ]
    assert verdicts.count("degraded") == 0


def test_below_min_labelled_rows_the_verdict_is_insufficient_data_even_when_much_worse() -> None:
    report = check_joined(
        _classification_window(50, 0.2, seed=4), BASELINE, PerformanceConfig(min_labelled_rows=100)
    )
    assert report.verdict == "insufficient_data"
    assert "fewer than minLabelledRows 100" in report.message
    assert report.metrics[0]["value"] < 0.5  # the metrics are still reported


def test_a_log_without_prediction_ids_says_so_in_the_insufficient_data_message() -> None:
    rows = [{"ts": 1.0, "inputs": {"x": 1}, "outputs": {"predict": 1}}] * 300
    joined = join_rows(rows, [LabelRecord("a", 1, 2.0, "f")], task="classification", classes=[0, 1])
    report = check_joined(joined, BASELINE, PerformanceConfig())
    assert report.verdict == "insufficient_data"
    assert "300 logged predictions carry no id" in report.message and report.join["unknownIds"] == 1


def test_a_model_without_a_baseline_for_the_metrics_gives_insufficient_data() -> None:
    bare = Baseline(task="classification", metrics={"roc_auc": 0.9}, classes=[0, 1])
    report = check_joined(_classification_window(500, 0.5, seed=5), bare, CONFIG)
    assert report.verdict == "insufficient_data" and "no baseline" in report.message


def test_metrics_of_the_other_task_are_refused() -> None:
    with pytest.raises(PerformanceConfigError, match="rmse"):
        check_joined(_classification_window(10, 0.9, seed=1), BASELINE, PerformanceConfig(metrics=["rmse"]))


def test_the_baselines_own_uncertainty_widens_the_drop_interval() -> None:
    window = _classification_window(1000, 0.84, seed=6)
    est = estimate_metrics("classification", window.labels, window.predictions, names=["accuracy"])[
        "accuracy"
    ]
    known = compare("accuracy", est, 0.9, rows=1000, baseline_rows=100, relative_drop=0.0)
    unknown = compare("accuracy", est, 0.9, rows=1000, baseline_rows=None, relative_drop=0.0)
    assert unknown.drop_low is not None and known.drop_low is not None
    assert known.drop_low < unknown.drop_low
    # A baseline measured on only 100 test rows cannot support the same claim as one measured on many.
    assert unknown.degraded and not known.degraded


def test_regression_error_metrics_degrade_when_they_grow() -> None:
    rng = np.random.default_rng(8)
    y = rng.normal(0, 5, 2000)
    window = JoinedWindow(labels=y.tolist(), predictions=(y + rng.normal(0, 2, 2000)).tolist())
    window.ids = [str(i) for i in range(2000)]
    baseline = Baseline(task="regression", metrics={"rmse": 1.0, "mae": 0.8, "r2": 0.96}, test_rows=1000)
    report = check_joined(window, baseline, PerformanceConfig())
    assert report.verdict == "degraded"
    assert set(report.degraded_metrics) == {"rmse", "mae", "r2"}
    same = JoinedWindow(labels=y.tolist(), predictions=(y + rng.normal(0, 1, 2000)).tolist())
    same.ids = window.ids
    assert check_joined(same, baseline, PerformanceConfig()).verdict == "ok"


def test_max_drop_overrides_the_relative_tolerance() -> None:
    window = _classification_window(2000, 0.85, seed=9)
    strict = check_joined(
        window, BASELINE, PerformanceConfig(metrics=["accuracy"], max_drop={"accuracy": 0.0})
    )
    loose = check_joined(
        window, BASELINE, PerformanceConfig(metrics=["accuracy"], max_drop={"accuracy": 0.1})
    )
    assert strict.verdict == "degraded" and loose.verdict == "ok"


@pytest.mark.parametrize(("n", "p"), [(200, 0.8), (60, 0.9)])
def test_the_accuracy_interval_covers_the_true_value_at_its_nominal_rate(n: int, p: float) -> None:
    """400 seeded windows drawn from a model of known accuracy p: the 95 % interval holds p in about 95 % of
    them (binomial sd of the rate over 400 windows ~1.1 %; the band allows the bootstrap's known slight
    undercoverage at small n)."""
    covered = 0
    for s in range(400):
        rng = np.random.default_rng(1000 + s)
        correct = rng.random(n) < p
        labels = np.ones(n, dtype=int)
        predictions = np.where(correct, 1, 0)
        est = estimate_metrics(
            "classification", labels.tolist(), predictions.tolist(), names=["accuracy"], resamples=400, seed=s
        )["accuracy"]
        covered += est.low <= p <= est.high
    assert 0.90 <= covered / 400 <= 0.985


def test_the_rmse_interval_covers_the_true_value_at_its_nominal_rate() -> None:
    covered = 0
    for s in range(300):
        rng = np.random.default_rng(5000 + s)
        y = rng.normal(0, 1, 300)
        est = estimate_metrics(
            "regression",
            y.tolist(),
            (y + rng.normal(0, 2, 300)).tolist(),
            names=["rmse"],
            resamples=400,
            seed=s,
        )["rmse"]
        covered += est.low <= 2.0 <= est.high
    assert 0.90 <= covered / 300 <= 0.985
