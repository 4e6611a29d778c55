"""Per-prediction explanations (KServe v1 `POST /v1/models/MODEL:explain`): feature attributions for each row.

For every row and every explained output, `expected_value + sum(attributions) == output value` (up to float
rounding), and each attribution belongs to one raw input column: a column that spec.features one-hot encodes,
buckets or splits into date parts gets the sum over the columns generated from it.

What explains which kind (docs/explanations.md), no new dependency:

- XGBoost and LightGBM: the libraries' own TreeSHAP (`pred_contribs`, `pred_contrib`), in margin space: the
  log-odds of the second class (binary), one softmax logit per class (multiclass), the objective's raw score
  (regression; the prediction itself for squared error).
- Linear models (LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet): the exact contributions
  `coef_j * (x_j - mean_j)` in the space the estimator sees, where `mean` is the mean training row the manifest
  keeps (`referenceMean`); the expected value is the output at that mean row. Log-odds or logits for classifiers.
- Anything else (scikit-learn forests and boosting, KNN, SVM, naive Bayes, imported ONNX graphs): 501 with the
  reason.

Explanations run in a worker process of their own (`ExplainWorker`): the model is loaded there a second time from
the same pinned directory, so an explanation never holds the server's event loop, its prediction threads or the
GIL. At most `queue` explanations are in progress or waiting; one more gets 503 with the reason.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gyre.serving.schema import RequestError
from gyre.training.estimators import LINEAR_ESTIMATORS
from gyre.training.manifest import FeatureSpec, ModelManifest

__all__ = [
    "BOOSTED_EXPLAINED",
    "Attributions",
    "ExplainWorker",
    "Explainer",
    "Unexplainable",
    "build_explainer",
    "column_groups",
    "explain_instances",
    "explain_response",
    "explain_support",
    "rows_frame",
]

log = logging.getLogger(__name__)

BOOSTED_EXPLAINED = frozenset({"XGBClassifier", "XGBRegressor", "LGBMClassifier", "LGBMRegressor"})
"""Kinds explained by their library's own TreeSHAP."""
FOREST_EXPLAINED = frozenset(
    {
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    }
)
"""scikit-learn tree ensembles whose output is the mean of their trees' (probabilities or values)."""
SKLEARN_BOOSTING_EXPLAINED = frozenset({"GradientBoostingClassifier", "GradientBoostingRegressor"})
"""scikit-learn gradient boosting: an initial raw score plus learning_rate times each tree's value."""
TWIN_TOLERANCE = 1e-5
"""Largest |twin - model| (absolute, or relative to the output) on the probe rows for the XGBoost twin of a
scikit-learn tree model to be used."""

# Steps that keep one output column per input column, value by value: attributions pass straight through them.
_ELEMENTWISE = frozenset({"StandardScaler", "RobustScaler", "MinMaxScaler", "MaxAbsScaler", "SimpleImputer"})


class Unexplainable(Exception):
    """This model cannot be explained; the message says why (served as 501)."""


def explain_support(manifest: ModelManifest) -> str | None:
    """None when the model's kind can be explained, else the reason it cannot (without loading anything)."""
    if manifest.artifact is None:
        return (
            "the model is an imported ONNX graph: Gyre explains only models it can run with their libraries"
        )
    kind = manifest.estimator
    if kind in BOOSTED_EXPLAINED or kind in FOREST_EXPLAINED or kind in SKLEARN_BOOSTING_EXPLAINED:
        return None
    if kind in LINEAR_ESTIMATORS:
        if manifest.reference_mean is None:
            return (
                f"this {kind} model's manifest has no referenceMean, the mean training row its attributions are "
                "measured from (imported models, and models trained before Gyre kept it, have none): retrain it"
            )
        return None
    return (
        f"explanations are not available for {kind}: Gyre explains tree models (TreeSHAP: XGBoost, LightGBM, "
        "scikit-learn's forests, decision trees and GradientBoosting) and linear models "
        f"({', '.join(sorted(LINEAR_ESTIMATORS))}) (docs/explanations.md)"
    )


# -- attributions --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attributions:
    """Attributions of a batch: `values[i, k, j]` is raw column j's share of output k of row i."""

    output: str
    """What is explained: probability, log_odds, logit (multiclass margin), margin or prediction."""
    description: str
    """The same in words, naming the class."""
    classes: list[Any] | None
    """The class of each explained output (None: regression, one output)."""
    feature_names: list[str]
    expected: np.ndarray
    """(K,) the expected value of each output: its value at the reference (training data) point."""
    values: np.ndarray
    """(n, K, R) attributions per row, output and raw column."""
    predictions: np.ndarray
    """(n,) what :predict answers for each row (label or value)."""

    def outputs(self) -> np.ndarray:
        """(n, K) the explained outputs: expected value plus the attributions."""
        total: np.ndarray = self.expected[None, :] + self.values.sum(axis=2)
        return total


def _names(columns: Any, feature_names_in: Sequence[str]) -> list[str]:
    """A ColumnTransformer entry's columns as names (they may be given as indices or a boolean mask)."""
    picked = np.atleast_1d(np.asarray(columns))
    if picked.dtype == bool:
        return [feature_names_in[int(i)] for i in np.flatnonzero(picked)]
    if picked.dtype.kind in "iu":
        return [feature_names_in[int(i)] for i in picked]
    return [str(c) for c in picked]


def _owner(output: str, columns: Sequence[str]) -> str | None:
    """The input column a generated column comes from, by scikit-learn's naming (`col` or `col_suffix`)."""
    matches = [c for c in columns if output == c or output.startswith(f"{c}_")]
    return max(matches, key=len) if matches else None


def column_groups(preprocess: Any, features: Sequence[FeatureSpec]) -> tuple[list[str], np.ndarray]:
    """(group names, group index of each column the estimator sees) for the fitted steps before the estimator.

    A group is a raw input column; where one transform mixes several columns into outputs that belong to none
    alone (hashing two columns together), those outputs form a group named `a+b`. Raises Unexplainable for steps
    whose outputs cannot be traced back to input columns.
    """
    names = [f.name for f in features]
    steps = [step for _, step in getattr(preprocess, "steps", []) if step not in (None, "passthrough")]
    owners: list[str] | None = None
    for step in steps:
        kind = type(step).__name__
        if hasattr(step, "transformers_"):
            if owners is not None:
                raise Unexplainable("the model has a ColumnTransformer after its first step")
            owners = _transformer_owners(step, names)
        elif kind in _ELEMENTWISE and not getattr(step, "add_indicator", False):
            continue
        else:
            raise Unexplainable(f"the model's {kind} step does not map its outputs to input columns")
    owners = owners if owners is not None else names
    groups = list(dict.fromkeys([*(n for n in names if n in owners), *owners]))
    index = {g: i for i, g in enumerate(groups)}
    return groups, np.array([index[o] for o in owners], dtype=np.intp)


def _transformer_owners(transformer: Any, names: list[str]) -> list[str]:
    width = sum(s.stop - s.start for s in transformer.output_indices_.values())
    owners: list[str] = [""] * width
    feature_names_in = list(getattr(transformer, "feature_names_in_", names))
    for entry, part, columns in transformer.transformers_:
        span = transformer.output_indices_.get(entry)
        if span is None or span.stop == span.start or (isinstance(part, str) and part == "drop"):
            continue
        cols = _names(columns, feature_names_in)
        if len(cols) == 1:
            outputs = [cols[0]] * (span.stop - span.start)
        else:
            generated = cols if isinstance(part, str) else [str(n) for n in part.get_feature_names_out(cols)]
            joint = "+".join(cols)
            outputs = [_owner(g, cols) or joint for g in generated]
        owners[span] = outputs
    if "" in owners:
        raise Unexplainable("the model's ColumnTransformer has outputs that no entry accounts for")
    return owners


class Explainer:
    """Attributions for the raw rows of one fitted Pipeline (or bare estimator)."""

    def __init__(self, pipeline: Any, manifest: ModelManifest) -> None:
        steps = getattr(pipeline, "steps", None)
        self.preprocess = pipeline[:-1] if steps else None
        self.estimator = steps[-1][1] if steps else pipeline
        self.kind = manifest.estimator
        self.features = list(manifest.features)
        self.groups, self.group_of = column_groups(self.preprocess, self.features)
        # (model inputs, raw columns), 0/1: which raw column each column the estimator sees comes from.
        self.grouping = np.zeros((len(self.group_of), len(self.groups)))
        self.grouping[np.arange(len(self.group_of)), self.group_of] = 1.0
        self.classes = list(manifest.target.classes) if manifest.target.classes is not None else None
        self.mean = np.asarray(manifest.reference_mean, dtype=np.float64) if manifest.reference_mean else None
        reason = explain_support(manifest)
        if reason is not None:
            raise Unexplainable(reason)
        if self.mean is not None and len(self.mean) != len(self.group_of):
            raise Unexplainable(
                f"the manifest's referenceMean has {len(self.mean)} values for {len(self.group_of)} model inputs"
            )
        self.output, self.output_classes = self._output()
        self.twin = _TreeTwin(self.estimator, self.kind, self.output_classes) if self._sklearn_trees else None
        if self.kind in BOOSTED_EXPLAINED:
            # One thread: on a busy node, OpenMP threads per call wait for cores and multiply a call's latency.
            self.estimator.set_params(n_jobs=1)

    @property
    def _sklearn_trees(self) -> bool:
        return self.kind in FOREST_EXPLAINED or self.kind in SKLEARN_BOOSTING_EXPLAINED

    def _output(self) -> tuple[str, list[Any] | None]:
        if self.classes is not None and self.kind in FOREST_EXPLAINED:
            return "probability", [self.classes[1]] if len(self.classes) == 2 else list(self.classes)
        if self.classes is None:
            identity = self.kind in LINEAR_ESTIMATORS or _identity_objective(self.estimator)
            return ("prediction" if identity else "margin"), None
        if len(self.classes) == 2:
            return "log_odds", [self.classes[1]]
        return "logit", list(self.classes)

    def describe(self) -> str:
        """What the attributions add up to, in words."""
        if self.output == "probability":
            assert self.output_classes is not None
            if len(self.output_classes) == 1:
                return f"the probability of class {self.output_classes[0]!r}"
            return "each class's probability"
        if self.output == "log_odds":
            assert self.output_classes is not None
            return f"log-odds of class {self.output_classes[0]!r} (the margin before the sigmoid)"
        if self.output == "logit":
            return "each class's logit (the margins before the softmax)"
        if self.output == "prediction":
            return "the predicted value"
        return "the raw score before the objective's inverse link (the margin)"

    def _encode(self, frame: Any) -> Any:
        return self.preprocess.transform(frame) if self.preprocess is not None else frame

    def explain(self, frame: Any) -> Attributions:
        """Attributions for the rows of `frame` (raw features, coerced as for predict)."""
        z = self._encode(frame)
        if self.kind in LINEAR_ESTIMATORS:
            contribs, expected = self._linear(z)
        elif self.twin is not None:
            contribs, expected = self.twin.contributions(_dense(z))
        elif self.kind.startswith("XGB"):
            contribs, expected = self._xgboost(z)
        else:
            contribs, expected = self._lightgbm(z)
        # Sum the estimator's columns into their raw input columns.
        summed = contribs @ self.grouping
        return Attributions(
            output=self.output,
            description=self.describe(),
            classes=self.output_classes,
            feature_names=self.groups,
            expected=expected,
            values=summed,
            predictions=np.asarray(self.estimator.predict(z)),
        )

    def _linear(self, z: Any) -> tuple[np.ndarray, np.ndarray]:
        assert self.mean is not None
        dense = _dense(z)
        coef = np.atleast_2d(np.asarray(self.estimator.coef_, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(self.estimator.intercept_, dtype=np.float64))
        contribs = (dense - self.mean)[:, None, :] * coef[None, :, :]
        return contribs, coef @ self.mean + intercept

    def _xgboost(self, z: Any) -> tuple[np.ndarray, np.ndarray]:
        import xgboost

        dense = _dense(z)
        booster = self.estimator.get_booster()
        booster.set_param({"nthread": 1})
        try:
            best = int(self.estimator.best_iteration)
            rounds = (0, best + 1)
        except AttributeError:  # trained without early stopping: every round
            rounds = (0, 0)
        raw = booster.predict(xgboost.DMatrix(dense), pred_contribs=True, iteration_range=rounds)
        return _split_bias(np.asarray(raw, dtype=np.float64), dense.shape[1])

    def _lightgbm(self, z: Any) -> tuple[np.ndarray, np.ndarray]:
        dense = _dense(z)
        raw = np.asarray(self.estimator.predict(dense, pred_contrib=True, num_threads=1), dtype=np.float64)
        return _split_bias(raw, dense.shape[1])


def _dense(z: Any) -> np.ndarray:
    return z.toarray() if hasattr(z, "toarray") else np.asarray(z, dtype=np.float64)


class _TreeTwin:
    """A scikit-learn tree model rewritten as XGBoost boosters (one per explained output), so that XGBoost's own
    TreeSHAP explains it: same splits, leaf values and node covers (weighted_n_node_samples, which is what
    path-dependent TreeSHAP weighs by). Used only when it reproduces the model's outputs on probe rows that sit on
    both sides of every split threshold (TWIN_TOLERANCE); otherwise Unexplainable says by how much it differs.
    """

    def __init__(self, estimator: Any, kind: str, classes: list[Any] | None) -> None:
        self.estimator = estimator
        self.width = int(estimator.n_features_in_)
        boosting = kind in SKLEARN_BOOSTING_EXPLAINED
        # A single decision tree is a forest of one.
        stages = np.asarray(getattr(estimator, "estimators_", [estimator]), dtype=object)
        grid = stages if boosting else stages.reshape(-1, 1)
        outputs = grid.shape[1] if boosting else (len(classes) if classes else 1)
        self.proba_columns: list[int] | None = None
        if not boosting and classes is not None:
            all_classes = list(estimator.classes_)
            self.proba_columns = [all_classes.index(c) for c in classes]
        self.boosters = [
            _booster([self._tree(grid, k, i, boosting) for i in range(grid.shape[0])], self.width)
            for k in range(outputs)
        ]
        self.init = np.zeros(outputs)
        probe = _probe_rows(grid.ravel().tolist(), self.width)
        reference = self._model_output(probe)
        if boosting:  # the initial raw score (the prior) is what the trees do not account for
            self.init = (reference - self._twin_output(probe)).mean(axis=0)
        ours = self._twin_output(probe) + self.init
        diff = float(np.max(np.abs(ours - reference)))
        if not np.allclose(ours, reference, rtol=TWIN_TOLERANCE, atol=TWIN_TOLERANCE):
            raise Unexplainable(
                f"the TreeSHAP twin of this {kind} differs from it by up to {diff:.3g} on probe rows "
                f"(tolerance {TWIN_TOLERANCE:g})"
            )

    def _tree(self, grid: np.ndarray, k: int, i: int, boosting: bool) -> dict[str, Any]:
        tree = grid[i, k if boosting else 0].tree_
        value = tree.value[:, 0, :]
        if boosting:
            leaf = value[:, 0] * float(self.estimator.learning_rate)
        elif self.proba_columns is not None:
            leaf = value[:, self.proba_columns[k]] / value.sum(axis=1) / grid.shape[0]
        else:
            leaf = value[:, 0] / grid.shape[0]
        return _tree_json(tree, leaf, i, self.width)

    def _model_output(self, z: np.ndarray) -> np.ndarray:
        if self.proba_columns is not None:
            return np.asarray(self.estimator.predict_proba(z))[:, self.proba_columns]
        if hasattr(self.estimator, "decision_function"):
            return np.asarray(self.estimator.decision_function(z), dtype=np.float64).reshape(len(z), -1)
        return np.asarray(self.estimator.predict(z), dtype=np.float64).reshape(len(z), -1)

    def _twin_output(self, z: np.ndarray) -> np.ndarray:
        import xgboost

        matrix = xgboost.DMatrix(z)
        return np.stack([np.asarray(b.predict(matrix), dtype=np.float64) for b in self.boosters], axis=1)

    def contributions(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, K, F) contributions and (K,) expected values, as _split_bias gives them."""
        import xgboost

        matrix = xgboost.DMatrix(z)
        raw = np.stack([np.asarray(b.predict(matrix, pred_contribs=True)) for b in self.boosters], axis=1)
        return raw[:, :, : self.width].astype(np.float64), raw[0, :, self.width] + self.init


def _split_left_of(threshold: float) -> float:
    """XGBoost's `x < split` for scikit-learn's `x <= threshold`, both on float32 inputs."""
    low = np.float32(threshold)
    if float(low) > threshold:
        low = np.nextafter(low, np.float32(-np.inf))
    return float(np.nextafter(low, np.float32(np.inf)))


def _tree_json(tree: Any, leaf: np.ndarray, index: int, width: int) -> dict[str, Any]:
    """One scikit-learn tree (`tree_`) in XGBoost's JSON tree format, with `leaf` as the leaves' values."""
    # Breadth-first, each node's children adjacent (right = left + 1): XGBoost's traversal relies on it.
    order: list[int] = []
    queue = [0]
    while queue:
        node = queue.pop(0)
        order.append(node)
        if tree.children_left[node] >= 0:
            queue += [int(tree.children_left[node]), int(tree.children_right[node])]
    renamed = np.empty(len(order), dtype=np.int64)
    renamed[order] = np.arange(len(order))
    left, right, parents = [-1] * len(order), [-1] * len(order), [2147483647] * len(order)
    conditions: list[float] = []
    missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=np.uint8))
    for new, old in enumerate(order):
        if tree.children_left[old] >= 0:
            left[new], right[new] = (
                int(renamed[tree.children_left[old]]),
                int(renamed[tree.children_right[old]]),
            )
            parents[left[new]] = parents[right[new]] = new
            conditions.append(_split_left_of(float(tree.threshold[old])))
        else:
            conditions.append(float(leaf[old]))
    n = len(order)
    return {
        "base_weights": [float(leaf[old]) for old in order],
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": [int(missing[old]) for old in order],
        "id": index,
        "left_children": left,
        "right_children": right,
        "loss_changes": [0.0] * n,
        "parents": parents,
        "split_conditions": conditions,
        "split_indices": [max(int(tree.feature[old]), 0) for old in order],
        "split_type": [0] * n,
        "sum_hessian": [float(tree.weighted_n_node_samples[old]) for old in order],
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(width),
            "num_nodes": str(n),
            "size_leaf_vector": "1",
        },
    }


def _booster(trees: list[dict[str, Any]], width: int) -> Any:
    """An XGBoost regression booster (identity link, base score 0) made of `trees`."""
    import json

    import xgboost

    model = {
        "learner": {
            "attributes": {},
            "feature_names": [],
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(len(trees))},
                    "iteration_indptr": list(range(len(trees) + 1)),
                    "tree_info": [0] * len(trees),
                    "trees": trees,
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": "[0E0]",
                "boost_from_average": "0",
                "num_class": "0",
                "num_feature": str(width),
                "num_target": "1",
            },
            "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}},
        },
        "version": [3, 0, 0],
    }
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    booster.set_param({"nthread": 1})
    return booster


def _probe_rows(trees: list[Any], width: int, rows: int = 64) -> np.ndarray:
    """Rows on both sides of the trees' thresholds (just below or at one, and just above), seeded."""
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(rows, width)) * 3
    by_feature: dict[int, list[float]] = {}
    for estimator in trees:
        tree = estimator.tree_
        for feature, threshold in zip(tree.feature, tree.threshold, strict=True):
            if feature >= 0:
                by_feature.setdefault(int(feature), []).append(float(threshold))
    for feature, thresholds in by_feature.items():
        picked = rng.choice(np.asarray(thresholds), size=rows)
        above = np.array([_split_left_of(t) for t in picked], dtype=np.float32)
        low = np.nextafter(above, np.float32(-np.inf))
        probe[:, feature] = np.where(rng.random(rows) < 0.5, low, above)
    return probe


def _split_bias(raw: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, K, F) contributions and (K,) expected values from TreeSHAP's (n, [K,] F+1) or (n, K*(F+1)) output."""
    n = raw.shape[0]
    shaped = raw.reshape(n, -1, width + 1)
    return shaped[:, :, :width], shaped[0, :, width]


def _identity_objective(estimator: Any) -> bool:
    """Whether a boosted regressor's raw score is its prediction (squared, absolute, Huber, quantile losses)."""
    objective = str(getattr(estimator, "objective", None) or "")
    if not objective and hasattr(estimator, "get_xgb_params"):
        objective = str(estimator.get_xgb_params().get("objective") or "")
    identity = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:quantileerror")
    return objective in ("", "regression", "regression_l1", "huber", "quantile", "fair", *identity)


def build_explainer(pipeline: Any, manifest: ModelManifest) -> Explainer:
    """The explainer of a loaded model; Unexplainable with the reason when there is none."""
    return Explainer(pipeline, manifest)


# -- the HTTP side ------------------------------------------------------------------------------------------------


def explain_instances(body: dict[str, Any], max_rows: int) -> Any:
    """The rows of an :explain body (`instances` or `inputs`, as :predict takes them), at most `max_rows`."""
    instances = body.get("instances")
    if instances is None:
        instances = body.get("inputs")
        if instances is None:
            raise RequestError(422, 'the request needs "instances": an array of rows')
    if type(instances) is list and len(instances) > max_rows:
        raise RequestError(
            422, f"{len(instances)} rows asked for; an :explain request may ask about at most {max_rows}"
        )
    return instances


def explain_response(found: Attributions) -> dict[str, Any]:
    """The :explain answer: what is explained, the expected values, and per row the prediction, the explained
    values and each input column's attributions (one number per explained output, in `classes` order)."""
    outputs = found.outputs()
    names = found.feature_names
    return {
        "output": found.output,
        "explained": found.description,
        "classes": found.classes,
        "feature_names": names,
        "expected_value": found.expected.tolist(),
        "explanations": [
            {
                "prediction": found.predictions[i].item()
                if hasattr(found.predictions[i], "item")
                else found.predictions[i],
                "value": outputs[i].tolist(),
                "attributions": {name: found.values[i, :, j].tolist() for j, name in enumerate(names)},
            }
            for i in range(outputs.shape[0])
        ],
    }


# -- the worker process --------------------------------------------------------------------------------------------

_WORKER: Explainer | Unexplainable | None = None


def _worker_init(directory: str, sha256: str) -> None:
    """In the worker process: load the pinned model directory again (every check included) and its explainer."""
    global _WORKER
    from threadpoolctl import threadpool_limits

    from gyre.training.artifact import load_model_dir

    threadpool_limits(1)  # one core's worth of BLAS/OpenMP: the server's own threads keep the others
    loaded = load_model_dir(directory, expect_sha256=sha256)
    try:
        _WORKER = build_explainer(loaded.model, loaded.manifest)
    except Unexplainable as exc:
        _WORKER = exc


def rows_frame(rows: np.ndarray, features: Sequence[FeatureSpec]) -> Any:
    """A parsed batch (gyre.serving.schema) as the DataFrame the Pipeline was fitted on."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[f.name for f in features])
    for feature in features:
        if feature.dtype == "number":
            frame[feature.name] = frame[feature.name].astype(np.float64)
    return frame


def _worker_explain(rows: np.ndarray) -> bytes:
    # The answer is encoded here too: the server's event loop only passes bytes along.
    import orjson

    if isinstance(_WORKER, Unexplainable):
        raise _WORKER
    assert _WORKER is not None
    try:
        found = _WORKER.explain(rows_frame(rows, _WORKER.features))
    except (ValueError, TypeError) as exc:
        raise _Rejected(f"the model rejected the input: {exc}") from None
    return orjson.dumps(explain_response(found), option=orjson.OPT_SERIALIZE_NUMPY)


class _Rejected(Exception):
    """The model refused a row (as predict's 422)."""


def _worker_ready() -> str | None:
    return str(_WORKER) if isinstance(_WORKER, Unexplainable) else None


class ExplainWorker:
    """One worker process computing explanations, with a bound on the explanations in progress or waiting."""

    def __init__(self, manifest: ModelManifest, directory: Path, sha256: str, *, queue: int = 4) -> None:
        self.reason = explain_support(manifest)
        self.queue = queue
        self.pending = 0
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        if self.reason is None:
            # spawn, not fork: the server process has onnxruntime and event-loop threads a fork would copy mid-state.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(str(directory), sha256),
            )

    def start(self) -> None:
        """Start the worker and load the model in it now, in the background, rather than on the first request."""
        if self._pool is not None:
            self._pool.submit(_worker_ready).add_done_callback(self._loaded)

    def _loaded(self, future: concurrent.futures.Future[str | None]) -> None:
        try:
            reason = future.result()
        except Exception as exc:  # the worker could not load the model: explanations are refused with why
            reason = f"the explanation worker could not load the model: {type(exc).__name__}: {exc}"
        if reason is not None:
            log.warning("explanations unavailable: %s", reason)
            self.reason = reason

    async def explain(self, rows: np.ndarray) -> bytes:
        """The JSON answer (explain_response) for `rows` (a parsed batch), computed and encoded in the worker;
        RequestError 501 or 503 when it cannot be, 422 when the model rejects a row."""
        if self.reason is not None or self._pool is None:
            raise RequestError(501, self.reason or "explanations are not available")
        if self.pending >= self.queue:
            raise RequestError(
                503,
                f"the explanation worker is busy ({self.pending} explanations in progress or waiting, the limit); "
                "retry later",
            )
        self.pending += 1
        try:
            return await asyncio.wrap_future(self._pool.submit(_worker_explain, rows))
        except Unexplainable as exc:
            raise RequestError(501, str(exc)) from None
        except _Rejected as exc:
            raise RequestError(422, str(exc)) from None
        except concurrent.futures.process.BrokenProcessPool:
            raise RequestError(503, "the explanation worker stopped; retry later") from None
        finally:
            self.pending -= 1

    def close(self) -> None:
        """Stop the worker (pending explanations are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
