"""`gyre model import`: turn a trusted joblib or a skops model into a Gyre model directory (skops + manifest, and
an ONNX twin when it is proven equivalent).

Loading joblib runs arbitrary code from the file, so this only happens when the operator of the command says the
file is trusted (--trust-pickle). A skops file is never unpickled: its types are checked first, as the server
checks them. The result is a skops artifact whose types are checked against Gyre's allowlist plus the types the
command explicitly allows (--allow-type, recorded in the manifest and honoured only for a pinned model), so the
server never unpickles anything.

The ONNX twin is verified as training verifies it (gyre.training.artifact.convert_to_onnx), on the rows the user
gives (--sample-data) or, without them, on rows generated from the model's splits and learnt ranges
(gyre.training.verification). A model that fails is served through scikit-learn, with the reason in the manifest.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np

from gyre.api import env
from gyre.api.dataset import ColumnKind
from gyre.training.artifact import (
    MODEL_FILE,
    ONNX_FILE,
    ModelIntegrityError,
    check_trusted,
    convert_to_onnx,
    gyre_allowlist,
    library_versions,
)
from gyre.training.manifest import (
    MANIFEST_FILE,
    ArtifactRef,
    FeatureSpec,
    Lineage,
    ModelManifest,
    OnnxInfo,
    TargetSpec,
)
from gyre.training.verification import SampleDataError, boundary_rows, read_sample_rows

__all__ = ["ImportError_", "import_joblib", "import_onnx", "import_skops", "verify_onnx_twin"]


class ImportError_(Exception):
    """The model cannot be imported (not trusted, not a fitted estimator, types outside the allowlist)."""


class ImportOptions(TypedDict, total=False):
    """What a scikit-learn import takes besides the file, the name, the features and the output directory."""

    categorical: Sequence[str]
    """Features that are categorical strings (the rest are numbers)."""
    target_name: str
    image: str | None
    allow_types: Sequence[str]
    """Module-qualified types or functions (as skops records them, e.g. `numpy.log1p`) allowed beyond Gyre's
    allowlist; only those the model holds are recorded."""
    sample_data: str | os.PathLike[str] | None
    """CSV or Parquet rows to verify the ONNX twin on; None: rows generated from the model."""
    onnx: bool
    """Convert to ONNX at all (default True)."""


def import_joblib(
    source: str | os.PathLike[str],
    *,
    name: str,
    feature_names: Sequence[str],
    out_dir: str | os.PathLike[str],
    trust_pickle: bool,
    **options: Unpack[ImportOptions],
) -> ModelManifest:
    """Load `source` with joblib (only when `trust_pickle`), save it with skops, verify an ONNX twin, write a
    manifest. The model's digest is the manifest's `sha256()`.
    """
    if not trust_pickle:
        raise ImportError_(
            "refusing to load a joblib/pickle file: unpickling runs arbitrary code from the file. Pass "
            "--trust-pickle only for a file you produced or otherwise trust."
        )
    import pickle

    import joblib

    source_path = Path(source)
    try:
        model: Any = joblib.load(source_path)
    except FileNotFoundError:
        raise ImportError_(f"{source_path} does not exist") from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ImportError_(f"{source_path} is not a joblib file: {type(exc).__name__}: {exc}") from None
    except (AttributeError, ModuleNotFoundError) as exc:
        raise ImportError_(f"{source_path} needs code this Gyre does not have: {exc}") from None
    return _write(
        model, None, source_path, name=name, feature_names=feature_names, out_dir=out_dir, **options
    )


def import_skops(
    source: str | os.PathLike[str],
    *,
    name: str,
    feature_names: Sequence[str],
    out_dir: str | os.PathLike[str],
    **options: Unpack[ImportOptions],
) -> ModelManifest:
    """Import a skops file: its types are checked against Gyre's allowlist (plus `allow_types`) before anything
    is loaded, so no --trust-pickle is needed."""
    import skops.io as sio

    source_path = Path(source)
    data = _read(source_path)
    try:
        trusted = check_trusted(data, allowed=options.get("allow_types", ()), what=source_path.name)
    except ModelIntegrityError as exc:
        raise ImportError_(f"{source_path}: {exc}") from None
    model = sio.loads(data, trusted=trusted)
    return _write(
        model, data, source_path, name=name, feature_names=feature_names, out_dir=out_dir, **options
    )


def import_onnx(
    source: str | os.PathLike[str],
    *,
    name: str,
    feature_names: Sequence[str],
    out_dir: str | os.PathLike[str],
    task: str,
    classes: Sequence[str | int | float | bool] | None = None,
    categorical: Sequence[str] = (),
    target_name: str = "target",
    image: str | None = None,
) -> ModelManifest:
    """Import an ONNX graph as the model itself, with its declared signature: the features (numbers, or strings
    for `categorical`), the task and, for a classifier, the class labels in the order of its probabilities.

    The graph must take either one [N, 1] input per feature, named after it (float or double for numbers, string
    for strings), or one [N, F] float or double input when every feature is a number; a classifier must give
    labels and probabilities, a regressor one value per row. onnxruntime loads it and runs it on probe rows whose
    outputs must have those shapes (and labels among the classes) before anything is written.
    """
    import onnxruntime as ort

    names = _feature_names(feature_names, categorical)
    if task not in ("classification", "regression"):
        raise ImportError_(f"--task must be classification or regression, got {task!r}")
    if task == "classification" and not classes:
        raise ImportError_(
            "an ONNX classifier needs --classes: its labels, in the order of its probabilities"
        )
    source_path = Path(source)
    data = _read(source_path)
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types: not ONNX, unsupported operator, bad graph
        raise ImportError_(f"{source_path} is not an ONNX model onnxruntime can run: {exc}") from None
    features = _feature_specs(names, categorical)
    inputs = _onnx_inputs(session, features)
    rows, checked = _check_onnx_outputs(session, features, inputs, task, classes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / ONNX_FILE).write_bytes(data)
    meta = session.get_modelmeta()
    info = OnnxInfo(
        status="imported",
        path=ONNX_FILE,
        sha256=hashlib.sha256(data).hexdigest(),
        reason=f"imported ONNX graph ({meta.producer_name or 'unknown producer'}); {checked} on {rows} probe rows",
        inputs=inputs,
        outputs=[o.name for o in session.get_outputs()],
        verified_rows=rows,
        verified_on="generated",
    )
    manifest = ModelManifest(
        name=name,
        task=task,  # type: ignore[arg-type]
        estimator=f"onnx:{source_path.stem}",
        features=features,
        target=TargetSpec(
            name=target_name, classes=list(classes) if task == "classification" and classes else None
        ),
        dataset=None,
        artifact=None,
        onnx=info,
        **_provenance(source_path, image),
    )
    (out / MANIFEST_FILE).write_bytes(manifest.to_bytes())
    return manifest


def _onnx_inputs(session: Any, features: Sequence[FeatureSpec]) -> dict[str, str] | None:
    """Feature -> input name (one [N, 1] input per feature), or None for one [N, F] input."""
    graph_inputs = {i.name: i for i in session.get_inputs()}
    width = len(features)

    def rank2(node: Any, columns: int) -> bool:
        shape = node.shape
        return len(shape) == 2 and (not isinstance(shape[1], int) or shape[1] == columns)

    if all(f.name in graph_inputs for f in features) and len(graph_inputs) == width:
        for f in features:
            node = graph_inputs[f.name]
            wanted = ("float", "double") if f.dtype == "number" else ("string",)
            if not any(f"tensor({t})" == node.type for t in wanted):
                raise ImportError_(
                    f"ONNX input {f.name!r} is {node.type}; a {f.dtype} feature needs tensor({' or '.join(wanted)})"
                )
            if not rank2(node, 1):
                raise ImportError_(
                    f"ONNX input {f.name!r} has shape {node.shape}; a feature input must be [N, 1]"
                )
        return {f.name: f.name for f in features}
    if len(graph_inputs) == 1:
        node = next(iter(graph_inputs.values()))
        if any(f.dtype != "number" for f in features):
            raise ImportError_(
                f"the graph takes one input ({node.name!r}) but features {', '.join(f.name for f in features if f.dtype != 'number')} "
                "are strings: a string feature needs an input of its own, named after it"
            )
        if node.type not in ("tensor(float)", "tensor(double)") or not rank2(node, width):
            raise ImportError_(
                f"ONNX input {node.name!r} is {node.type} {node.shape}; {width} number features need a float or "
                f"double [N, {width}] input"
            )
        return None
    raise ImportError_(
        f"ONNX inputs {sorted(graph_inputs)} match neither the features {[f.name for f in features]} (one input "
        f"each) nor a single [N, {width}] input"
    )


def _check_onnx_outputs(
    session: Any,
    features: Sequence[FeatureSpec],
    inputs: dict[str, str] | None,
    task: str,
    classes: Sequence[Any] | None,
) -> tuple[int, str]:
    """Run the graph on probe rows; (rows, what was checked), or ImportError_ naming what does not fit."""
    n = 8
    feeds: dict[str, np.ndarray] = {}
    types = {i.name: i.type for i in session.get_inputs()}
    rng = np.random.default_rng(0)
    numbers = rng.normal(size=(n, len(features)))
    if inputs is None:
        name = session.get_inputs()[0].name
        feeds[name] = numbers.astype(np.float64 if "double" in types[name] else np.float32)
    else:
        for j, f in enumerate(features):
            column = numbers[:, j : j + 1]
            if f.dtype == "number":
                feeds[f.name] = column.astype(np.float64 if "double" in types[f.name] else np.float32)
            else:
                feeds[f.name] = np.array([[""]] * n, dtype=object)
    try:
        result = session.run(None, feeds)
    except Exception as exc:  # onnxruntime refuses the feeds: the declared signature is not the graph's
        raise ImportError_(
            f"the graph does not run on the declared features: {' '.join(str(exc).split())}"
        ) from None
    first = np.asarray(result[0])
    if first.shape[0] != n:
        raise ImportError_(f"the graph's first output has shape {first.shape} for {n} rows")
    if task == "regression":
        if first.size != n or first.dtype.kind not in "fiu":
            raise ImportError_(
                f"a regressor's first output must be one number per row, got {first.dtype} {first.shape}"
            )
        return n, "one value per row checked"
    assert classes is not None
    if len(result) < 2:
        raise ImportError_("a classifier graph must output labels and probabilities; this one has one output")
    raw = result[1]
    if isinstance(raw, list):  # ZipMap: one {class: probability} per row, read by the declared classes
        keys = set(raw[0]) if raw else set()
        if keys != set(classes):
            raise ImportError_(
                f"the graph's probabilities are keyed by {sorted(keys, key=str)}, not --classes"
            )
        raw = [[m[k] for k in classes] for m in raw]
    proba = np.asarray(raw)
    if proba.shape != (n, len(classes)):
        raise ImportError_(
            f"the graph gives probabilities of shape {proba.shape} for {n} rows, but {len(classes)} classes were "
            "declared"
        )
    known = {str(c) for c in classes}
    unknown = sorted({str(v) for v in first.ravel().tolist()} - known)
    if unknown:
        raise ImportError_(f"the graph answers labels {unknown} that --classes does not declare")
    return n, f"labels among the {len(classes)} declared classes and probabilities of each checked"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImportError_(f"{path} does not exist") from None


def _provenance(source_path: Path, image: str | None) -> dict[str, Any]:
    """The manifest fields every import fills alike."""
    return {
        "seed": 0,
        "image": image if image is not None else os.environ.get(env.IMAGE),
        "libraries": library_versions(),
        "created_at": datetime.now(UTC).replace(microsecond=0),
        "lineage": Lineage(trigger=f"import:{source_path.name}"),
    }


def _feature_names(feature_names: Sequence[str], categorical: Sequence[str]) -> list[str]:
    names = [n for n in feature_names if n]
    if not names:
        raise ImportError_("give the model's input features with --feature-names a,b,c")
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise ImportError_(f"--categorical names columns that are not features: {', '.join(unknown)}")
    return names


def _feature_specs(names: Sequence[str], categorical: Sequence[str]) -> list[FeatureSpec]:
    return [
        FeatureSpec(
            name=n,
            kind=ColumnKind.CATEGORICAL if n in categorical else ColumnKind.NUMERIC,
            dtype="string" if n in categorical else "number",
        )
        for n in names
    ]


def verify_onnx_twin(
    model: Any, features: Sequence[FeatureSpec], task: str, sample_data: str | os.PathLike[str] | None
) -> tuple[bytes | None, OnnxInfo]:
    """Convert `model` and check the twin on the sample rows, or on rows generated from the model."""
    with warnings.catch_warnings():
        # A model fitted on an array is given a frame: scikit-learn warns about the names on every call.
        warnings.simplefilter("ignore", UserWarning)
        return _verify(model, features, task, sample_data)


def _verify(
    model: Any, features: Sequence[FeatureSpec], task: str, sample_data: str | os.PathLike[str] | None
) -> tuple[bytes | None, OnnxInfo]:
    dense: tuple[str, ...] = ()
    if sample_data is not None:
        try:
            rows = read_sample_rows(sample_data, features)
        except SampleDataError as exc:
            raise ImportError_(str(exc)) from None
        label = f"rows of {Path(sample_data).name}"
        source = f"sample:{Path(sample_data).name}"
    else:
        try:
            generated = boundary_rows(model, features)
        except Exception as exc:  # a model shape the generator does not know: no rows, so no twin
            reason = f"cannot generate rows to verify a conversion ({type(exc).__name__}: {exc}); give --sample-data"
            return None, OnnxInfo(status="unavailable", reason=" ".join(reason.split()))
        rows, label, source = generated.frame, generated.describe(), "generated"
        dense = generated.dense
    matrix = all(f.dtype == "number" for f in features) and getattr(model, "feature_names_in_", None) is None
    outcome = convert_to_onnx(model, features, task, rows, rows=label, matrix=matrix)
    if (
        outcome.model is None
        and outcome.info.reason.startswith("conversion failed")
        and all(f.dtype == "number" for f in features)
    ):
        # A bare estimator fitted on a DataFrame takes an array all the same: try the other input layout.
        retry = convert_to_onnx(model, features, task, rows, rows=label, matrix=not matrix)
        outcome = retry if retry.model is not None else outcome
    info = outcome.info.model_copy(update={"verified_rows": len(rows), "verified_on": source})
    if outcome.model is None and not info.reason.startswith("conversion failed") and sample_data is None:
        info = _explain_missing(model, features, task, rows, info, matrix)
    if sample_data is None and dense:
        # Rows cannot sit between those splits at float32 resolution, so they cannot show the twin is equivalent.
        reason = (
            f"tree splits on {', '.join(dense)} lie closer together than float32 can tell apart, so a float32 "
            f"ONNX twin cannot reproduce them; {info.reason}"
        )
        return None, info.model_copy(
            update={"status": "unavailable", "reason": reason, "path": None, "sha256": None}
        )
    return outcome.model, info


def _explain_missing(
    model: Any, features: Sequence[FeatureSpec], task: str, rows: Any, info: OnnxInfo, matrix: bool
) -> OnnxInfo:
    """When the twin differs only on the generated rows with a missing number, say so: scikit-learn's trees route
    missing values (to the larger child) where the ONNX graph cannot, unless the pipeline imputes them."""
    complete = rows.dropna()
    if len(complete) == len(rows) or len(complete) == 0:
        return info
    if convert_to_onnx(model, features, task, complete, matrix=matrix).model is None:
        return info
    reason = (
        f"{info.reason}; all of them hold a missing number, which scikit-learn's trees route where the ONNX twin "
        f"cannot (it agrees on the other {len(complete)} rows). Verify it on your own rows with --sample-data to "
        "serve it through ONNX when clients never send missing values"
    )
    return info.model_copy(update={"reason": reason})


def _write(
    model: Any,
    model_bytes: bytes | None,
    source_path: Path,
    *,
    name: str,
    feature_names: Sequence[str],
    out_dir: str | os.PathLike[str],
    categorical: Sequence[str] = (),
    target_name: str = "target",
    image: str | None = None,
    allow_types: Sequence[str] = (),
    sample_data: str | os.PathLike[str] | None = None,
    onnx: bool = True,
) -> ModelManifest:
    import skops.io as sio
    from sklearn.base import is_classifier, is_regressor

    names = _feature_names(feature_names, categorical)
    if is_classifier(model):
        task = "classification"
    elif is_regressor(model):
        task = "regression"
    else:
        raise ImportError_(f"{type(model).__name__} is neither a scikit-learn classifier nor regressor")
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and n_in != len(names):
        raise ImportError_(f"the model expects {n_in} features but {len(names)} feature names were given")
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None and list(fitted_names) != names:
        raise ImportError_(
            f"the model was fitted on the columns {', '.join(map(str, fitted_names))}; --feature-names must "
            "list the same names in the same order"
        )
    if model_bytes is None:
        model_bytes = sio.dumps(model)
    held = check_trusted(model_bytes, allowed=allow_types)
    extra = sorted(set(held) & (set(allow_types) - gyre_allowlist()))
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])] or None
    features = _feature_specs(names, categorical)
    if onnx:
        onnx_bytes, onnx_info = verify_onnx_twin(model, features, task, sample_data)
    else:
        onnx_bytes, onnx_info = None, OnnxInfo(status="unavailable", reason="ONNX conversion disabled")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(model_bytes)
    if onnx_bytes is not None:
        (out / ONNX_FILE).write_bytes(onnx_bytes)
    elif (out / ONNX_FILE).exists():
        (out / ONNX_FILE).unlink()
    manifest = ModelManifest(
        name=name,
        task=task,  # type: ignore[arg-type]
        estimator=type(final).__name__,
        params={
            k: v
            for k, v in final.get_params(deep=False).items()
            if isinstance(v, (int, float, str, bool, type(None)))
        },
        features=features,
        target=TargetSpec(name=target_name, classes=classes if task == "classification" else None),
        dataset=None,
        artifact=ArtifactRef(
            path=MODEL_FILE, sha256=hashlib.sha256(model_bytes).hexdigest(), allowed_types=extra
        ),
        onnx=onnx_info,
        **_provenance(source_path, image),
    )
    (out / MANIFEST_FILE).write_bytes(manifest.to_bytes())
    return manifest
