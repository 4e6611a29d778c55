"""The served model: a verified model directory and the predictor (onnxruntime or scikit-learn) that runs it."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
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
    """The fitted scikit-learn estimator or Pipeline, run as fast as scikit-learn allows.

    At load: every estimator is set to n_jobs=1 and BLAS/OpenMP pools to one thread (the server runs one prediction
    per worker thread; nested pools only contend), and, when the pipeline can take an array (`_ArrayPipeline`), a
    call skips the DataFrame and a forest's per-call joblib dispatch. The fast form is used only when it gives the
    model's own answers on probe rows at load.
    """

    path: InferencePath = "sklearn"
    inline = False

    def __init__(self, model: Any, schema: FeatureSchema) -> None:
        self.model = model
        self.schema = schema
        # Pipelines fitted on a DataFrame select columns by name: give them one.
        self._frame = getattr(model, "feature_names_in_", None) is not None
        self.has_proba = hasattr(model, "predict_proba")
        _single_threaded(model)
        self._threads = _limit_threadpools()
        self._fast = _ArrayPipeline.build(model, schema, self._predict_model)

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

    def _predict_model(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        x = self._input(rows)
        labels = np.asarray(self.model.predict(x))
        proba = np.asarray(self.model.predict_proba(x)) if want_proba and self.has_proba else None
        return Prediction(labels, proba)

    @property
    def fast(self) -> bool:
        """Whether calls take the array path (no DataFrame, no joblib)."""
        return self._fast is not None

    def predict(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        """Predict labels (and probabilities when asked and supported)."""
        if self._fast is not None:
            return self._fast.predict(rows, want_proba)
        return self._predict_model(rows, want_proba)


def _estimators(model: Any) -> list[Any]:
    """`model` and every estimator inside it (pipeline steps, column transformers' parts, ensemble members)."""
    found: list[Any] = []
    stack = [model]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, str) or not hasattr(item, "get_params"):
            continue
        found.append(item)
        stack.extend(step for _, step in getattr(item, "steps", ()))
        stack.extend(part for _, part, _ in getattr(item, "transformers_", ()))
        stack.extend(np.asarray(getattr(item, "estimators_", []), dtype=object).ravel().tolist())
    return found


def _single_threaded(model: Any) -> None:
    # A forest with n_jobs=-1 would start a pool for every request; the server parallelises across requests.
    for estimator in _estimators(model):
        if "n_jobs" in getattr(estimator, "__dict__", {}):
            estimator.n_jobs = 1


def _limit_threadpools() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a scikit-learn dependency
        return None
    # Process-wide, for the life of the server: one thread per BLAS/OpenMP call (HistGradientBoosting's predict,
    # linear models' matmul), so concurrent requests do not oversubscribe the cores.
    return ThreadpoolController().limit(limits=1)


class _ArrayPipeline:
    """The model's preprocessing and estimator called on arrays: no DataFrame, and a forest's trees called in a
    plain loop (the sums are in scikit-learn's order, so results are bit-identical)."""

    def __init__(self, steps: list[Any], final: Any, columns: list[tuple[Any, np.ndarray]] | None) -> None:
        self.steps = steps
        self.final = final
        self.columns = columns
        trees = getattr(final, "estimators_", None)
        forest = type(final).__name__ in _FORESTS and getattr(final, "n_outputs_", 1) == 1
        self.trees = list(trees) if forest and trees is not None else None
        self.classes = getattr(final, "classes_", None)
        self.has_proba = hasattr(final, "predict_proba")

    @classmethod
    def build(
        cls, model: Any, schema: FeatureSchema, reference: Callable[[np.ndarray, bool], Prediction]
    ) -> _ArrayPipeline | None:
        """The array form of `model`, or None when there is none or it disagrees with `reference` on probe rows."""
        import copy

        if not schema.all_numeric:
            return None
        steps = [
            step
            for _, step in getattr(model, "steps", [("model", model)])
            if step not in (None, "passthrough")
        ]
        final = steps.pop()
        columns: list[tuple[Any, np.ndarray]] | None = None
        if steps and hasattr(steps[0], "transformers_"):
            columns = _column_plan(steps[0], schema)
            if columns is None:
                return None
            steps = steps[1:]
        elif getattr(model, "feature_names_in_", None) is not None:
            return None
        # Parts fitted on a DataFrame remember its column names and warn on every array call: drop the names.
        steps, final, columns = copy.deepcopy((steps, final, columns))
        for part in [*steps, final, *(t for t, _ in columns or [])]:
            for estimator in _estimators(part):
                estimator.__dict__.pop("feature_names_in_", None)
        fast = cls(steps, final, columns)
        rng = np.random.default_rng(0)
        probe = np.vstack([np.zeros((1, schema.width)), rng.normal(size=(32, schema.width)) * 3])
        try:
            for want in (False, True):
                ours, theirs = fast.predict(probe, want), reference(probe, want)
                if ours.proba is None or theirs.proba is None:
                    same_proba = ours.proba is theirs.proba
                else:
                    same_proba = np.array_equal(ours.proba, theirs.proba)
                if not np.array_equal(ours.predict, theirs.predict) or not same_proba:
                    log.info("the array form of the model differs from the model; using the model as it is")
                    return None
        except Exception as exc:  # any failure of the array form: use the model as it is
            log.info("no array form of the model (%s: %s); using the model as it is", type(exc).__name__, exc)
            return None
        return fast

    def _transform(self, rows: np.ndarray) -> np.ndarray:
        x: Any = rows
        if self.columns is not None:
            parts = [x[:, idx] if t == "passthrough" else t.transform(x[:, idx]) for t, idx in self.columns]
            x = np.hstack([p.toarray() if hasattr(p, "toarray") else p for p in parts])
        for step in self.steps:
            x = step.transform(x)
        return np.asarray(x)

    def predict(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        x = self._transform(rows)
        if self.trees is None:
            labels = np.asarray(self.final.predict(x))
            proba = np.asarray(self.final.predict_proba(x)) if want_proba and self.has_proba else None
            return Prediction(labels, proba)
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        if self.classes is None:
            total = np.zeros(len(x32), dtype=np.float64)
            for tree in self.trees:
                total += tree.predict(x32, check_input=False)
            return Prediction(total / len(self.trees), None)
        summed = np.zeros((len(x32), len(self.classes)), dtype=np.float64)
        for tree in self.trees:
            summed += tree.predict_proba(x32, check_input=False)
        summed /= len(self.trees)
        return Prediction(
            self.classes.take(np.argmax(summed, axis=1), axis=0), summed if want_proba else None
        )


_FORESTS = frozenset(
    {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"}
)


def _column_plan(transformer: Any, schema: FeatureSchema) -> list[tuple[Any, np.ndarray]] | None:
    """A fitted ColumnTransformer as (part, column indices) in output order; None when it cannot run on arrays."""
    names = list(getattr(transformer, "feature_names_in_", schema.names))
    if names != list(schema.names):
        return None
    plan: list[tuple[Any, np.ndarray]] = []
    for _, part, cols in transformer.transformers_:
        if isinstance(part, str) and part == "drop":
            continue
        if isinstance(part, str) and part != "passthrough":
            return None
        selected = np.atleast_1d(np.asarray(cols))
        if selected.dtype == bool:
            idx = np.flatnonzero(selected)
        elif selected.dtype.kind in "iu":
            idx = selected.astype(np.intp)
        else:
            try:
                idx = np.array([names.index(str(c)) for c in selected], dtype=np.intp)
            except ValueError:
                return None
        if len(idx):
            plan.append((part, idx))
    return plan


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
    onnx = manifest.onnx
    if inference == "sklearn" and loaded.model is None:
        raise ModelLoadError(
            f"--inference sklearn, but {directory} holds an ONNX graph with no scikit-learn form"
        )
    if inference == "onnx" and loaded.onnx is None:
        raise ModelLoadError(
            f"--inference onnx, but the manifest's ONNX export is {onnx.status}: {onnx.reason}"
        )
    predictor: Predictor | None = None
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
            if inference == "onnx" or loaded.model is None:  # an imported ONNX graph has no other way to run
                raise ModelLoadError(f"onnxruntime cannot run {loaded.onnx_path}: {exc}") from exc
            log.warning("onnxruntime cannot run %s (%s); serving with scikit-learn", loaded.onnx_path, exc)
    if predictor is None:
        predictor = SklearnPredictor(loaded.model, schema)
    name = name or manifest.name
    return ServedModel(
        manifest, schema, predictor, directory, name, version or loaded.sha256[:12], loaded.sha256
    )
