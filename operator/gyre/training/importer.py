"""`gyre model import`: turn a trusted joblib model into a Gyre model directory (skops + manifest).

Loading joblib runs arbitrary code from the file, so this only happens when the operator of the command says the
file is trusted (--trust-pickle). The result is a skops artifact whose types are checked against Gyre's allowlist
plus the types the command explicitly allows (--allow-type, recorded in the manifest and honoured only for a pinned
model), so the server never unpickles anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gyre.api import env
from gyre.api.dataset import ColumnKind
from gyre.training.artifact import MODEL_FILE, check_trusted, gyre_allowlist, library_versions
from gyre.training.manifest import (
    MANIFEST_FILE,
    ArtifactRef,
    FeatureSpec,
    Lineage,
    ModelManifest,
    OnnxInfo,
    TargetSpec,
)

__all__ = ["ImportError_", "import_joblib"]


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
) -> ModelManifest:
    """Load `source` with joblib (only when `trust_pickle`), save it with skops and write a manifest.

    `allow_types` are module-qualified types or functions (as skops records them, e.g. `numpy.log1p`) allowed beyond
    Gyre's allowlist; only those the model holds are recorded. The model's digest is the manifest's `sha256()`.
    """
    if not trust_pickle:
        raise ImportError_(
            "refusing to load a joblib/pickle file: unpickling runs arbitrary code from the file. Pass "
            "--trust-pickle only for a file you produced or otherwise trust."
        )
    import joblib
    import skops.io as sio
    from sklearn.base import is_classifier, is_regressor

    names = [n for n in feature_names if n]
    if not names:
        raise ImportError_("give the model's input features with --feature-names a,b,c")
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise ImportError_(f"--categorical names columns that are not features: {', '.join(unknown)}")
    source_path = Path(source)
    model: Any = joblib.load(source_path)
    if is_classifier(model):
        task = "classification"
    elif is_regressor(model):
        task = "regression"
    else:
        raise ImportError_(f"{type(model).__name__} is neither a scikit-learn classifier nor regressor")
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and n_in != len(names):
        raise ImportError_(f"the model expects {n_in} features but {len(names)} feature names were given")
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(model_bytes)
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
        onnx=OnnxInfo(
            status="unavailable", reason="imported model: no held-out data to verify an ONNX conversion"
        ),
        seed=0,
        image=image if image is not None else os.environ.get(env.IMAGE),
        libraries=library_versions(),
        created_at=datetime.now(UTC).replace(microsecond=0),
        lineage=Lineage(trigger=f"import:{source_path.name}"),
    )
    (out / MANIFEST_FILE).write_bytes(manifest.to_bytes())
    return manifest
