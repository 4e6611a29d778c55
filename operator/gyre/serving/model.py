"""The served model: a verified model directory and the predictor (onnxruntime or scikit-learn) that runs it."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from gyre.serving.schema import FeatureSchema
from gyre.training.manifest import MANIFEST_FILE, ModelManifest

__all__ = [
    "InferencePath",
    "ModelLoadError",
    "OnnxPredictor",
    "Prediction",
    "Predictor",
    "ServedModel",
    "SklearnPredictor",
    "fetch_model_dir",
    "load_served_model",
]

log = logging.getLogger(__name__)

InferencePath = Literal["onnx", "sklearn"]


class ModelLoadError(Exception):
    """The model directory cannot be served (missing, tampered with, or unreadable); the message says why."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """Outputs for a batch of rows: labels (or values for regression) and, when asked, class probabilities."""

    predict: np.ndarray
    proba: np.ndarray | None


class Predictor(Protocol):
    """Runs the model on a feature matrix in schema order."""

    path: InferencePath
    inline: bool
    """Fast enough to run on the event loop (no thread hop)."""

    def predict(self, rows: np.ndarray, want_proba: bool) -> Prediction: ...


class SklearnPredictor:
    """The fitted scikit-learn estimator or Pipeline."""

    path: InferencePath = "sklearn"
    inline = False

    def __init__(self, model: Any, schema: FeatureSchema) -> None:
        self.model = model
        self.schema = schema
        # Pipelines fitted on a DataFrame select columns by name: give them one.
        self._frame = getattr(model, "feature_names_in_", None) is not None
        self.has_proba = hasattr(model, "predict_proba")

    def _input(self, rows: np.ndarray) -> Any:
        if not self._frame:
            return rows if self.schema.all_numeric else rows.astype(object)
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list(self.schema.names))
        if not self.schema.all_numeric:
            for name, numeric in zip(self.schema.names, self.schema.numeric, strict=True):
                if numeric:
                    frame[name] = frame[name].astype(np.float64)
        return frame

    def predict(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        """Predict labels (and probabilities when asked and supported)."""
        x = self._input(rows)
        labels = np.asarray(self.model.predict(x))
        proba = np.asarray(self.model.predict_proba(x)) if want_proba and self.has_proba else None
        return Prediction(labels, proba)


class OnnxPredictor:
    """An onnxruntime session over the verified ONNX export; its inputs are matched to the feature schema."""

    path: InferencePath = "onnx"
    inline = True

    def __init__(
        self,
        model_bytes: bytes,
        schema: FeatureSchema,
        classes: Sequence[Any] | None,
        *,
        input_names: dict[str, str] | None = None,
        intra_op_threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self.schema = schema
        self.classes = list(classes) if classes is not None else None
        inputs = {i.name: i for i in self.session.get_inputs()}
        mapping = input_names or {name: name for name in schema.names}
        self._matrix: tuple[str, Any] | None = None
        self._columns: list[tuple[str, int, bool, Any]] = []
        if all(mapping.get(n) in inputs for n in schema.names):
            # The trainer's export: one [N, 1] tensor per feature, float for numbers, string for strings.
            for index, name in enumerate(schema.names):
                node = inputs[mapping[name]]
                dtype = np.float64 if "double" in node.type else np.float32
                self._columns.append((node.name, index, "string" in node.type, dtype))
        elif len(inputs) == 1 and schema.all_numeric:
            node = next(iter(inputs.values()))
            self._matrix = (node.name, np.float64 if "double" in node.type else np.float32)
        else:
            raise ModelLoadError(f"ONNX inputs {list(inputs)} do not match the features {list(schema.names)}")
        outputs = self.session.get_outputs()
        self._label_name = outputs[0].name
        self._proba_name = outputs[1].name if len(outputs) > 1 else None
        self._proba_is_map = bool(self._proba_name and "seq" in outputs[1].type)
        self.has_proba = self._proba_name is not None

    def _feed(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self._matrix is not None:
            return {self._matrix[0]: rows.astype(self._matrix[1], copy=False)}
        feed: dict[str, np.ndarray] = {}
        for name, index, is_string, dtype in self._columns:
            column = rows[:, index : index + 1]
            feed[name] = column.astype(object) if is_string else column.astype(dtype)
        return feed

    def predict(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        """One session run; labels come out as the model's class labels, probabilities as float32."""
        wanted = [self._label_name]
        if want_proba and self._proba_name:
            wanted.append(self._proba_name)
        result = self.session.run(wanted, self._feed(rows))
        labels = np.asarray(result[0])
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.ravel()
        proba: np.ndarray | None = None
        if len(result) > 1:
            raw = result[1]
            if self._proba_is_map:
                keys = self.classes if self.classes is not None else sorted(raw[0])
                raw = [[m[k] for k in keys] for m in raw]
            proba = np.asarray(raw)
        return Prediction(labels, proba)


@dataclass
class ServedModel:
    """Everything the HTTP layer needs: identity, schema and the predictor."""

    manifest: ModelManifest
    schema: FeatureSchema
    predictor: Predictor
    directory: Path
    name: str
    version: str
    sha256: str
    """The model's digest: hex sha256 of manifest.json (the pin)."""

    @property
    def inference_path(self) -> InferencePath:
        """`onnx` or `sklearn`."""
        return self.predictor.path


def fetch_model_dir(source: str, cache_dir: str | os.PathLike[str]) -> Path:
    """A local directory holding the model: `source` itself when local (a path, file:// or pvc://, which is
    mounted in the pod), else a fresh download of the URL into `cache_dir`."""
    from gyre.store.store import ArtifactStore, StoreError, resolve_store_url

    if "://" in source:
        try:
            source = resolve_store_url(source)
        except StoreError as exc:
            raise ModelLoadError(str(exc)) from None
    if "://" not in source or source.startswith("file://"):
        path = Path(source.removeprefix("file://"))
        if not path.is_dir():
            raise ModelLoadError(f"model directory {source!r} does not exist")
        return path

    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    target = Path(cache_dir) / digest
    try:
        store = ArtifactStore(source)
        # Download every time: a cached copy could be stale, and the sha256 check below covers integrity only.
        store.get_dir("", target)
    except (StoreError, OSError) as exc:
        raise ModelLoadError(f"cannot download the model from {source!r}: {exc}") from exc
    return target


def load_served_model(
    source: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    inference: Literal["auto", "onnx", "sklearn"] = "auto",
    name: str | None = None,
    version: str | None = None,
    expect_sha256: str | None = None,
    onnx_threads: int = 1,
) -> ServedModel:
    """Verify and load a model directory (local path or fsspec URL).

    gyre.training.artifact.load_model_dir does every check before anything is deserialised: manifest.json's sha256
    against `expect_sha256` (the pin the operator approved, which covers every file through the manifest), each
    file's sha256 against the manifest, every type in the skops file against Gyre's allowlist. With
    `inference="auto"`, a manifest whose ONNX export is `verified` is served through onnxruntime, from the same
    bytes that were hashed; otherwise through scikit-learn. `version` defaults to the first 12 hex digits of the
    model's digest.
    """
    from gyre.training.artifact import ModelIntegrityError, UntrustedModelError, load_model_dir

    cache = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "gyre", "models")
    directory = fetch_model_dir(source, cache)
    try:
        loaded = load_model_dir(directory, expect_sha256=expect_sha256)
    except (ModelIntegrityError, UntrustedModelError) as exc:
        raise ModelLoadError(str(exc)) from None
    except Exception as exc:
        raise ModelLoadError(f"cannot load the model in {directory}: {type(exc).__name__}: {exc}") from exc
    manifest = loaded.manifest
    try:
        schema = FeatureSchema.from_specs(manifest.features)
    except ValueError as exc:
        raise ModelLoadError(f"{directory / MANIFEST_FILE}: {exc}") from None
    predictor: Predictor = SklearnPredictor(loaded.model, schema)
    onnx = manifest.onnx
    if inference == "onnx" and loaded.onnx is None:
        raise ModelLoadError(
            f"--inference onnx, but the manifest's ONNX export is {onnx.status}: {onnx.reason}"
        )
    if inference != "sklearn" and loaded.onnx is not None:
        try:
            predictor = OnnxPredictor(
                loaded.onnx,
                schema,
                manifest.target.classes,
                input_names=onnx.inputs,
                intra_op_threads=onnx_threads,
            )
        except Exception as exc:
            if inference == "onnx":
                raise ModelLoadError(f"onnxruntime cannot run {loaded.onnx_path}: {exc}") from exc
            log.warning("onnxruntime cannot run %s (%s); serving with scikit-learn", loaded.onnx_path, exc)
    name = name or manifest.name
    return ServedModel(
        manifest, schema, predictor, directory, name, version or loaded.sha256[:12], loaded.sha256
    )
