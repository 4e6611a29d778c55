"""The model directory: write (skops + verified ONNX + manifest) and load (sha256 first, explicit trust list).

Layout (docs/architecture.md): model.skops, optional model.onnx, manifest.json. manifest.json is written last, so a
directory with a manifest is complete.
"""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gyre.api import env
from gyre.training.estimators import ESTIMATORS, PREPROCESSING_TYPES
from gyre.training.features import coerce_features, onnx_feeds
from gyre.training.manifest import (
    MANIFEST_FILE,
    ArtifactRef,
    DatasetRef,
    FeatureSpec,
    Lineage,
    ModelManifest,
    OnnxInfo,
    TargetSpec,
)

if TYPE_CHECKING:
    import pandas as pd

    from gyre.training.trainer import TrainingResult

__all__ = [
    "MODEL_FILE",
    "ONNX_FILE",
    "ONNX_TOLERANCE",
    "TRUSTED_TYPES",
    "LoadedModel",
    "ModelIntegrityError",
    "OnnxOutcome",
    "UntrustedModelError",
    "check_trusted",
    "convert_to_onnx",
    "library_versions",
    "load_model_dir",
    "write_model_dir",
]

MODEL_FILE = "model.skops"
ONNX_FILE = "model.onnx"
ONNX_TOLERANCE = 1e-5
"""Max |onnx - sklearn| for probabilities (absolute) and regression predictions (absolute or relative)."""

# Types skops does not trust by default that our allowlisted pipelines legitimately contain (fitted trees,
# neighbour indexes and their metrics), plus the allowlist itself. Derived from the allowlist, checked by a test
# that trains every allowlisted estimator.
_INTERNAL_TYPES = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
)
TRUSTED_TYPES: frozenset[str] = frozenset(
    {f"{module}.{cls}" for module, cls, _task in ESTIMATORS.values()}
    | set(PREPROCESSING_TYPES)
    | set(_INTERNAL_TYPES)
)


class ModelIntegrityError(Exception):
    """A model file's sha256 differs from the manifest, or the directory is incomplete or malformed."""


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
    model: Any
    """The fitted scikit-learn Pipeline."""
    onnx_path: Path | None
    """model.onnx when verified and its sha256 matched; None otherwise."""


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the artifact."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in (
        "scikit-learn",
        "skops",
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


def check_trusted(untrusted: Sequence[str]) -> list[str]:
    """The types skops reports as untrusted; UntrustedModelError when any is outside TRUSTED_TYPES."""
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise UntrustedModelError(
            f"the model holds types outside Gyre's allowlist: {', '.join(refused)}; refusing to load it"
        )
    return list(untrusted)


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
    pipeline: Any, features: Sequence[FeatureSpec], task: str, x_check: pd.DataFrame
) -> OnnxOutcome:
    """Convert with skl2onnx (one [N, 1] input per feature) and keep it only if proven equivalent on `x_check`.

    Classification: identical labels and probabilities within ONNX_TOLERANCE. Regression: predictions within
    ONNX_TOLERANCE (absolute or relative). Otherwise status is unavailable with the reason.
    """
    if len(x_check) == 0:
        return OnnxOutcome(
            None, OnnxInfo(status="unavailable", reason="no held-out rows to verify a conversion")
        )
    try:
        import onnxruntime as ort
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        initial = [
            (f.name, FloatTensorType([None, 1]) if f.dtype == "number" else StringTensorType([None, 1]))
            for f in features
        ]
        options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if task == "classification" else None
        onx = convert_sklearn(
            pipeline, initial_types=initial, target_opset={"": 17, "ai.onnx.ml": 3}, options=options
        )
        mapping = {value.name: f.name for value, f in zip(onx.graph.input, features, strict=True)}
        _rename_inputs(onx, mapping)
        data = onx.SerializeToString()
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        inputs = {f.name: f.name for f in features}
        outputs = [o.name for o in session.get_outputs()]
        coerced = coerce_features(x_check, features)
        result = session.run(None, onnx_feeds(coerced, features, inputs))
    except Exception as exc:  # converters raise anything from RuntimeError to NotImplementedError
        reason = f"conversion failed: {type(exc).__name__}: {str(exc)[:300]}"
        return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason))
    if task == "classification":
        labels = np.asarray(result[0]).ravel()
        expected = np.asarray(pipeline.predict(coerced))
        if len(result) < 2:
            return OnnxOutcome(
                None, OnnxInfo(status="unavailable", reason="the ONNX graph has no probabilities")
            )
        diff = float(
            np.max(np.abs(np.asarray(result[1], dtype=np.float64) - pipeline.predict_proba(coerced)))
        )
        same = labels.shape == expected.shape and bool(
            np.all(labels.astype(object) == expected.astype(object))
        )
        if not same:
            mismatched = int(np.sum(labels.astype(object) != expected.astype(object)))
            reason = f"labels differ from scikit-learn on {mismatched}/{len(expected)} held-out rows"
            return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason, max_abs_proba_diff=diff))
        ok = diff <= ONNX_TOLERANCE
    else:
        predicted = np.asarray(result[0], dtype=np.float64).ravel()
        expected_r = np.asarray(pipeline.predict(coerced), dtype=np.float64)
        diff = float(np.max(np.abs(predicted - expected_r)))
        ok = bool(np.allclose(predicted, expected_r, rtol=ONNX_TOLERANCE, atol=ONNX_TOLERANCE))
    if not ok:
        reason = f"outputs differ from scikit-learn by up to {diff:.3g} (tolerance {ONNX_TOLERANCE:g})"
        return OnnxOutcome(None, OnnxInfo(status="unavailable", reason=reason, max_abs_proba_diff=diff))
    info = OnnxInfo(
        status="verified",
        path=ONNX_FILE,
        sha256=hashlib.sha256(data).hexdigest(),
        reason=f"equivalent to scikit-learn on {len(coerced)} held-out rows (max diff {diff:.3g})",
        max_abs_proba_diff=diff,
        inputs=inputs,
        outputs=outputs,
        verified_rows=len(coerced),
    )
    return OnnxOutcome(data, info)


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
) -> ModelManifest:
    """Write model.skops, model.onnx (only when verified) and manifest.json (last) into `out_dir`."""
    import skops.io as sio

    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    model_bytes = sio.dumps(result.pipeline)
    check_trusted(sio.get_untrusted_types(data=model_bytes))
    _write_atomic(directory / MODEL_FILE, model_bytes)
    if onnx:
        outcome = convert_to_onnx(result.pipeline, result.features, result.task, result.x_test)
    else:
        outcome = OnnxOutcome(None, OnnxInfo(status="unavailable", reason="ONNX conversion disabled"))
    if outcome.model is not None:
        _write_atomic(directory / ONNX_FILE, outcome.model)
    elif (directory / ONNX_FILE).exists():
        (directory / ONNX_FILE).unlink()
    manifest = ModelManifest(
        name=name,
        task=result.task,
        estimator=result.estimator,
        params=result.params,
        features=result.features,
        target=result.target,
        metrics=result.metrics,
        dataset=dataset,
        artifact=ArtifactRef(path=MODEL_FILE, sha256=hashlib.sha256(model_bytes).hexdigest()),
        onnx=outcome.info,
        seed=result.seed,
        image=image if image is not None else os.environ.get(env.IMAGE),
        libraries=library_versions(),
        created_at=created_at or datetime.now(UTC).replace(microsecond=0),
        lineage=lineage or Lineage(),
    )
    _write_atomic(directory / MANIFEST_FILE, manifest.to_json().encode())
    return manifest


def _verified_bytes(directory: Path, relpath: str, sha256: str, what: str) -> bytes:
    path = (directory / relpath).resolve()
    if directory.resolve() not in path.parents:
        raise ModelIntegrityError(f"{what} path {relpath!r} escapes the model directory")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(f"{what} {path} is missing") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.removeprefix("sha256:"):
        raise ModelIntegrityError(
            f"{what} {path} has sha256 {actual} but the manifest says {sha256}; refusing to load it"
        )
    return data


def load_model_dir(directory: str | os.PathLike[str]) -> LoadedModel:
    """Load a local model directory safely.

    Order matters: parse manifest.json, check model.skops' sha256 against it, check the skops file's types against
    TRUSTED_TYPES, and only then deserialise (with exactly those types trusted; never pickle). The ONNX file, when
    verified, is sha256-checked too. Raises ModelIntegrityError or UntrustedModelError.
    """
    import skops.io as sio

    root = Path(directory)
    try:
        manifest = ModelManifest.model_validate_json((root / MANIFEST_FILE).read_bytes())
    except FileNotFoundError:
        raise ModelIntegrityError(f"{root / MANIFEST_FILE} is missing: not a Gyre model directory") from None
    except ValueError as exc:
        raise ModelIntegrityError(f"{root / MANIFEST_FILE} is not a valid manifest: {exc}") from None
    data = _verified_bytes(root, manifest.artifact.path, manifest.artifact.sha256, "model artifact")
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise ModelIntegrityError(f"{root / manifest.artifact.path} is not a skops file: {exc}") from None
    trusted = check_trusted(untrusted)
    model = sio.loads(data, trusted=trusted)
    onnx_path = None
    if manifest.onnx.status == "verified" and manifest.onnx.path and manifest.onnx.sha256:
        _verified_bytes(root, manifest.onnx.path, manifest.onnx.sha256, "ONNX model")
        onnx_path = root / manifest.onnx.path
    return LoadedModel(directory=root, manifest=manifest, model=model, onnx_path=onnx_path)


# Kept importable for callers building manifests by hand (model import).
_ = (TargetSpec,)
