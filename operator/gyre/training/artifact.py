"""The model directory: write (skops + verified ONNX + manifest) and load (digests first, then an allowlist).

Layout (docs/architecture.md): model.skops, optional model.onnx, manifest.json. manifest.json is written last, so a
directory with a manifest is complete. The model's digest is the sha256 of manifest.json's bytes; the manifest
records the sha256 of the other files, so the one digest pins everything the server reads.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import tempfile
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gyre.api import env
from gyre.api.trainingrun import BOOSTED_KINDS
from gyre.training.estimators import ESTIMATORS, PREPROCESSING_TYPES, estimator_class
from gyre.training.features import coerce_features, onnx_feeds
from gyre.training.manifest import (
    MANIFEST_FILE,
    ArtifactRef,
    DatasetRef,
    DataSummary,
    Evaluation,
    FeatureSpec,
    Lineage,
    ModelManifest,
    NativeModelRef,
    OnnxInfo,
)
from gyre.training.preprocess import FEATURE_TYPES

if TYPE_CHECKING:
    import pandas as pd

    from gyre.training.trainer import TrainingResult

__all__ = [
    "MATRIX_INPUT",
    "MODEL_FILE",
    "ONNX_CHECK_ROWS",
    "ONNX_FILE",
    "ONNX_TOLERANCE",
    "LoadedModel",
    "ModelFiles",
    "ModelIntegrityError",
    "OnnxOutcome",
    "UntrustedModelError",
    "check_trusted",
    "convert_to_onnx",
    "gyre_allowlist",
    "library_versions",
    "load_model_dir",
    "model_types",
    "write_manifest",
    "write_model_dir",
    "write_model_files",
]

MODEL_FILE = "model.skops"
ONNX_FILE = "model.onnx"
MATRIX_INPUT = "input"
"""The one [N, F] input of a matrix-mode ONNX graph (OnnxInfo.inputs is None)."""
ONNX_TOLERANCE = 1e-5
"""Max |onnx - sklearn| for probabilities (absolute) and regression predictions (absolute or relative)."""
ONNX_CHECK_ROWS = 2000
"""Held-out rows a trained model's ONNX twin is checked on: the first ones of the test split, which the split has
shuffled, so a seeded random sample. Tree thresholds that ONNX holds as float32 are met by rows anywhere in the
data, so more rows of the same distribution add time (onnxruntime and the library each predict them) but little
evidence. The manifest's onnx.verifiedRows says how many."""

# What a pipeline from Gyre's trainer holds besides the allowlisted estimators and preprocessing steps: the fitted
# internals of those estimators (trees, binners, neighbour indexes, the dummy first stage of gradient boosting, the
# base trees of forests) and plain data. Checked by a test that trains every allowlisted estimator with every
# preprocessing option (and the parameters that change the internals) and loads it.
_INTERNAL_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.dummy.DummyClassifier",
    "sklearn.dummy.DummyRegressor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.random.mtrand.RandomState",
    "numpy.random._generator.Generator",
    *(
        f"builtins.{t.__name__}"
        for t in (dict, list, tuple, set, str, int, float, bool, bytes, type(None), slice)
    ),
)
# Every class of these modules, chosen by estimator parameters (`loss`, `metric`): data plus fixed formulas.
# PyFuncDistance wraps a Python function, so it stays out.
_PARAMETER_MODULES = (
    "sklearn._loss.loss",
    "sklearn._loss.link",
    "sklearn._loss._loss",
    "sklearn.metrics._dist_metrics",
)
_NEVER = ("PyFuncDistance",)


def _qualified(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@cache
def gyre_allowlist() -> frozenset[str]:
    """Every type a model file from Gyre's trainer may hold, by module-qualified name (as skops records it).

    The allowlisted estimators (gyre.api.trainingrun.ESTIMATOR_ALLOWLIST) and preprocessing steps, their fitted
    internals, sklearn's loss, link and distance classes, numpy's scalar types, and plain containers. No function: a
    function in a model file (FunctionTransformer(func=...)) is code, which only an import may allow.
    """
    import importlib
    import inspect

    # XGBoost and LightGBM models are never in a skops file (their own format beside it), so never trusted in one.
    names = {_qualified(estimator_class(name)) for name in ESTIMATORS if name not in BOOSTED_KINDS}
    names |= set(PREPROCESSING_TYPES) | set(FEATURE_TYPES) | set(_INTERNAL_TYPES)
    for module in _PARAMETER_MODULES:
        for name, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if cls.__module__ == module and not name.startswith(_NEVER):
                names.add(_qualified(cls))
    names |= {_qualified(t) for t in set(np.sctypeDict.values())}
    return frozenset(names)


class ModelIntegrityError(Exception):
    """manifest.json differs from the pin, a file's sha256 differs from the manifest, or a file is missing or
    malformed."""


class UntrustedModelError(Exception):
    """A skops file holds types outside Gyre's allowlist; it is never deserialised."""


@dataclass(frozen=True)
class OnnxOutcome:
    """Result of converting and verifying a pipeline."""

    model: bytes | None
    info: OnnxInfo


@dataclass(frozen=True)
class LoadedModel:
    """A verified, loaded model directory."""

    directory: Path
    manifest: ModelManifest
    sha256: str
    """The model's digest: hex sha256 of manifest.json's bytes."""
    model: Any
    """The fitted scikit-learn Pipeline; None for a model imported as an ONNX graph."""
    onnx: bytes | None
    """The bytes of model.onnx when verified and their sha256 matched; None otherwise."""
    onnx_path: Path | None
    """Where `onnx` was read from (for messages only: never read it again)."""


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the artifact."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in (
        "scikit-learn",
        "skops",
        "xgboost-cpu",
        "lightgbm",
        "onnxmltools",
        "numpy",
        "scipy",
        "pandas",
        "skl2onnx",
        "onnxruntime",
        "onnx",
        "gyre",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def model_types(data: bytes) -> dict[str, str]:
    """Every type and function a skops file would load, mapped to the object that holds it (for messages).

    skops' own audit (`get_untrusted_types`) reports only what skops does not trust by default, which includes
    numpy ufuncs and most of scikit-learn. Here each node of skops' own tree is told to trust nothing, so its audit
    reports every type, function and method the file names; nothing is imported or constructed.
    Raises ModelIntegrityError when `data` is not a skops file.
    """
    from skops.io._audit import Node, get_tree
    from skops.io._utils import read_schema

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema, context = read_schema(archive)
            root = get_tree(schema, context, trusted=None)
    except Exception as exc:  # a damaged or foreign file: zip, JSON and skops errors alike
        raise ModelIntegrityError(f"not a skops file: {type(exc).__name__}: {exc}") from None
    owners: dict[str, str] = {}
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, owner = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        node.trusted = []  # trust nothing: the audit below then names every type, not only those skops distrusts
        name = f"{node.module_name}.{node.class_name}"
        owners.setdefault(name, owner)
        inner = owner if node.module_name == "builtins" else name
        for child in node.children.values():
            values = (
                child.values() if isinstance(child, dict) else child if isinstance(child, list) else [child]
            )
            stack.extend((value, inner) for value in values if isinstance(value, Node))
    # The audit also names what is not a node of its own (types held as values, bound methods, bit generators).
    return {name: owners.get(name, "") for name in sorted(root.get_unsafe_set() | set(owners))}


def check_trusted(data: bytes, *, allowed: Collection[str] = (), what: str = MODEL_FILE) -> list[str]:
    """The types in skops file `data`; UntrustedModelError naming each one outside gyre_allowlist() | allowed."""
    types = model_types(data)
    refused = [name for name in types if name not in gyre_allowlist() and name not in allowed]
    if refused:
        named = ", ".join(f"{name} (in {types[name]})" if types[name] else name for name in refused)
        raise UntrustedModelError(
            f"{what} contains {named}, which Gyre's allowlist does not include; refusing to load it "
            "(a model import may allow more types explicitly: gyre model import --allow-type TYPE)"
        )
    return list(types)


def _rename_inputs(model: Any, mapping: dict[str, str]) -> None:
    # skl2onnx sanitises input names ("sepal length (cm)" -> "sepal_length__cm_"); restore the feature names so the
    # graph's inputs are exactly the model's features.
    graph = model.graph
    for value in graph.input:
        if value.name in mapping:
            value.name = mapping[value.name]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]


def convert_to_onnx(
    pipeline: Any,
    features: Sequence[FeatureSpec],
    task: str,
    x_check: pd.DataFrame,
    *,
    rows: str = "held-out rows",
    matrix: bool = False,
    predictions: tuple[Any, Any] | None = None,
) -> OnnxOutcome:
    """Convert with skl2onnx (one [N, 1] input per feature; with `matrix`, one [N, F] float input for an all-numeric
    model that takes an array) and keep it only if proven equivalent on `x_check`.

    Classification: identical labels and probabilities within ONNX_TOLERANCE. Regression: predictions within
    ONNX_TOLERANCE (absolute or relative). Otherwise status is unavailable with the reason. `rows` names the rows
    in the reason ("held-out rows", "rows of sample.csv", ...). `predictions` holds the pipeline's own (predictions,
    probabilities or None) on `x_check` when the caller has them, so they are not made again.
    """
    if len(x_check) == 0:
        return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=f"no {rows} to verify a conversion"))
    try:
        import onnxruntime as ort
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        from gyre.training.transformers import onnx_options, register_onnx_converters

        register_onnx_converters()
        # An imported model may be a bare estimator rather than a Pipeline.
        final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
        if type(final).__name__ in BOOSTED_KINDS:
            from gyre.training.boosting import register_onnx_converters as register_boosted_converters

            register_boosted_converters()
        initial = [
            (f.name, FloatTensorType([None, 1]) if f.dtype == "number" else StringTensorType([None, 1]))
            for f in features
        ]
        if matrix:
            initial = [(MATRIX_INPUT, FloatTensorType([None, len(features)]))]
        options: dict[int, dict[str, Any]] = onnx_options(pipeline)
        if task == "classification":
            options[id(final)] = {"zipmap": False}
        onx = convert_sklearn(
            pipeline, initial_types=initial, target_opset={"": 17, "ai.onnx.ml": 3}, options=options or None
        )
        if not matrix:
            mapping = {value.name: f.name for value, f in zip(onx.graph.input, features, strict=True)}
            _rename_inputs(onx, mapping)
        data = onx.SerializeToString()
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        inputs = None if matrix else {f.name: f.name for f in features}
        outputs = [o.name for o in session.get_outputs()]
        coerced = coerce_features(x_check, features)
        feeds = (
            {MATRIX_INPUT: coerced.to_numpy(dtype=np.float32)}
            if inputs is None
            else onnx_feeds(coerced, features, inputs)
        )
        result = session.run(None, feeds)
    except Exception as exc:  # converters raise anything from RuntimeError to NotImplementedError
        reason = f"conversion failed: {type(exc).__name__}: {str(exc)[:300]}"
        return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason))
    if task == "classification":
        labels = np.asarray(result[0]).ravel()
        if len(result) < 2:
            return OnnxOutcome(
                None, OnnxInfo(status="unavailable", reason="the ONNX graph has no probabilities")
            )
        made = predictions if predictions is not None and predictions[1] is not None else None
        expected = np.asarray(made[0] if made is not None else pipeline.predict(coerced))
        proba = np.asarray(made[1] if made is not None else pipeline.predict_proba(coerced), dtype=np.float64)
        diff = float(np.max(np.abs(np.asarray(result[1], dtype=np.float64) - proba)))
        if labels.shape != expected.shape:
            reason = f"the ONNX graph gives {labels.shape[0]} labels for {len(expected)} {rows}"
            return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason, max_abs_proba_diff=diff))
        # Where the two likeliest classes tie within the tolerance, either label is argmax's: not a difference.
        top = np.sort(proba, axis=1)
        tied = top[:, -1] - top[:, -2] <= ONNX_TOLERANCE if proba.shape[1] > 1 else np.zeros(len(proba), bool)
        mismatched = int(np.sum((labels.astype(object) != expected.astype(object)) & ~tied))
        if mismatched:
            reason = f"labels differ from scikit-learn on {mismatched}/{len(expected)} {rows}"
            return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason, max_abs_proba_diff=diff))
        ok = diff <= ONNX_TOLERANCE
    else:
        predicted = np.asarray(result[0], dtype=np.float64).ravel()
        expected_r = np.asarray(
            predictions[0] if predictions is not None else pipeline.predict(coerced), dtype=np.float64
        )
        diff = float(np.max(np.abs(predicted - expected_r)))
        ok = bool(np.allclose(predicted, expected_r, rtol=ONNX_TOLERANCE, atol=ONNX_TOLERANCE))
    if not ok:
        reason = (
            f"outputs differ from scikit-learn on {rows} by up to {diff:.3g} (tolerance {ONNX_TOLERANCE:g})"
        )
        return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason, max_abs_proba_diff=diff))
    info = OnnxInfo(
        status="verified",
        path=ONNX_FILE,
        sha256=hashlib.sha256(data).hexdigest(),
        reason=f"equivalent to scikit-learn on {len(coerced)} {rows} (max diff {diff:.3g})",
        max_abs_proba_diff=diff,
        inputs=inputs,
        outputs=outputs,
        verified_rows=len(coerced),
    )
    return OnnxOutcome(data, info)


def _convert_trained(result: TrainingResult) -> OnnxOutcome:
    """The ONNX twin of a trained pipeline, checked on the first ONNX_CHECK_ROWS held-out rows against the
    predictions the trainer already made on them."""
    n = min(len(result.x_test), ONNX_CHECK_ROWS)
    made = result.test_predictions
    known = None
    if made is not None:
        known = (np.asarray(made[0])[:n], None if made[1] is None else np.asarray(made[1])[:n])
    rows = "held-out rows" if n == len(result.x_test) else f"held-out rows (of {len(result.x_test)})"
    outcome = convert_to_onnx(
        result.pipeline, result.features, result.task, result.x_test.iloc[:n], rows=rows, predictions=known
    )
    if outcome.info.status == "verified":
        outcome = OnnxOutcome(outcome.model, outcome.info.model_copy(update={"verified_on": "held-out"}))
    return outcome


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class ModelFiles:
    """What write_model_files wrote, for the manifest."""

    artifact: ArtifactRef
    native: NativeModelRef | None
    onnx: OnnxInfo


def write_model_files(
    out_dir: str | os.PathLike[str], result: TrainingResult, *, onnx: bool = True
) -> ModelFiles:
    """Write model.skops, the booster's own file and model.onnx (only when verified) into `out_dir`: every file of
    the model directory but its manifest.

    An XGBoost or LightGBM model is written in its library's own format (manifest `native`) and model.skops holds
    only the preprocessing before it.
    """
    import skops.io as sio

    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    skops_part, native = result.pipeline, None
    if result.estimator in BOOSTED_KINDS:
        from gyre.training.boosting import native_file, split_pipeline

        skops_part, booster = split_pipeline(result.pipeline)
        native_name, native_format, native_bytes = native_file(result.estimator, booster)
        _write_atomic(directory / native_name, native_bytes)
        native = NativeModelRef(
            path=native_name, sha256=hashlib.sha256(native_bytes).hexdigest(), format=native_format
        )
    model_bytes = sio.dumps(skops_part)
    check_trusted(model_bytes)
    _write_atomic(directory / MODEL_FILE, model_bytes)
    if onnx and result.onnx_blockers:
        reason = "served through scikit-learn: " + "; ".join(result.onnx_blockers)
        outcome = OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason))
    elif onnx:
        outcome = _convert_trained(result)
    else:
        outcome = OnnxOutcome(None, OnnxInfo(status="unavailable", reason="ONNX conversion disabled"))
    if outcome.model is not None:
        _write_atomic(directory / ONNX_FILE, outcome.model)
    elif (directory / ONNX_FILE).exists():
        (directory / ONNX_FILE).unlink()
    artifact = ArtifactRef(path=MODEL_FILE, sha256=hashlib.sha256(model_bytes).hexdigest())
    return ModelFiles(artifact=artifact, native=native, onnx=outcome.info)


def write_manifest(
    out_dir: str | os.PathLike[str],
    result: TrainingResult,
    files: ModelFiles,
    *,
    name: str,
    dataset: DatasetRef | None,
    lineage: Lineage | None = None,
    image: str | None = None,
    created_at: datetime | None = None,
    evaluation: Evaluation | None = None,
    data_summary: DataSummary | None = None,
) -> ModelManifest:
    """Write manifest.json, which names and digests the files write_model_files wrote; it is written last, so a
    directory with a manifest is complete. The model's digest is the returned manifest's `sha256()`."""
    manifest = ModelManifest(
        name=name,
        task=result.task,
        estimator=result.estimator,
        params=result.params,
        features=result.features,
        transforms=result.transforms or None,
        target=result.target,
        metrics=result.metrics,
        test_rows=result.rows_test,
        dataset=dataset,
        artifact=files.artifact,
        native=files.native,
        onnx=files.onnx,
        seed=result.seed,
        image=image if image is not None else os.environ.get(env.IMAGE),
        libraries=library_versions(),
        created_at=created_at or datetime.now(UTC).replace(microsecond=0),
        lineage=lineage or Lineage(),
        slices=result.slices.manifest() if result.slices is not None else None,
        evaluation=evaluation,
        data_summary=data_summary,
        importances=result.importances,
        reference_mean=result.reference_mean,
    )
    _write_atomic(Path(out_dir) / MANIFEST_FILE, manifest.to_bytes())
    return manifest


def write_model_dir(
    out_dir: str | os.PathLike[str],
    result: TrainingResult,
    *,
    name: str,
    dataset: DatasetRef | None,
    lineage: Lineage | None = None,
    image: str | None = None,
    onnx: bool = True,
    created_at: datetime | None = None,
    evaluation: Evaluation | None = None,
    data_summary: DataSummary | None = None,
) -> ModelManifest:
    """The whole model directory: write_model_files, then write_manifest."""
    files = write_model_files(out_dir, result, onnx=onnx)
    return write_manifest(
        out_dir,
        result,
        files,
        name=name,
        dataset=dataset,
        lineage=lineage,
        image=image,
        created_at=created_at,
        evaluation=evaluation,
        data_summary=data_summary,
    )


def _verified_bytes(directory: Path, relpath: str, sha256: str) -> bytes:
    # Read once: the bytes hashed here are the bytes deserialised, so the file cannot change in between.
    path = (directory / relpath).resolve()
    if directory.resolve() not in path.parents:
        raise ModelIntegrityError(f"{relpath} escapes the model directory; refusing to load it")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"{relpath} is missing from {directory}, but {MANIFEST_FILE} records it"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.removeprefix("sha256:"):
        raise ModelIntegrityError(
            f"{relpath} in {directory} has sha256 {actual}, but {MANIFEST_FILE} records "
            f"{sha256.removeprefix('sha256:')}; refusing to load it"
        )
    return data


def _read_manifest(root: Path, expect_sha256: str | None) -> tuple[ModelManifest, str]:
    try:
        data = (root / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(f"{root / MANIFEST_FILE} is missing: not a Gyre model directory") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        manifest: ModelManifest | None = ModelManifest.model_validate_json(data)
        problem = ""
    except ValueError as exc:
        manifest, problem = None, " ".join(str(exc).split())
    expected = expect_sha256.removeprefix("sha256:") if expect_sha256 else None
    if expected is not None and expected != digest:
        # A pin from a Gyre before the manifest was pinned is model.skops' digest: say so.
        artifact = manifest.artifact if manifest is not None else None
        legacy = artifact is not None and artifact.sha256.removeprefix("sha256:") == expected
        hint = (
            f" (the pin is {artifact.path}'s digest, as Gyre recorded before the manifest was pinned: "
            "retrain or re-import the model)"
            if legacy and artifact is not None
            else ""
        )
        raise ModelIntegrityError(
            f"{MANIFEST_FILE} in {root} has sha256 {digest}, but this server was told to serve {expected}: "
            f"refusing a model the operator did not approve{hint}"
        )
    if manifest is None:
        raise ModelIntegrityError(f"{root / MANIFEST_FILE} is not a valid manifest: {problem}")
    return manifest, digest


def _rebuild(
    root: Path, manifest: ModelManifest, native: NativeModelRef, preprocess: Any, data: bytes
) -> Any:
    from gyre.training.boosting import NATIVE_FORMATS, rebuild_pipeline

    expected = NATIVE_FORMATS.get(manifest.estimator)
    if expected is None or expected[1] != native.format:
        raise ModelIntegrityError(
            f"{MANIFEST_FILE} in {root} records a {native.format} model for estimator {manifest.estimator}"
        )
    try:
        return rebuild_pipeline(
            manifest.estimator, preprocess, data, classes=manifest.target.classes, params=manifest.params
        )
    except Exception as exc:  # the libraries' parsers raise their own errors for a malformed file
        raise ModelIntegrityError(
            f"{native.path} in {root} is not a valid {native.format} model: {type(exc).__name__}: {exc}"
        ) from None


def load_model_dir(directory: str | os.PathLike[str], *, expect_sha256: str | None = None) -> LoadedModel:
    """Load a local model directory safely.

    Order matters: read manifest.json once and, when `expect_sha256` pins the model, compare its bytes' sha256 to
    the pin; check every file the manifest records (model.skops, and model.onnx when verified) against its sha256,
    reading each file once; check every type in the skops file against gyre_allowlist() (plus the manifest's
    allowedTypes, only when pinned); only then deserialise with skops (never pickle), and rebuild an XGBoost or
    LightGBM model from its library's own file (manifest `native`). Raises ModelIntegrityError
    or UntrustedModelError, each with a one-line message naming the file.
    """
    import skops.io as sio

    root = Path(directory)
    manifest, digest = _read_manifest(root, expect_sha256)
    artifact = manifest.artifact
    data = _verified_bytes(root, artifact.path, artifact.sha256) if artifact is not None else b""
    native_bytes = (
        _verified_bytes(root, manifest.native.path, manifest.native.sha256)
        if manifest.native is not None
        else None
    )
    onnx_bytes = None
    if manifest.onnx.status in ("verified", "imported") and manifest.onnx.path and manifest.onnx.sha256:
        onnx_bytes = _verified_bytes(root, manifest.onnx.path, manifest.onnx.sha256)
    if artifact is None:
        # A model imported as an ONNX graph: nothing to deserialise besides the graph, hashed above.
        if onnx_bytes is None or manifest.onnx.status != "imported":
            raise ModelIntegrityError(
                f"{root / MANIFEST_FILE} records neither a skops file nor an imported ONNX graph"
            )
        model = None
    else:
        if artifact.allowed_types and expect_sha256 is None:
            raise UntrustedModelError(
                f"{MANIFEST_FILE} in {root} allows types beyond Gyre's allowlist ({', '.join(artifact.allowed_types)}), "
                f"which Gyre honours only for a pinned model: serve it with --expect-sha256 {digest}"
            )
        try:
            trusted = check_trusted(data, allowed=artifact.allowed_types, what=artifact.path)
        except ModelIntegrityError as exc:
            raise ModelIntegrityError(f"{artifact.path} in {root}: {exc}") from None
        model = sio.loads(data, trusted=trusted)
        if manifest.native is not None and native_bytes is not None:
            model = _rebuild(root, manifest, manifest.native, model, native_bytes)
    return LoadedModel(
        directory=root,
        manifest=manifest,
        sha256=digest,
        model=model,
        onnx=onnx_bytes,
        onnx_path=root / manifest.onnx.path if onnx_bytes is not None and manifest.onnx.path else None,
    )
