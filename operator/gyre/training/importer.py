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
from typing import Any

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

__all__ = ["ImportError_", "import_joblib", "import_skops", "verify_onnx_twin"]


class ImportError_(Exception):
    """The model cannot be imported (not trusted, not a fitted estimator, types outside the allowlist)."""


def import_joblib(
    source: str | os.PathLike[str],
    *,
    name: str,
    feature_names: Sequence[str],
    out_dir: str | os.PathLike[str],
    trust_pickle: bool,
    categorical: Sequence[str] = (),
    target_name: str = "target",
    image: str | None = None,
    allow_types: Sequence[str] = (),
    sample_data: str | os.PathLike[str] | None = None,
    onnx: bool = True,
) -> ModelManifest:
    """Load `source` with joblib (only when `trust_pickle`), save it with skops, verify an ONNX twin, write a
    manifest.

    `allow_types` are module-qualified types or functions (as skops records them, e.g. `numpy.log1p`) allowed beyond
    Gyre's allowlist; only those the model holds are recorded. The model's digest is the manifest's `sha256()`.
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
        model,
        None,
        source_path,
        name=name,
        feature_names=feature_names,
        out_dir=out_dir,
        categorical=categorical,
        target_name=target_name,
        image=image,
        allow_types=allow_types,
        sample_data=sample_data,
        onnx=onnx,
    )


def import_skops(
    source: str | os.PathLike[str],
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
    """Import a skops file: its types are checked against Gyre's allowlist (plus `allow_types`) before anything
    is loaded, so no --trust-pickle is needed."""
    import skops.io as sio

    source_path = Path(source)
    try:
        data = source_path.read_bytes()
    except FileNotFoundError:
        raise ImportError_(f"{source_path} does not exist") from None
    try:
        trusted = check_trusted(data, allowed=allow_types, what=source_path.name)
    except ModelIntegrityError as exc:
        raise ImportError_(f"{source_path}: {exc}") from None
    model = sio.loads(data, trusted=trusted)
    return _write(
        model,
        data,
        source_path,
        name=name,
        feature_names=feature_names,
        out_dir=out_dir,
        categorical=categorical,
        target_name=target_name,
        image=image,
        allow_types=allow_types,
        sample_data=sample_data,
        onnx=onnx,
    )


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
        generated = boundary_rows(model, features)
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


def _write(
    model: Any,
    model_bytes: bytes | None,
    source_path: Path,
    *,
    name: str,
    feature_names: Sequence[str],
    out_dir: str | os.PathLike[str],
    categorical: Sequence[str],
    target_name: str,
    image: str | None,
    allow_types: Sequence[str],
    sample_data: str | os.PathLike[str] | None,
    onnx: bool,
) -> ModelManifest:
    import skops.io as sio
    from sklearn.base import is_classifier, is_regressor

    names = [n for n in feature_names if n]
    if not names:
        raise ImportError_("give the model's input features with --feature-names a,b,c")
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise ImportError_(f"--categorical names columns that are not features: {', '.join(unknown)}")
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
    features = [
        FeatureSpec(
            name=n,
            kind=ColumnKind.CATEGORICAL if n in categorical else ColumnKind.NUMERIC,
            dtype="string" if n in categorical else "number",
        )
        for n in names
    ]
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
        seed=0,
        image=image if image is not None else os.environ.get(env.IMAGE),
        libraries=library_versions(),
        created_at=datetime.now(UTC).replace(microsecond=0),
        lineage=Lineage(trigger=f"import:{source_path.name}"),
    )
    (out / MANIFEST_FILE).write_bytes(manifest.to_bytes())
    return manifest
