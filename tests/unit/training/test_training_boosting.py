"""XGBoost and LightGBM kinds: strict parameters, native files without pickle, the ONNX twin, search and early
stopping."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from gyre.api.features import FeaturesSpec
from gyre.api.trainingrun import BOOSTED_KINDS, EarlyStopping, EstimatorSpec, SearchSpec
from gyre.serving.model import load_served_model
from gyre.training.artifact import ModelIntegrityError, load_model_dir, model_types, write_model_dir
from gyre.training.boosting import available_cpus, fit_boosted
from gyre.training.estimators import EstimatorError, build_estimator
from gyre.training.features import coerce_features
from gyre.training.gates import Gate, evaluate_gates
from gyre.training.search import best_trial, trial_params
from gyre.training.trainer import TrainingResult, TrainOptions, train_model

TARGETS = {
    "XGBClassifier": "label",
    "LGBMClassifier": "label",
    "XGBRegressor": "amount",
    "LGBMRegressor": "amount",
}


def _train(frame: pd.DataFrame, kind: str, **options: Any) -> TrainingResult:
    params = {"n_estimators": 30, **options.pop("params", {})}
    return train_model(frame, TrainOptions(target=TARGETS[kind], estimator=kind, params=params, **options))


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        (
            "XGBClassifier",
            {"n_trees": 3},
            "n_trees is not a parameter of XGBClassifier; valid: .*n_estimators",
        ),
        ("XGBClassifier", {"n_estimators": "100"}, "n_estimators must be an integer, not str"),
        ("XGBClassifier", {"max_depth": 2.5}, "max_depth must be an integer, not float"),
        ("XGBRegressor", {"learning_rate": 0}, "learning_rate must be > 0"),
        ("XGBRegressor", {"subsample": 1.5}, "subsample must be <= 1"),
        ("XGBRegressor", {"objective": "binary:logistic"}, "objective must be one of reg:squarederror"),
        ("XGBClassifier", {"early_stopping_rounds": 5}, "use estimator.earlyStopping"),
        ("XGBClassifier", {"callbacks": None}, "callbacks are code"),
        ("XGBClassifier", {"nthread": 4}, "nthread is not allowed \\(use n_jobs\\)"),
        ("LGBMClassifier", {"num_leaves": True}, "num_leaves must be an integer, not bool"),
        ("LGBMClassifier", {"num_leaves": None}, "num_leaves must not be null"),
        ("LGBMRegressor", {"boosting_type": "goss"}, "boosting_type must be one of gbdt, dart, rf"),
        ("LGBMRegressor", {"reg_alpha": -1}, "reg_alpha must be >= 0"),
        ("LGBMRegressor", {"num_threads": 2}, "use n_jobs"),
    ],
)
def test_boosted_parameters_are_refused_by_name_type_and_range(
    kind: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(EstimatorError, match=message) as info:
        build_estimator(kind, params)
    assert info.value.reason == "InvalidParams"


def test_valid_parameters_build_the_estimator_with_threads_capped_at_the_pods_cpus() -> None:
    model = build_estimator(
        "XGBClassifier", {"n_estimators": 50, "learning_rate": 0.1, "n_jobs": 512}, seed=7
    )
    assert model.n_estimators == 50 and model.learning_rate == 0.1 and model.random_state == 7
    assert model.n_jobs == available_cpus()
    lgbm = build_estimator("LGBMRegressor", {"num_leaves": 15, "random_state": 1}, seed=7)
    assert lgbm.num_leaves == 15 and lgbm.random_state == 1 and lgbm.n_jobs == available_cpus()
    assert available_cpus() >= 1


def test_available_cpus_honours_the_pods_cpu_limit(tmp_path: Path) -> None:
    import os

    affinity = len(os.sched_getaffinity(0))
    limit = tmp_path / "cpu.max"
    limit.write_text("50000 100000\n")  # limits.cpu: 500m
    assert available_cpus(limit) == 1
    limit.write_text("max 100000\n")  # no limit: the CPUs the process may run on
    assert available_cpus(limit) == affinity
    limit.write_text(f"{(affinity + 4) * 100000} 100000\n")  # a limit above the node's CPUs changes nothing
    assert available_cpus(limit) == affinity
    assert available_cpus(tmp_path / "absent") == affinity


def test_early_stopping_is_refused_for_kinds_that_cannot_stop_early() -> None:
    with pytest.raises(ValidationError, match="earlyStopping needs one of XGBClassifier"):
        EstimatorSpec.model_validate({"kind": "RandomForestClassifier", "earlyStopping": {"rounds": 5}})
    with pytest.raises(ValidationError, match=r"validation_?[fF]raction"):
        EstimatorSpec.model_validate(
            {"kind": "XGBClassifier", "earlyStopping": {"rounds": 5, "validationFraction": 1}}
        )
    spec = EstimatorSpec.model_validate({"kind": "LGBMClassifier", "earlyStopping": {"rounds": 5}})
    assert spec.early_stopping == EarlyStopping(rounds=5, validation_fraction=0.1)


def _refuse_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle was used to load a model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize("kind", BOOSTED_KINDS)
def test_the_booster_is_saved_in_its_librarys_format_and_loads_with_pickle_disabled(
    kind: str, mixed_frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _train(mixed_frame, kind)
    manifest = write_model_dir(tmp_path, result, name="m", dataset=None)
    assert manifest.native is not None
    data = (tmp_path / manifest.native.path).read_bytes()
    if kind.startswith("XGB"):
        assert manifest.native.format == "xgboost-ubj" and data[:1] == b"{"  # UBJSON: an object
        import xgboost

        xgboost.Booster(model_file=bytearray(data))  # XGBoost's own loader reads it
    else:
        assert manifest.native.format == "lightgbm-text" and data.decode().startswith("tree\nversion=")
    assert manifest.native.sha256 == hashlib.sha256(data).hexdigest()
    # The skops file holds the preprocessing only: no boosting library type is in it.
    skops_types = model_types((tmp_path / "model.skops").read_bytes())
    assert not [t for t in skops_types if t.startswith(("xgboost", "lightgbm", "gyre.training.boost"))]

    _refuse_pickle(monkeypatch)
    loaded = load_model_dir(tmp_path, expect_sha256=manifest.sha256())
    x = result.x_test
    np.testing.assert_array_equal(loaded.model.predict(x), result.pipeline.predict(x))
    if kind.endswith("Classifier"):
        assert set(loaded.model.predict(x)) <= {"high", "low"}  # the original labels, not XGBoost's codes
        np.testing.assert_allclose(loaded.model.predict_proba(x), result.pipeline.predict_proba(x))
        assert list(loaded.model.classes_) == manifest.target.classes


@pytest.mark.parametrize("kind", ["XGBClassifier", "LGBMRegressor"])
def test_a_tampered_or_foreign_native_file_is_refused(
    kind: str, mixed_frame: pd.DataFrame, tmp_path: Path
) -> None:
    manifest = write_model_dir(tmp_path, _train(mixed_frame, kind), name="m", dataset=None)
    assert manifest.native is not None
    path = tmp_path / manifest.native.path
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(ModelIntegrityError, match=f"{manifest.native.path} .* has sha256"):
        load_model_dir(tmp_path)
    # A file whose digest the manifest does record, but which is not a model of that library.
    garbage = b"not a model"
    path.write_bytes(garbage)
    edited = manifest.model_copy(
        update={"native": manifest.native.model_copy(update={"sha256": hashlib.sha256(garbage).hexdigest()})}
    )
    (tmp_path / "manifest.json").write_bytes(edited.to_bytes())
    with pytest.raises(ModelIntegrityError, match=f"is not a valid {manifest.native.format} model"):
        load_model_dir(tmp_path)


@pytest.mark.parametrize("kind", BOOSTED_KINDS)
def test_the_onnx_twin_is_verified_on_held_out_rows_and_served_like_the_native_model(
    kind: str, mixed_frame: pd.DataFrame, tmp_path: Path
) -> None:
    result = _train(mixed_frame, kind)
    manifest = write_model_dir(tmp_path, result, name="m", dataset=None)
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    assert manifest.onnx.verified_rows == len(result.x_test)
    onnx = load_served_model(str(tmp_path), inference="onnx", expect_sha256=manifest.sha256())
    native = load_served_model(str(tmp_path), inference="sklearn", expect_sha256=manifest.sha256())
    assert onnx.inference_path == "onnx" and native.inference_path == "sklearn"
    rows = coerce_features(result.x_test, manifest.features).to_numpy(dtype=object)
    from_onnx = onnx.predictor.predict(rows, want_proba=True)
    from_native = native.predictor.predict(rows, want_proba=True)
    if kind.endswith("Classifier"):
        np.testing.assert_array_equal(from_onnx.predict, from_native.predict)
        assert from_onnx.proba is not None and from_native.proba is not None
        np.testing.assert_allclose(from_onnx.proba, from_native.proba, atol=1e-5)
    else:
        np.testing.assert_allclose(from_onnx.predict, from_native.predict, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", BOOSTED_KINDS)
def test_boosters_get_missing_numbers_as_missing_while_other_estimators_get_them_imputed(
    kind: str, mixed_frame: pd.DataFrame
) -> None:
    gaps = mixed_frame["size (cm)"].isna().to_numpy()
    assert gaps.any()
    result = _train(mixed_frame, kind)
    x = coerce_features(mixed_frame, result.features)
    preprocess = result.pipeline[:-1]
    column = list(preprocess.get_feature_names_out()).index("numeric__size (cm)")
    assert np.isnan(preprocess.transform(x)[:, column][gaps]).all()
    other = "LogisticRegression" if kind.endswith("Classifier") else "Ridge"
    imputed = train_model(mixed_frame, TrainOptions(target=TARGETS[kind], estimator=other))
    assert not np.isnan(imputed.pipeline[:-1].transform(x)).any()


def test_search_and_gates_work_unchanged_with_an_xgboost_kind(mixed_frame: pd.DataFrame) -> None:
    search = SearchSpec.model_validate(
        {
            "strategy": "grid",
            "space": {"max_depth": {"values": [1, 4]}, "learning_rate": {"values": [0.05, 0.3]}},
        }
    )
    scores = {}
    for index in range(search.trial_count()):
        params = trial_params(search, index, seed=42, base={"n_estimators": 20})
        result = train_model(
            mixed_frame, TrainOptions(target="label", estimator="XGBClassifier", params=params, seed=42)
        )
        assert result.params == params
        scores[index] = result.metrics["accuracy"]
    assert len(set(scores.values())) > 1  # the trials trained different models
    winner = best_trial(scores, "maximize")
    assert winner is not None and scores[winner] == max(scores.values())
    assert evaluate_gates([Gate(metric="accuracy", min=0.0)], {"accuracy": scores[winner]}).passed
    assert not evaluate_gates([Gate(metric="accuracy", min=1.01)], {"accuracy": scores[winner]}).passed
    # A search space with a wrong type fails the trial with the same clear message as the spec would.
    bad = trial_params(
        SearchSpec.model_validate({"strategy": "grid", "space": {"max_depth": {"values": ["deep"]}}}),
        0,
        seed=42,
    )
    with pytest.raises(EstimatorError, match="max_depth must be an integer"):
        train_model(mixed_frame, TrainOptions(target="label", estimator="XGBClassifier", params=bad))


@pytest.mark.parametrize("kind", BOOSTED_KINDS)
def test_early_stopping_watches_training_rows_only_and_records_the_best_iteration(
    kind: str, mixed_frame: pd.DataFrame, tmp_path: Path
) -> None:
    stop = EarlyStopping(rounds=3, validation_fraction=0.25)
    plain = _train(mixed_frame, kind, params={"n_estimators": 400, "learning_rate": 0.5})
    stopped = _train(
        mixed_frame, kind, params={"n_estimators": 400, "learning_rate": 0.5}, early_stopping=stop
    )
    # The test split is untouched: same rows, same size, as without early stopping.
    pd.testing.assert_frame_equal(stopped.x_test, plain.x_test)
    assert stopped.rows_train == plain.rows_train
    best = stopped.metrics["best_iteration"]
    assert 0 <= best < 400 - stop.rounds and "best_iteration" not in plain.metrics
    # The saved model predicts with the best iteration, as the trained one does.
    write_model_dir(tmp_path, stopped, name="m", dataset=None)
    loaded = load_model_dir(tmp_path)
    np.testing.assert_allclose(
        np.asarray(loaded.model.predict(stopped.x_test), dtype=float)
        if kind.endswith("Regressor")
        else loaded.model.predict_proba(stopped.x_test),
        np.asarray(stopped.pipeline.predict(stopped.x_test), dtype=float)
        if kind.endswith("Regressor")
        else stopped.pipeline.predict_proba(stopped.x_test),
    )


def test_the_validation_part_is_carved_from_the_rows_given_and_the_preprocessing_fits_on_the_rest(
    mixed_frame: pd.DataFrame,
) -> None:
    from sklearn.model_selection import train_test_split

    # Boosters get no default imputer (they keep missing numbers), so one is asked for, to see what it fitted on.
    impute = FeaturesSpec.model_validate(
        {"transforms": [{"columns": ["size (cm)", "weight"], "steps": [{"impute": {}}]}]}
    )
    result = _train(mixed_frame, "XGBRegressor", transforms=tuple(impute.transforms or ()))
    pipeline = result.pipeline
    x = coerce_features(mixed_frame, result.features)
    y = mixed_frame["amount"].to_numpy()
    stop = EarlyStopping(rounds=2, validation_fraction=0.3)
    fit_boosted(pipeline, x, y, task="regression", early_stopping=stop, seed=5)
    x_fit, _x_val = train_test_split(x, test_size=0.3, random_state=5)
    imputer = pipeline.named_steps["preprocess"].named_transformers_["features0"]
    numbers = list(imputer.feature_names_in_)
    np.testing.assert_allclose(imputer.statistics_, x_fit[numbers].median().to_numpy())
    assert not np.allclose(imputer.statistics_, x[numbers].median().to_numpy())
    assert json.dumps(pipeline.steps[-1][1].best_iteration)  # XGBoost recorded a best iteration


@pytest.mark.parametrize("kind", ["XGBClassifier", "LGBMClassifier"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_test_predictions_made_from_probabilities_equal_the_libraries_own_predict(
    kind: str, n_classes: int
) -> None:
    from gyre.training.metrics import predict_test

    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = [
        f"k{v}" for v in np.digitize(x[:, 0] + rng.normal(0, 1, 400), [-0.5, 0.5][: n_classes - 1])
    ]
    frame["c"] = frame["c"].round(0)  # few distinct values: rows with equal scores, some probabilities tied
    result = _train(frame, kind)
    predicted, proba, classes = predict_test("classification", result.pipeline, result.x_test)
    assert predicted.tolist() == result.pipeline.predict(result.x_test).tolist()
    assert classes == list(result.pipeline.classes_) and proba.shape == (len(result.x_test), n_classes)
