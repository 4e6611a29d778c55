"""Rows to verify an imported model's ONNX twin on: the user's sample, or rows generated from the model itself.

A trained model is verified on its held-out rows. An imported model has none, so `boundary_rows` derives rows from
what the fitted model stores:

- every split of every tree (single trees, forests, bagging, AdaBoost, gradient boosting, histogram gradient
  boosting, XGBoost and LightGBM models), one row on each side of its threshold, inside the region of input space that reaches the split (the
  path's other thresholds bound the other features), so the node is actually evaluated;
- the ranges the preprocessing steps learnt: scaler centres and scales, imputer statistics, min/max, encoder
  categories, and missing values where the pipeline accepts them.

Thresholds live in the space the tree sees (after the pipeline's preprocessing). Each raw feature is related to the
tree's input columns by probing the fitted preprocessing: a numeric feature that moves exactly one column
monotonically is inverted there (exactly when affine, by bisection otherwise); a categorical feature is described by
the column values of each of its categories. Columns that mix several features (PCA, polynomial features) bound
nothing, so rows still cover the ranges but not those splits.

A row is placed a margin away from its threshold: a quarter of the distance to the nearest other threshold of that
feature, and never less than `FLOAT32_ULPS` float32 steps of the value, the resolution of the served float32 path.
Inputs closer to a threshold than that may land on either side in either runtime; the reason in the manifest says so.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gyre.training.features import FeatureInputError, coerce_features
from gyre.training.manifest import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FLOAT32_ULPS",
    "MAX_BOUNDARY_ROWS",
    "BoundaryRows",
    "SampleDataError",
    "boundary_rows",
    "read_sample_rows",
]

MAX_BOUNDARY_ROWS = 20_000
"""Most generated rows; a model with more splits is verified on a seeded sample of them (the count is reported)."""
FLOAT32_ULPS = 8
"""Smallest margin between a generated row and a threshold, in float32 steps of the row's value."""
_UNSEEN = "__gyre_unseen_category__"


class SampleDataError(ValueError):
    """The --sample-data file cannot be read or lacks the model's features."""


def read_sample_rows(path: str | os.PathLike[str], features: Sequence[FeatureSpec]) -> pd.DataFrame:
    """The model's features from a CSV or Parquet file (by suffix; Parquet also by magic bytes), coerced."""
    import pandas as pd

    source = Path(path)
    try:
        with source.open("rb") as fh:
            parquet = fh.read(4) == b"PAR1"
        frame = pd.read_parquet(source) if parquet or source.suffix == ".parquet" else pd.read_csv(source)
    except (OSError, ValueError, ImportError) as exc:
        raise SampleDataError(f"cannot read sample data {source}: {exc}") from None
    try:
        coerced = coerce_features(frame, features)
    except FeatureInputError as exc:
        raise SampleDataError(f"sample data {source}: {exc}") from None
    if coerced.empty:
        raise SampleDataError(f"sample data {source} holds no rows")
    return coerced


@dataclass(frozen=True)
class BoundaryRows:
    """Generated rows and what they cover."""

    frame: pd.DataFrame
    splits: int
    """Tree splits found in the model."""
    splits_covered: int
    """Splits with a row on each side (fewer when the splits were sampled, a split's column is not a raw feature,
    or the region that reaches it is narrower than float32 resolution)."""
    dense: tuple[str, ...] = ()
    """Numeric features whose thresholds lie closer together than float32 can tell apart: a float32 ONNX twin
    cannot reproduce those splits."""

    def describe(self) -> str:
        """One phrase for the manifest and the CLI."""
        if self.splits == 0:
            return "rows generated from the model's feature ranges"
        return (
            "rows generated from the model's feature ranges and both sides of "
            f"{self.splits_covered}/{self.splits} tree splits (at least {FLOAT32_ULPS} float32 steps from each "
            "threshold)"
        )


# -- the fitted model ----------------------------------------------------------------------------------------------


def _split(model: Any) -> tuple[Any | None, Any]:
    steps = getattr(model, "steps", None)
    if steps and len(steps) > 1:
        return model[:-1], steps[-1][1]
    if steps:
        return None, steps[-1][1]
    return None, model


@dataclass(frozen=True)
class _Tree:
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    """Column of the estimator's input per node; -1 for leaves."""
    threshold: np.ndarray


def _trees(estimator: Any, columns: np.ndarray | None = None) -> Iterator[_Tree]:
    """Every tree in `estimator`, with node features as columns of the estimator's input."""
    boosted = _xgboost_trees(estimator) or _lightgbm_trees(estimator)
    if boosted is not None:
        for t in boosted:
            feature = t.feature
            if columns is not None:
                feature = np.where(feature >= 0, columns[np.maximum(feature, 0)], -1)
            yield _Tree(t.left, t.right, feature, t.threshold)
        return
    tree = getattr(estimator, "tree_", None)
    if tree is not None:
        feature = np.asarray(tree.feature, dtype=np.int64)
        if columns is not None:
            feature = np.where(feature >= 0, columns[np.maximum(feature, 0)], -1)
        yield _Tree(np.asarray(tree.children_left), np.asarray(tree.children_right), feature, tree.threshold)
        return
    for per_iteration in getattr(estimator, "_predictors", None) or ():  # HistGradientBoosting
        for predictor in per_iteration:
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool) | nodes["is_categorical"].astype(bool)
            yield _Tree(
                np.where(leaf, -1, nodes["left"].astype(np.int64)),
                np.where(leaf, -1, nodes["right"].astype(np.int64)),
                np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
                nodes["num_threshold"].astype(np.float64),
            )
    subsets = getattr(estimator, "estimators_features_", None)  # bagging: each estimator sees a column subset
    inner = getattr(estimator, "estimators_", None)
    if inner is None:
        return
    for i, sub in enumerate(np.asarray(inner, dtype=object).ravel()):
        cols = np.asarray(subsets[i]) if subsets is not None else None
        if cols is not None and columns is not None:
            cols = columns[cols]
        yield from _trees(sub, cols if cols is not None else columns)


def _xgboost_trees(estimator: Any) -> list[_Tree] | None:
    """The trees of an XGBoost model (the library's scikit-learn classes or Gyre's), from its own table of nodes;
    None for anything else.

    XGBoost sends a row left when its value is below the split (`x < split`), scikit-learn when it is at most the
    threshold: rows sit a margin away from every threshold, so the two rules place them alike. Categorical splits
    have no threshold and count as leaves, as histogram gradient boosting's do.
    """
    get_booster = getattr(estimator, "get_booster", None)
    if get_booster is None or not type(estimator).__module__.startswith(("xgboost", "gyre.training")):
        return None
    booster = get_booster()
    nodes = booster.trees_to_dataframe()
    names = list(booster.feature_names or [])
    index = {name: i for i, name in enumerate(names)}

    def column(name: str) -> int:
        if name in index:
            return index[name]
        return int(name[1:]) if name.startswith("f") and name[1:].isdigit() else -1

    def node_id(ref: Any) -> int:
        return int(str(ref).rsplit("-", 1)[1]) if isinstance(ref, str) and "-" in ref else -1

    trees = []
    for _, tree in nodes.groupby("Tree", sort=True):
        size = int(tree["Node"].max()) + 1
        left = np.full(size, -1, dtype=np.int64)
        right = np.full(size, -1, dtype=np.int64)
        feature = np.full(size, -1, dtype=np.int64)
        threshold = np.zeros(size, dtype=np.float64)
        categorical = tree.get("Category")
        for i, row in enumerate(tree.itertuples(index=False)):
            if row.Feature == "Leaf" or (categorical is not None and _is_set(categorical.iloc[i])):
                continue
            n = int(row.Node)
            left[n], right[n] = node_id(row.Yes), node_id(row.No)
            feature[n], threshold[n] = column(str(row.Feature)), float(row.Split)
        trees.append(_Tree(left, right, feature, threshold))
    return trees


def _is_set(value: Any) -> bool:
    """A categorical split's category list (a list or array), not pandas' missing marker."""
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0


def _lightgbm_trees(estimator: Any) -> list[_Tree] | None:
    """The trees of a LightGBM model (the library's scikit-learn classes or Gyre's), from its own dump; None for
    anything else. Numeric splits send `x <= threshold` left, as scikit-learn's do; categorical splits (`==`) count
    as leaves."""
    booster = getattr(estimator, "booster_", None)  # an unfitted model raises an AttributeError: None
    if booster is None or not hasattr(booster, "dump_model"):
        return None
    return [_lightgbm_tree(info["tree_structure"]) for info in booster.dump_model()["tree_info"]]


def _lightgbm_tree(root: dict[str, Any]) -> _Tree:
    """One tree of LightGBM's dump (nested dicts), numbered depth first from the root."""
    nodes: list[dict[str, Any]] = []
    children: list[list[int]] = []
    stack: list[tuple[dict[str, Any], int, int]] = [(root, -1, 0)]  # (node, parent, 0 left / 1 right)
    while stack:
        node, parent, side = stack.pop()
        n = len(nodes)
        nodes.append(node)
        children.append([-1, -1])
        if parent >= 0:
            children[parent][side] = n
        if "split_index" in node and node.get("decision_type") == "<=":
            stack.append((node["right_child"], n, 1))
            stack.append((node["left_child"], n, 0))
    split = [("split_index" in node and node.get("decision_type") == "<=") for node in nodes]
    return _Tree(
        np.array([c[0] for c in children], dtype=np.int64),
        np.array([c[1] for c in children], dtype=np.int64),
        np.array([int(node["split_feature"]) if s else -1 for node, s in zip(nodes, split, strict=True)]),
        np.array([float(node["threshold"]) if s else 0.0 for node, s in zip(nodes, split, strict=True)]),
    )


def _raw_stats(
    model: Any, features: Sequence[FeatureSpec]
) -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """Values the fitted steps learnt per raw feature (numbers) and the categories they know (strings).

    Only steps that see raw values count: the first steps of a pipeline, inside a ColumnTransformer's branches, up
    to the first step that changes values other than missing ones (an imputer keeps them).
    """
    numbers: dict[str, list[float]] = {f.name: [] for f in features}
    categories: dict[str, list[Any]] = {f.name: list(f.categories or []) for f in features}

    def visit(step: Any, names: list[str]) -> bool:
        """Record `step`'s statistics for input columns `names`; True when its output keeps raw values."""
        if hasattr(step, "steps"):
            for _, inner in step.steps:
                if inner in (None, "passthrough"):
                    continue
                if not visit(inner, names):
                    return False
            return True
        if hasattr(step, "transformers_"):
            by_position = list(getattr(step, "feature_names_in_", names))
            for _, inner, cols in step.transformers_:
                if inner in ("drop",) or isinstance(inner, str):
                    continue
                selected = [
                    by_position[c] if isinstance(c, (int, np.integer)) else str(c)
                    for c in np.atleast_1d(cols)
                ]
                visit(inner, [n for n in selected if n in numbers])
            return False
        if len(names) != getattr(step, "n_features_in_", len(names)):
            return False
        for attr in ("categories_",):
            for name, values in zip(names, getattr(step, attr, ()), strict=False):
                categories[name].extend(v for v in np.asarray(values).tolist() if v is not None)
        center = next(
            (getattr(step, a) for a in ("mean_", "center_", "statistics_") if hasattr(step, a)), None
        )
        scale = getattr(step, "scale_", None)
        for i, name in enumerate(names):
            values = numbers[name]
            if center is not None and _finite(center, i):
                c = float(center[i])
                values.append(c)
                if scale is not None and _finite(scale, i):
                    values.extend(c + k * float(scale[i]) for k in (-3, -2, -1, 1, 2, 3))
            for attr in ("data_min_", "data_max_"):
                if _finite(getattr(step, attr, None), i):
                    values.append(float(getattr(step, attr)[i]))
        # Imputers and encoders' inputs are raw; what follows a scaler is not.
        return type(step).__name__ in ("SimpleImputer", "MissingIndicator")

    visit(model, [f.name for f in features])
    return numbers, categories


def _finite(array: Any, i: int) -> bool:
    if array is None:
        return False
    try:
        value = float(np.asarray(array)[i])
    except (TypeError, ValueError, IndexError):
        return False
    return bool(np.isfinite(value))


# -- the raw features as seen by the estimator ------------------------------------------------------------------


@dataclass
class _NumericMap:
    feature: int
    column: int
    forward: Callable[[np.ndarray], np.ndarray]
    """Raw values -> the column's values (other features at the base row)."""
    increasing: bool
    affine: tuple[float, float] | None
    """(slope, intercept) when the map is affine."""

    def inverse(self, targets: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """Raw values whose column value is `targets` (bisection in [lo, hi] when not affine)."""
        if self.affine is not None:
            slope, intercept = self.affine
            return (targets - intercept) / slope
        a = np.full(targets.shape, lo)
        b = np.full(targets.shape, hi)
        for _ in range(60):
            mid = (a + b) / 2
            below = self.forward(mid) < targets
            if not self.increasing:
                below = ~below
            a = np.where(below, mid, a)
            b = np.where(below, b, mid)
        return np.asarray((a + b) / 2, dtype=np.float64)


@dataclass
class _CategoricalMap:
    feature: int
    columns: np.ndarray
    categories: list[Any]
    values: np.ndarray
    """[category, column] values."""


class _Probe:
    """Relates raw features to the columns the final estimator sees by transforming probe rows."""

    def __init__(self, pre: Any, features: Sequence[FeatureSpec], base: list[Any]) -> None:
        self.pre = pre
        self.features = list(features)
        self.base = base

    def frame(self, rows: list[list[Any]]) -> pd.DataFrame:
        import pandas as pd

        return coerce_features(pd.DataFrame(rows, columns=[f.name for f in self.features]), self.features)

    def transform(self, rows: list[list[Any]]) -> np.ndarray:
        frame = self.frame(rows)
        if self.pre is None:
            return np.asarray(frame.to_numpy(dtype=np.float64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.pre.transform(frame)
        if hasattr(out, "toarray"):
            out = out.toarray()
        return np.asarray(out, dtype=np.float64)

    def vary(self, j: int, values: Sequence[Any]) -> np.ndarray:
        rows = []
        for v in values:
            row = list(self.base)
            row[j] = v
            rows.append(row)
        return self.transform(rows)

    def numeric(self, j: int, spread: float) -> _NumericMap | None:
        c = float(self.base[j])
        for _ in range(4):
            points = np.array([c - spread, c, c + spread, c + 2 * spread])
            out = self.vary(j, points.tolist())
            if np.all(np.isfinite(out)):
                break
            spread /= 10  # a transform defined on part of the line only (log1p): probe closer to the centre
        else:
            return None
        changed = np.flatnonzero(np.any(out != out[1], axis=0))
        if len(changed) != 1:
            return None
        k = int(changed[0])
        col = out[:, k]
        steps = np.diff(col)
        if not (np.all(steps > 0) or np.all(steps < 0)):
            return None
        slope = (col[2] - col[0]) / (2 * spread)
        intercept = col[1] - slope * c
        affine = (
            (float(slope), float(intercept))
            if np.allclose(
                col, slope * points + intercept, rtol=1e-9, atol=1e-12 * max(1.0, float(np.max(np.abs(col))))
            )
            else None
        )

        def forward(raw: np.ndarray, j: int = j, k: int = k) -> np.ndarray:
            return self.vary(j, raw.tolist())[:, k]

        return _NumericMap(j, k, forward, bool(slope > 0), affine)

    def categorical(self, j: int, categories: list[Any]) -> _CategoricalMap | None:
        if len(categories) < 2:
            return None
        out = self.vary(j, categories)
        changed = np.flatnonzero(np.any(out != out[0], axis=0))
        if len(changed) == 0:
            return None
        return _CategoricalMap(j, changed, categories, out[:, changed])


def _ulp32(value: np.ndarray | float) -> np.ndarray:
    v = np.abs(np.asarray(value, dtype=np.float32))
    return np.asarray(np.spacing(np.maximum(v, np.float32(np.finfo(np.float32).tiny))), dtype=np.float64)


def boundary_rows(
    model: Any, features: Sequence[FeatureSpec], *, max_rows: int = MAX_BOUNDARY_ROWS, seed: int = 0
) -> BoundaryRows:
    """Rows on both sides of every tree split of `model` and across its learnt feature ranges (see the module)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    pre, final = _split(model)
    numbers, categories = _raw_stats(model, features)
    trees = list(_trees(final))

    # Thresholds per estimator column: they also give a centre for raw features no step describes.
    by_column: dict[int, np.ndarray] = {}
    if trees:
        feats = np.concatenate([t.feature for t in trees])
        thrs = np.concatenate([t.threshold for t in trees])
        inner = feats >= 0
        for col in np.unique(feats[inner]):
            by_column[int(col)] = np.unique(thrs[inner & (feats == col)])

    base: list[Any] = []
    for j, f in enumerate(features):
        if f.dtype == "number":
            known = [v for v in numbers[f.name] if np.isfinite(v)]
            if not known and pre is None and j in by_column:
                known = list(by_column[j])
            base.append(float(np.median(known)) if known else 0.0)
        else:
            cats = [str(c) for c in categories[f.name]]
            categories[f.name] = list(dict.fromkeys(cats))
            base.append(categories[f.name][0] if cats else _UNSEEN)
    probe = _Probe(pre, features, base)

    # Raw feature <-> estimator column.
    numeric_maps: dict[int, _NumericMap] = {}
    categorical_maps: dict[int, _CategoricalMap] = {}
    for j, f in enumerate(features):
        if f.dtype == "number":
            known = [v for v in numbers[f.name] if np.isfinite(v)]
            spread = float(np.std(known)) if len(known) > 1 and np.std(known) > 0 else max(abs(base[j]), 1.0)
            mapped = probe.numeric(j, spread)
            if mapped is not None and mapped.column not in numeric_maps:
                numeric_maps[mapped.column] = mapped
        else:
            cmap = probe.categorical(j, categories[f.name])
            if cmap is not None:
                for col in cmap.columns:
                    categorical_maps[int(col)] = cmap

    # Raw thresholds per numeric feature: rows keep clear of them.
    raw_thresholds: dict[int, np.ndarray] = {}
    by_feature: dict[int, np.ndarray] = {}
    for col, nmap in numeric_maps.items():
        if col in by_column:
            raw = _invert(nmap, by_column[col], base[nmap.feature])
            raw_thresholds[col] = by_feature[nmap.feature] = np.unique(raw[np.isfinite(raw)])
    for col, nmap in numeric_maps.items():
        centre = _inside(nmap, -np.inf, np.inf, float(base[nmap.feature]), raw_thresholds.get(col))
        if centre is not None:
            base[nmap.feature] = centre

    rows: list[list[Any]] = [list(base)]
    for j, f in enumerate(features):
        values: list[Any] = [*categories[f.name], "", _UNSEEN]
        if f.dtype == "number":
            finite = np.array([v for v in dict.fromkeys(numbers[f.name]) if np.isfinite(v)], dtype=np.float64)
            values = [*finite[_clear(finite, by_feature.get(j))].tolist(), np.nan]
        for value in dict.fromkeys(values):
            row = list(base)
            row[j] = value
            rows.append(row)
    rows = [rows[0], *_accepted(model, probe, rows[1:])]

    nodes = [(t, n) for t in trees for n in np.flatnonzero(t.feature >= 0)]
    splits = len(nodes)
    budget = max(0, (max_rows - len(rows)) // 2)
    wanted = (
        set(range(splits))
        if splits <= budget
        else set(rng.choice(splits, size=budget, replace=False).tolist())
    )
    covered = 0
    index = 0
    dense: set[int] = set()
    for tree in trees:
        for node, box in _walk(tree):
            take = index in wanted
            index += 1
            if not take:
                continue
            pair = _rows_at(tree, node, box, base, numeric_maps, categorical_maps, raw_thresholds, dense)
            if pair is not None:
                rows.extend(pair)
                covered += 1
    frame = probe.frame(rows).drop_duplicates(ignore_index=True)
    if len(frame) > max_rows:
        frame = frame.iloc[np.sort(rng.choice(len(frame), size=max_rows, replace=False))].reset_index(
            drop=True
        )
    return BoundaryRows(pd.DataFrame(frame), splits, covered, tuple(features[j].name for j in sorted(dense)))


def _accepted(model: Any, probe: _Probe, rows: list[list[Any]]) -> list[list[Any]]:
    """The rows the pipeline predicts on (it may refuse NaN without an imputer, or unknown categories)."""

    def accepts(batch: list[list[Any]]) -> bool:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.predict(probe.frame(batch))
        except Exception:  # any refusal: the server would refuse these values too
            return False
        return True

    if not rows or accepts(rows):
        return rows
    return [row for row in rows if accepts([row])]


def _invert(nmap: _NumericMap, targets: np.ndarray, center: float) -> np.ndarray:
    """Raw values for column values `targets` (infinite targets map to the matching infinite raw value)."""
    if nmap.affine is not None:
        with np.errstate(all="ignore"):
            return nmap.inverse(targets, 0.0, 0.0)
    finite = np.isfinite(targets)
    out = np.where(targets > 0, np.inf, -np.inf) * (1.0 if nmap.increasing else -1.0)
    if not finite.any():
        return out
    targets = targets[finite]
    # Bisection needs a bracket: widen around the centre until it holds every target.
    width = max(abs(center), 1.0)
    lo, hi = center - width, center + width
    for _ in range(64):
        ends = nmap.forward(np.array([lo, hi]))
        if min(ends) <= np.min(targets) and max(ends) >= np.max(targets):
            break
        width *= 4
        lo, hi = center - width, center + width
    out[finite] = nmap.inverse(targets, lo, hi)
    return out


def _walk(tree: _Tree) -> Iterator[tuple[int, dict[int, tuple[float, float]]]]:
    """Every split node with the box (column -> (lo, hi], in the estimator's input) of the rows that reach it."""
    stack: list[tuple[int, dict[int, tuple[float, float]]]] = [(0, {})]
    while stack:
        node, box = stack.pop()
        col = int(tree.feature[node])
        if col < 0:
            continue
        yield node, box
        thr = float(tree.threshold[node])
        lo, hi = box.get(col, (-np.inf, np.inf))
        stack.append((int(tree.left[node]), {**box, col: (lo, min(hi, thr))}))
        stack.append((int(tree.right[node]), {**box, col: (max(lo, thr), hi)}))


def _rows_at(
    tree: _Tree,
    node: int,
    box: dict[int, tuple[float, float]],
    base: list[Any],
    numeric_maps: dict[int, _NumericMap],
    categorical_maps: dict[int, _CategoricalMap],
    raw_thresholds: dict[int, np.ndarray],
    dense: set[int],
) -> list[list[Any]] | None:
    """Two raw rows reaching `node`, one each side of its threshold; None when its column is not a raw feature or
    no row can reach it clear of the thresholds. A numeric feature whose thresholds around this one are denser than
    float32 resolution is added to `dense`."""
    col = int(tree.feature[node])
    thr = float(tree.threshold[node])
    if col not in numeric_maps and col not in categorical_maps:
        return None
    sides: tuple[float, float] | None = None
    if col in numeric_maps:
        nmap = numeric_maps[col]
        raw_thr = float(_invert(nmap, np.array([thr]), float(base[nmap.feature]))[0])
        if not np.isfinite(raw_thr):
            return None
        sides = _sides(raw_thr, raw_thresholds.get(col))
        if sides is None:
            dense.add(nmap.feature)
            return None
    row = list(base)
    # Other constrained features: a value inside the box (the base value when it already is).
    for other, (lo, hi) in box.items():
        if other == col:
            continue
        if other in numeric_maps:
            nmap = numeric_maps[other]
            value = _inside(nmap, lo, hi, base[nmap.feature], raw_thresholds.get(other))
            if value is None:
                return None
            row[nmap.feature] = value
        elif other in categorical_maps:
            pick = _category(categorical_maps[other], box)
            if pick is None:
                return None
            row[categorical_maps[other].feature] = pick
    lo, hi = box.get(col, (-np.inf, np.inf))
    if sides is not None:
        j = numeric_maps[col].feature
        return [[*row[:j], value, *row[j + 1 :]] for value in sides]
    out: list[list[Any]] = []
    cmap = categorical_maps[col]
    for side_box in ({**box, col: (lo, min(hi, thr))}, {**box, col: (max(lo, thr), hi)}):
        pick = _category(cmap, side_box)
        if pick is None:
            return None
        out.append([*row[: cmap.feature], pick, *row[cmap.feature + 1 :]])
    return out


def _clear(points: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Which points lie at least FLOAT32_ULPS float32 steps from every threshold."""
    if thresholds is None or len(thresholds) == 0:
        return np.ones(points.shape, dtype=bool)
    distance = np.min(np.abs(points[:, None] - thresholds[None, :]), axis=1)
    return np.asarray(distance >= FLOAT32_ULPS * _ulp32(points))


def _sides(raw_thr: float, thresholds: np.ndarray | None) -> tuple[float, float] | None:
    """Raw values just below and above a threshold, clear of every threshold; None when the thresholds around it
    are closer together than float32 can tell apart.

    Thresholds within two float32 steps of this one are the same boundary (forests repeat a split with float noise).
    """
    ulp = float(_ulp32(raw_thr))
    others = thresholds[np.abs(thresholds - raw_thr) > 2 * ulp] if thresholds is not None else np.array([])
    if len(others) == 0:
        margin = max(2 * FLOAT32_ULPS * ulp, abs(raw_thr) * 1e-3, 1e-3)
    else:
        gap = float(np.min(np.abs(others - raw_thr)))
        margin = max(gap / 4, min(2 * FLOAT32_ULPS * ulp, gap / 2))
    points = np.array([raw_thr - margin, raw_thr + margin])
    if not np.all(_clear(points, others)) or margin < (FLOAT32_ULPS + 2) * ulp:
        return None
    return float(points[0]), float(points[1])


def _inside(
    nmap: _NumericMap, lo: float, hi: float, center: float, thresholds: np.ndarray | None
) -> float | None:
    """A raw value whose column value lies in (lo, hi], clear of every threshold of the feature: the centre when it
    is, else the nearest midpoint between two thresholds; None when there is none."""
    ends = _invert(nmap, np.array([lo, hi]), center)
    raw_lo, raw_hi = float(np.min(ends)), float(np.max(ends))
    if np.isnan(raw_lo) or np.isnan(raw_hi):
        return None
    candidates = [np.array([center])]
    if thresholds is not None and len(thresholds):
        reach = max(float(thresholds[-1] - thresholds[0]) / 4, abs(center) * 1e-3, 1e-3)
        candidates += [
            (thresholds[:-1] + thresholds[1:]) / 2,
            np.array([thresholds[0] - reach, thresholds[-1] + reach]),
        ]
    points = np.concatenate(candidates)
    ok = (points > raw_lo) & (points < raw_hi) & _clear(points, thresholds)
    if np.isfinite(raw_lo):
        ok &= points - raw_lo >= FLOAT32_ULPS * _ulp32(points)
    if np.isfinite(raw_hi):
        ok &= raw_hi - points >= FLOAT32_ULPS * _ulp32(points)
    if not ok.any():
        return None
    points = points[ok]
    return float(points[np.argmin(np.abs(points - center))])


def _category(cmap: _CategoricalMap, box: dict[int, tuple[float, float]]) -> Any | None:
    """The first category whose column values lie in the box."""
    ok = np.ones(len(cmap.categories), dtype=bool)
    for i, col in enumerate(cmap.columns):
        if int(col) in box:
            lo, hi = box[int(col)]
            ok &= (cmap.values[:, i] > lo) & (cmap.values[:, i] <= hi)
    hits = np.flatnonzero(ok)
    return cmap.categories[int(hits[0])] if len(hits) else None
