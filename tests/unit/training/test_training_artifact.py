"""The model directory: skops + verified ONNX + manifest; loading checks sha256 and types first."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin

from gyre.cli import main
from gyre.data.sources import load_source
from gyre.training.artifact import (
    ONNX_TOLERANCE,
    ModelIntegrityError,
    UntrustedModelError,
    load_model_dir,
    write_model_dir,
)
from gyre.training.features import coerce_features, onnx_feeds
from gyre.training.manifest import DatasetRef, ModelManifest
from gyre.training.trainer import TrainingResult, TrainOptions, train_model


def _iris_rf() -> TrainingResult:
    return train_model(
        load_source("builtin://iris"),
        TrainOptions(target="target", estimator="RandomForestClassifier", params={"n_estimators": 10}),
    )


def _onnx_proba_diff(directory: Path, manifest: ModelManifest, model: Any, frame: pd.DataFrame) -> float:
    assert manifest.onnx.inputs is not None
    session = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    coerced = coerce_features(frame, manifest.features)
    labels, proba = session.run(None, onnx_feeds(coerced, manifest.features, manifest.onnx.inputs))
    assert labels.tolist() == model.predict(coerced).tolist()
    return float(np.max(np.abs(proba - model.predict_proba(coerced))))


def test_round_trip_with_verified_onnx_on_iris_random_forest(tmp_path: Path) -> None:
    result = _iris_rf()
    dataset = DatasetRef(uri="builtin://iris", fingerprint="sha256:" + "1" * 64)
    manifest = write_model_dir(tmp_path, result, name="iris-rf", dataset=dataset, image="gyre:test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "model.onnx", "model.skops"]
    assert manifest.artifact.sha256 == hashlib.sha256((tmp_path / "model.skops").read_bytes()).hexdigest()
    assert manifest.onnx.status == "verified" and manifest.onnx.inputs == {
        f.name: f.name for f in result.features
    }
    assert manifest.onnx.sha256 == hashlib.sha256((tmp_path / "model.onnx").read_bytes()).hexdigest()
    assert manifest.image == "gyre:test" and {"python", "scikit-learn", "skops"} <= set(manifest.libraries)
    loaded = load_model_dir(tmp_path)
    assert loaded.manifest == manifest and loaded.onnx_path == tmp_path / "model.onnx"
    assert loaded.model.predict(result.x_test).tolist() == result.pipeline.predict(result.x_test).tolist()
    diff = _onnx_proba_diff(tmp_path, manifest, loaded.model, result.x_test)
    assert diff <= ONNX_TOLERANCE


def test_onnx_is_verified_on_mixed_numeric_and_categorical_features(
    tmp_path: Path, mixed_frame: pd.DataFrame
) -> None:
    frame = mixed_frame.drop(columns=["amount"])
    result = train_model(
        frame,
        TrainOptions(target="label", estimator="GradientBoostingClassifier", params={"n_estimators": 10}),
    )
    manifest = write_model_dir(tmp_path, result, name="mixed", dataset=None)
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    # Unseen categories and gaps go through both runtimes the same way.
    extra = pd.DataFrame(
        {"size (cm)": [None, 3.0], "weight": [0.5, -1.0], "color": ["purple", None], "flag": [False, True]}
    )
    assert (
        _onnx_proba_diff(tmp_path, manifest, result.pipeline, pd.concat([frame.head(20), extra]))
        <= ONNX_TOLERANCE
    )

    regression = train_model(
        mixed_frame.drop(columns=["label"]), TrainOptions(target="amount", estimator="Ridge")
    )
    reg_manifest = write_model_dir(tmp_path / "reg", regression, name="reg", dataset=None)
    assert reg_manifest.onnx.status == "verified", reg_manifest.onnx.reason


def test_tampered_model_is_refused_before_loading(tmp_path: Path) -> None:
    write_model_dir(tmp_path, _iris_rf(), name="iris-rf", dataset=None, onnx=False)
    with (tmp_path / "model.skops").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model_dir(tmp_path)


class Sneaky(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """A type that is not on the allowlist."""

    def fit(self, x: Any, y: Any) -> Sneaky:
        self.classes_ = np.unique(y)
        return self


def test_untrusted_types_are_refused_even_with_a_matching_sha256(tmp_path: Path) -> None:
    manifest = write_model_dir(tmp_path, _iris_rf(), name="iris-rf", dataset=None, onnx=False)
    data = sio.dumps(Sneaky().fit([[0]], [0]))
    (tmp_path / "model.skops").write_bytes(data)
    forged = manifest.model_copy(
        update={"artifact": manifest.artifact.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})}
    )
    (tmp_path / "manifest.json").write_text(forged.to_json())
    with pytest.raises(UntrustedModelError, match="Sneaky"):
        load_model_dir(tmp_path)


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match=r"manifest\.json is missing"):
        load_model_dir(tmp_path)


def test_model_import_refuses_pickle_without_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _iris_rf()
    joblib.dump(result.pipeline, tmp_path / "model.joblib")
    names = ",".join(f.name for f in result.features)
    args = ["model", "import", "--from-joblib", str(tmp_path / "model.joblib"), "--name", "iris"]
    args += ["--feature-names", names, "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main([*args, "--trust-pickle"]) == 0
    loaded = load_model_dir(tmp_path / "out")
    assert loaded.manifest.estimator == "RandomForestClassifier" and loaded.manifest.target.classes == [
        0,
        1,
        2,
    ]
    assert loaded.model.predict(result.x_test).tolist() == result.pipeline.predict(result.x_test).tolist()
    assert main([*args[:-2], "--feature-names", "a,b", "--out", str(tmp_path / "o2"), "--trust-pickle"]) == 2


def test_a_large_test_split_proves_the_twin_on_its_first_rows_and_the_manifest_says_how_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gyre.training.artifact as artifact

    monkeypatch.setattr(artifact, "ONNX_CHECK_ROWS", 12)
    result = _iris_rf()
    manifest = write_model_dir(tmp_path, result, name="iris-rf", dataset=None)
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    assert (manifest.onnx.verified_rows, manifest.onnx.verified_on) == (12, "held-out")
    assert f"on 12 held-out rows (of {result.rows_test})" in manifest.onnx.reason
    # The twin still answers as the model on every held-out row, checked or not.
    assert _onnx_proba_diff(tmp_path, manifest, result.pipeline, result.x_test) <= ONNX_TOLERANCE


def test_the_twin_is_checked_against_the_pipeline_not_against_the_predictions_it_is_given(
    tmp_path: Path,
) -> None:
    from gyre.training.artifact import convert_to_onnx

    result = _iris_rf()
    assert result.test_predictions is not None
    predicted, proba, _ = result.test_predictions
    honest = convert_to_onnx(
        result.pipeline, result.features, result.task, result.x_test, predictions=(predicted, proba)
    )
    assert honest.info.status == "verified"
    shifted = np.roll(proba, 1, axis=1)  # what a model answering other classes would give
    wrong = convert_to_onnx(
        result.pipeline, result.features, result.task, result.x_test, predictions=(predicted, shifted)
    )
    assert wrong.info.status == "unavailable" and "differ" in wrong.info.reason
