"""`gyre model import`: the ONNX twin of an imported model is verified as a trained one's is, on the user's rows or
on rows generated from the model's decision boundaries; a model that fails is served through scikit-learn."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from gyre.api.dataset import ColumnKind
from gyre.serving.model import load_served_model
from gyre.training.artifact import UntrustedModelError
from gyre.training.importer import ImportError_, import_joblib, import_onnx, import_skops
from gyre.training.manifest import FeatureSpec, ModelManifest
from gyre.training.verification import boundary_rows

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _iris_forest(scale: bool) -> tuple[Any, np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("model", RandomForestClassifier(n_estimators=30, random_state=0)))
    return Pipeline(steps).fit(x, y), x, y


def _timestamp_tree() -> tuple[Any, np.ndarray]:
    # Epoch-like values standardised before a tree: float32 (the ONNX input) steps by 8 here, so splits 3 apart
    # cannot be reproduced, although rows in the middle of a block and exact in float32 are answered alike.
    x = 1e8 + np.arange(240.0)
    y = (np.arange(240) // 3) % 2
    return Pipeline([("scale", StandardScaler()), ("tree", DecisionTreeClassifier(random_state=0))]).fit(
        x.reshape(-1, 1), y
    ), x


def _import(tmp_path: Path, model: Any, features: list[str], **options: Any) -> ModelManifest:
    """Save `model` with joblib and import it into tmp_path/out (or options' out_dir)."""
    joblib.dump(model, tmp_path / "model.joblib")
    options.setdefault("out_dir", tmp_path / "out")
    return import_joblib(
        tmp_path / "model.joblib", name="m", feature_names=features, trust_pickle=True, **options
    )


def _sides_reached(tree: Any, xt: np.ndarray) -> tuple[set[int], set[int]]:
    """Split nodes some row leaves to the left, and to the right."""
    paths = tree.decision_path(xt.astype(np.float32)).tocsc()
    left, right = set(), set()
    inner = np.flatnonzero(tree.tree_.children_left >= 0)
    for node in inner:
        reached = paths[:, [node]].nonzero()[0]
        if len(reached) == 0:
            continue
        via_left = paths[reached][:, [tree.tree_.children_left[node]]].nonzero()[0]
        if len(via_left):
            left.add(int(node))
        if len(via_left) < len(reached):
            right.add(int(node))
    return left, right


@pytest.mark.parametrize("scale", [False, True], ids=["raw", "standardised"])
def test_generated_rows_reach_every_split_of_every_tree_on_both_sides(scale: bool) -> None:
    model, _, _ = _iris_forest(scale)
    features = [FeatureSpec(name=n, kind=ColumnKind.NUMERIC) for n in IRIS]
    rows = boundary_rows(model, features)
    assert (
        rows.splits
        == rows.splits_covered
        == sum(int(np.sum(t.tree_.children_left >= 0)) for t in model[-1].estimators_)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        xt = model[:-1].transform(rows.frame)
    for tree in model[-1].estimators_:
        inner = set(np.flatnonzero(tree.tree_.children_left >= 0).tolist())
        left, right = _sides_reached(tree, xt)
        assert left == inner and right == inner


def test_generated_rows_cover_categorical_splits_of_a_named_pipeline() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"size": rng.normal(10, 3, 300), "color": rng.choice(["red", "green", "blue", "grey"], 300)}
    )
    y = (frame["size"] > 10) ^ (frame["color"] == "red")
    pre = ColumnTransformer(
        [("n", SimpleImputer(), ["size"]), ("c", OneHotEncoder(handle_unknown="ignore"), ["color"])]
    )
    model = Pipeline([("pre", pre), ("model", RandomForestClassifier(n_estimators=10, random_state=0))])
    model.fit(frame, y)
    features = [
        FeatureSpec(name="size", kind=ColumnKind.NUMERIC),
        FeatureSpec(name="color", kind=ColumnKind.CATEGORICAL, dtype="string"),
    ]
    rows = boundary_rows(model, features)
    assert set(rows.frame["color"]) >= {"red", "green", "blue", "grey"}
    xt = model[:-1].transform(rows.frame)
    xt = xt.toarray() if hasattr(xt, "toarray") else xt
    for tree in model[-1].estimators_:
        inner = set(np.flatnonzero(tree.tree_.children_left >= 0).tolist())
        left, right = _sides_reached(tree, xt)
        assert left == inner and right == inner


def test_an_imported_forest_is_verified_on_generated_rows_and_served_through_onnx(tmp_path: Path) -> None:
    model, x, _ = _iris_forest(scale=False)
    manifest = _import(tmp_path, model, IRIS)
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    assert manifest.onnx.verified_on == "generated"
    assert manifest.onnx.verified_rows and manifest.onnx.verified_rows > 100
    assert f"on {manifest.onnx.verified_rows} rows generated" in manifest.onnx.reason
    served = load_served_model(str(tmp_path / "out"))
    assert served.inference_path == "onnx"
    assert served.predictor.predict(x, True).predict.tolist() == model.predict(x).tolist()


def test_a_twin_that_disagrees_between_the_users_rows_is_caught_at_the_decision_boundaries(
    tmp_path: Path,
) -> None:
    model, _ = _timestamp_tree()
    # The user's rows (the middle of every eighth block, exact in float32) all agree, so a check on them alone keeps
    # the twin...
    pd.DataFrame({"ts": 1e8 + np.arange(16.0, 240.0, 24.0)}).to_csv(tmp_path / "rows.csv", index=False)
    kept = _import(tmp_path, model, ["ts"], out_dir=tmp_path / "sampled", sample_data=tmp_path / "rows.csv")
    assert kept.onnx.status == "verified" and kept.onnx.verified_on == "sample:rows.csv"
    assert kept.onnx.verified_rows == 10
    # ...while rows on both sides of its splits show it cannot be reproduced: served by scikit-learn, reason kept.
    manifest = _import(tmp_path, model, ["ts"])
    assert manifest.onnx.status == "unavailable"
    assert "tree splits on ts lie closer together than float32" in manifest.onnx.reason
    assert not (tmp_path / "out" / "model.onnx").exists()
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["onnx"]["reason"] == manifest.onnx.reason and on_disk["onnx"]["verifiedOn"] == "generated"
    served = load_served_model(str(tmp_path / "out"))
    assert served.inference_path == "sklearn"
    rows = (1e8 + np.array([[40.0], [41.0], [44.0]])).astype(np.float64)
    assert served.predictor.predict(rows, False).predict.tolist() == model.predict(rows).tolist()


def test_a_regressor_is_verified_on_sample_rows_from_parquet(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(x, x[:, 0] * 2 + x[:, 1])
    pd.DataFrame(x[:50], columns=["a", "b"]).to_parquet(tmp_path / "rows.parquet")
    manifest = _import(tmp_path, model, ["a", "b"], sample_data=tmp_path / "rows.parquet")
    assert manifest.task == "regression"
    assert manifest.onnx.status == "verified" and manifest.onnx.verified_rows == 50
    assert "on 50 rows of rows.parquet" in manifest.onnx.reason


def test_sample_data_without_the_features_is_refused(tmp_path: Path) -> None:
    model, _, _ = _iris_forest(scale=False)
    pd.DataFrame({"sepal_length": [1.0]}).to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(ImportError_, match="missing feature"):
        _import(tmp_path, model, IRIS, sample_data=tmp_path / "rows.csv")


def test_a_skops_file_is_imported_without_unpickling(tmp_path: Path) -> None:
    model, x, _ = _iris_forest(scale=True)
    (tmp_path / "model.skops").write_bytes(sio.dumps(model))
    manifest = import_skops(
        tmp_path / "model.skops", name="iris", feature_names=IRIS, out_dir=tmp_path / "out"
    )
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    assert manifest.lineage.trigger == "import:model.skops"
    served = load_served_model(str(tmp_path / "out"))
    assert served.predictor.predict(x, True).predict.tolist() == model.predict(x).tolist()


def test_a_skops_file_holding_a_function_is_refused_unless_allowed(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    model = Pipeline(
        [("log", FunctionTransformer(np.log1p)), ("model", DecisionTreeClassifier(random_state=0))]
    ).fit(x, y)
    (tmp_path / "model.skops").write_bytes(sio.dumps(model))
    with pytest.raises(UntrustedModelError, match=r"numpy\.log1p"):
        import_skops(tmp_path / "model.skops", name="iris", feature_names=IRIS, out_dir=tmp_path / "out")
    manifest = import_skops(
        tmp_path / "model.skops",
        name="iris",
        feature_names=IRIS,
        out_dir=tmp_path / "out",
        allow_types=["numpy.log1p"],
    )
    assert manifest.artifact.allowed_types == ["numpy.log1p"]


def test_a_bare_tree_that_routes_missing_values_differently_is_explained(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    manifest = _import(tmp_path, DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y), IRIS)
    assert manifest.onnx.status == "unavailable"
    assert "all of them hold a missing number" in manifest.onnx.reason
    assert "--sample-data" in manifest.onnx.reason


def _iris_onnx(tmp_path: Path, *, per_feature: bool, zipmap: bool) -> tuple[Path, Any, np.ndarray]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    x, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    if per_feature:
        pipeline = Pipeline([("impute", SimpleImputer()), ("model", forest)]).fit(x, y)
        initial = [(n, FloatTensorType([None, 1])) for n in IRIS]
    else:
        pipeline, initial = forest, [("X", FloatTensorType([None, 4]))]
    options = None if zipmap else {id(forest): {"zipmap": False}}
    graph = convert_sklearn(
        pipeline, initial_types=initial, options=options, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    path = tmp_path / "iris.onnx"
    path.write_bytes(graph.SerializeToString())
    return path, pipeline, x


@pytest.mark.parametrize(
    ("per_feature", "zipmap"),
    [(True, True), (False, False)],
    ids=["input-per-feature-zipmap", "one-matrix-input"],
)
def test_an_onnx_graph_with_a_declared_signature_is_served_as_it_is(
    tmp_path: Path, per_feature: bool, zipmap: bool
) -> None:
    from gyre.serving.model import ModelLoadError

    path, sklearn_model, x = _iris_onnx(tmp_path, per_feature=per_feature, zipmap=zipmap)
    manifest = import_onnx(
        path,
        name="iris",
        feature_names=IRIS,
        out_dir=tmp_path / "out",
        task="classification",
        classes=[0, 1, 2],
    )
    assert manifest.artifact is None and manifest.onnx.status == "imported"
    assert manifest.onnx.inputs == ({n: n for n in IRIS} if per_feature else None)
    assert manifest.target.classes == [0, 1, 2]
    assert not (tmp_path / "out" / "model.skops").exists()
    served = load_served_model(str(tmp_path / "out"))
    assert served.inference_path == "onnx"
    out = served.predictor.predict(x, True)
    assert out.predict.tolist() == sklearn_model.predict(x).tolist()
    assert out.proba is not None and np.allclose(out.proba, sklearn_model.predict_proba(x), atol=1e-5)
    with pytest.raises(ModelLoadError, match="no scikit-learn form"):
        load_served_model(str(tmp_path / "out"), inference="sklearn")


def test_an_onnx_graph_whose_signature_differs_from_the_declared_one_is_refused(tmp_path: Path) -> None:
    path, _, _ = _iris_onnx(tmp_path, per_feature=False, zipmap=False)
    common: dict[str, Any] = {"name": "iris", "out_dir": tmp_path / "out"}
    with pytest.raises(ImportError_, match=r"float or double \[N, 3\] input"):
        import_onnx(path, feature_names=IRIS[:3], task="classification", classes=[0, 1, 2], **common)
    with pytest.raises(ImportError_, match=r"probabilities of shape \(8, 3\) for 8 rows, but 2 classes"):
        import_onnx(path, feature_names=IRIS, task="classification", classes=[0, 1], **common)
    with pytest.raises(ImportError_, match="needs --classes"):
        import_onnx(path, feature_names=IRIS, task="classification", **common)
    with pytest.raises(ImportError_, match="not an ONNX model"):
        (tmp_path / "bad.onnx").write_bytes(b"nope")
        import_onnx(tmp_path / "bad.onnx", feature_names=IRIS, task="regression", **common)
    assert not (tmp_path / "out").exists()


# What skops records of the libraries' own models; Gyre's allowlist leaves them out, so an import names them.
_BOOSTED_TYPES = {
    "xgboost": ["builtins.bytearray", "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"],
    "lightgbm": [
        "collections.OrderedDict",
        "collections.defaultdict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
    ],
}


def _boosted_pipeline(library: str) -> tuple[Any, np.ndarray]:
    import lightgbm
    import xgboost

    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 3)) * [1.0, 10.0, 0.1]
    y = ((x[:, 0] > 0.3) ^ (x[:, 1] * x[:, 2] > 0)).astype(int)
    model: Any = (
        xgboost.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1)
        if library == "xgboost"
        else lightgbm.LGBMClassifier(n_estimators=15, num_leaves=6, n_jobs=1, verbose=-1)
    )
    return Pipeline([("scale", StandardScaler()), ("model", model)]).fit(x, y), x


def _leaves_reached(library: str, model: Any, xt: np.ndarray) -> tuple[list[int], list[int]]:
    """Per tree: leaves some row reaches, and leaves the tree has. Every leaf reached means both sides of every
    split were taken."""
    if library == "xgboost":
        import xgboost

        booster = model.get_booster()
        leaves = booster.predict(xgboost.DMatrix(xt.astype(np.float32)), pred_leaf=True)
        table = booster.trees_to_dataframe()
        have = table[table["Feature"] == "Leaf"].groupby("Tree").size().tolist()
    else:
        booster = model.booster_
        leaves = booster.predict(xt.astype(np.float32), pred_leaf=True)
        have = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    reached = [len(set(np.asarray(leaves)[:, i].tolist())) for i in range(len(have))]
    return reached, have


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_generated_rows_reach_both_sides_of_every_split_of_a_boosted_model(library: str) -> None:
    model, _ = _boosted_pipeline(library)
    rows = boundary_rows(model, [FeatureSpec(name=n, kind=ColumnKind.NUMERIC) for n in "abc"])
    reached, have = _leaves_reached(library, model[-1], model[:-1].transform(rows.frame.to_numpy()))
    assert rows.splits == rows.splits_covered == sum(have) - len(have)  # a binary tree: leaves - 1 splits
    assert reached == have


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_an_imported_boosted_pipeline_is_verified_on_its_splits_and_served_through_onnx(
    tmp_path: Path, library: str
) -> None:
    model, x = _boosted_pipeline(library)
    manifest = _import(tmp_path, model, ["a", "b", "c"], allow_types=_BOOSTED_TYPES[library])
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    assert manifest.onnx.verified_on == "generated"
    splits = sum(have) - len(have) if (have := _leaves_reached(library, model[-1], x)[1]) else 0
    assert f"both sides of {splits}/{splits} tree splits" in manifest.onnx.reason
    served = load_served_model(str(tmp_path / "out"), expect_sha256=manifest.sha256())
    assert served.inference_path == "onnx"
    assert served.predictor.predict(x, True).predict.tolist() == model.predict(x).tolist()
