"""XGBoost and LightGBM in Gyre's trainer: parameters, threads, early stopping, native files and ONNX converters.

- Parameters are checked before the estimator exists, as strictly as scikit-learn's own constraint validation
  checks its estimators: an unknown name, a wrong type or a value out of range is refused with a message naming
  the parameter. Every settable parameter is listed here with its type; library parameters that do not fit a
  declarative spec (callables, device selection, categorical handling that the preprocessing already does) are
  refused with the reason.
- Threads: `n_jobs` defaults to the CPUs the pod may use and is capped there (a pod limited to 2 CPUs running 32
  threads is slower, not faster).
- Early stopping watches a validation part carved from the training rows, never the test rows.
- The booster is saved in the library's own format and the preprocessing around it in the skops file; loading
  rebuilds the Pipeline from both, without unpickling (gyre.training.artifact).
- ONNX: onnxmltools' converters are registered for Gyre's classes in skl2onnx, so a Pipeline converts as one graph.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gyre.api.trainingrun import BOOSTED_KINDS, EarlyStopping, Task
from gyre.training.estimators import EstimatorError

__all__ = [
    "BOOSTED",
    "NATIVE_FORMATS",
    "available_cpus",
    "build_boosted",
    "fit_boosted",
    "native_file",
    "rebuild_pipeline",
    "register_onnx_converters",
    "split_pipeline",
    "validate_params",
]

BOOSTED: frozenset[str] = frozenset(BOOSTED_KINDS)

NativeFormat = Literal["xgboost-ubj", "lightgbm-text"]
# kind -> (file name in the model directory, format recorded in the manifest)
NATIVE_FORMATS: dict[str, tuple[str, NativeFormat]] = {
    "XGBClassifier": ("model.ubj", "xgboost-ubj"),
    "XGBRegressor": ("model.ubj", "xgboost-ubj"),
    "LGBMClassifier": ("model.lgbm.txt", "lightgbm-text"),
    "LGBMRegressor": ("model.lgbm.txt", "lightgbm-text"),
}


@dataclass(frozen=True)
class _Param:
    """One parameter's type and range: int, float (ints accepted), bool, or one of `choices`."""

    type: Literal["int", "float", "bool", "choice"]
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """low itself is excluded (learning_rate > 0)."""
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` does not fit, or None."""
        if value is None:
            return None if self.nullable else "must not be null"
        if self.type == "bool":
            return None if isinstance(value, bool) else f"must be a boolean, not {type(value).__name__}"
        if self.type == "choice":
            if isinstance(value, str) and value in self.choices:
                return None
            return f"must be one of {', '.join(self.choices)}; got {value!r}"
        wanted = int if self.type == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            return f"must be {'an integer' if self.type == 'int' else 'a number'}, not {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return "must be finite"
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return f"must be {'>' if self.low_open else '>='} {self.low:g}; got {value}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}; got {value}"
        return None


def _int(low: float | None = None, high: float | None = None, *, nullable: bool = True) -> _Param:
    return _Param("int", low, high, nullable=nullable)


def _float(low: float | None = None, high: float | None = None, *, open_low: bool = False) -> _Param:
    return _Param("float", low, high, low_open=open_low, nullable=True)


def _choice(*choices: str) -> _Param:
    return _Param("choice", choices=choices, nullable=True)


_FRACTION = _float(0.0, 1.0, open_low=True)
_XGB_COMMON: dict[str, _Param] = {
    "n_estimators": _int(1, 100_000),
    "max_depth": _int(0, 64),
    "max_leaves": _int(0),
    "max_bin": _int(2),
    "grow_policy": _choice("depthwise", "lossguide"),
    "learning_rate": _float(0.0, 1.0, open_low=True),
    "booster": _choice("gbtree", "dart", "gblinear"),
    "tree_method": _choice("auto", "exact", "approx", "hist"),
    "gamma": _float(0.0),
    "min_child_weight": _float(0.0),
    "max_delta_step": _float(0.0),
    "subsample": _FRACTION,
    "sampling_method": _choice("uniform"),
    "colsample_bytree": _FRACTION,
    "colsample_bylevel": _FRACTION,
    "colsample_bynode": _FRACTION,
    "reg_alpha": _float(0.0),
    "reg_lambda": _float(0.0),
    "scale_pos_weight": _float(0.0, open_low=True),
    "base_score": _float(),
    "num_parallel_tree": _int(1, 1000),
    "random_state": _int(0, 2**31 - 1),
    "n_jobs": _int(1, 1024),
    "verbosity": _int(0, 3),
    "importance_type": _choice("gain", "weight", "cover", "total_gain", "total_cover"),
    "validate_parameters": _Param("bool", nullable=True),
    "max_cat_to_onehot": _int(1),
    "max_cat_threshold": _int(1),
}
_LGBM_COMMON: dict[str, _Param] = {
    "boosting_type": _choice("gbdt", "dart", "rf"),
    "num_leaves": _int(2, 131_072, nullable=False),
    "max_depth": _int(-1, nullable=False),
    "learning_rate": _float(0.0, open_low=True),
    "n_estimators": _int(1, 100_000, nullable=False),
    "subsample_for_bin": _int(1, nullable=False),
    "min_split_gain": _float(0.0),
    "min_child_weight": _float(0.0),
    "min_child_samples": _int(0, nullable=False),
    "subsample": _FRACTION,
    "subsample_freq": _int(0, nullable=False),
    "colsample_bytree": _FRACTION,
    "reg_alpha": _float(0.0),
    "reg_lambda": _float(0.0),
    "random_state": _int(0, 2**31 - 1),
    "n_jobs": _int(1, 1024),
    "importance_type": _choice("split", "gain"),
    # LightGBM parameters beyond the scikit-learn signature (passed as keyword arguments).
    "verbose": _int(-1, 3),
    "max_bin": _int(2),
    "extra_trees": _Param("bool", nullable=True),
    "path_smooth": _float(0.0),
}
PARAMS: dict[str, dict[str, _Param]] = {
    "XGBClassifier": {
        **_XGB_COMMON,
        "objective": _choice("binary:logistic", "binary:logitraw", "multi:softprob", "multi:softmax"),
        "eval_metric": _choice("logloss", "error", "auc", "aucpr", "mlogloss", "merror"),
    },
    "XGBRegressor": {
        **_XGB_COMMON,
        "objective": _choice(
            "reg:squarederror",
            "reg:squaredlogerror",
            "reg:absoluteerror",
            "reg:pseudohubererror",
            "count:poisson",
            "reg:gamma",
            "reg:tweedie",
        ),
        "eval_metric": _choice("rmse", "rmsle", "mae", "mape", "mphe"),
    },
    "LGBMClassifier": {
        **_LGBM_COMMON,
        "objective": _choice("binary", "multiclass", "multiclassova"),
        "class_weight": _choice("balanced"),
    },
    "LGBMRegressor": {
        **_LGBM_COMMON,
        "objective": _choice(
            "regression", "regression_l1", "huber", "fair", "poisson", "quantile", "mape", "gamma"
        ),
    },
}
# Library parameters a spec cannot set, and why (the message says it).
REFUSED: dict[str, str] = {
    "callbacks": "callbacks are code; use estimator.earlyStopping for early stopping",
    "early_stopping_rounds": "use estimator.earlyStopping (it carves the validation part from the training rows)",
    "device": "Gyre trains on CPU",
    "enable_categorical": "categorical columns are encoded by spec.preprocessing",
    "feature_types": "feature types come from the Dataset's schema",
    "feature_weights": "not settable through a TrainingRun",
    "missing": "missing values are NaN after preprocessing",
    "interaction_constraints": "not settable through a TrainingRun",
    "monotone_constraints": "not settable through a TrainingRun",
    "multi_strategy": "multi-output trees are not supported",
    "nthread": "use n_jobs",
    "num_threads": "use n_jobs",
    "kwargs": "not a parameter",
}


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: the cgroup v2 quota (a pod's CPU limit, rounded up) and the affinity mask,
    at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def validate_params(kind: str, params: Mapping[str, Any]) -> None:
    """EstimatorError (reason InvalidParams) naming every unknown, refused or ill-typed parameter."""
    table = PARAMS[kind]
    problems = []
    for name in sorted(params):
        if name in REFUSED:
            problems.append(f"{name} is not allowed ({REFUSED[name]})")
        elif name not in table:
            problems.append(f"{name} is not a parameter of {kind}")
        elif (problem := table[name].problem(params[name])) is not None:
            problems.append(f"{name} {problem}")
    if problems:
        unknown = any("is not a parameter" in p for p in problems)
        valid = f"; valid: {', '.join(sorted(table))}" if unknown else ""
        raise EstimatorError(
            f"invalid parameters for {kind}: {'; '.join(problems)}{valid}", reason="InvalidParams"
        )


def build_boosted(kind: str, params: Mapping[str, Any], *, seed: int | None) -> Any:
    """A Gyre XGBoost or LightGBM estimator with validated parameters; n_jobs capped at available_cpus().

    `seed` sets random_state unless given. LightGBM's console output is off unless `verbose` is given.
    """
    from gyre.training import boosted

    validate_params(kind, params)
    options = dict(params)
    cpus = available_cpus()
    options["n_jobs"] = min(options.get("n_jobs") or cpus, cpus)
    if seed is not None and options.get("random_state") is None:
        options["random_state"] = seed
    if kind.startswith("LGBM") and options.get("verbose") is None:
        options["verbose"] = -1
    cls: type[Any] = getattr(boosted, kind)
    return cls(**options)


def fit_boosted(
    pipeline: Any,
    x: Any,
    y: Any,
    *,
    task: Task,
    early_stopping: EarlyStopping | None,
    seed: int,
) -> int | None:
    """Fit the Pipeline; with early stopping, on all but a validation part of (x, y) watched by the booster.

    The validation part is carved from the training rows given here (stratified for classification when every
    class has two rows), preprocessed by the steps fitted on the rest. Returns the best iteration (0-based), or
    None without early stopping.
    """
    if early_stopping is None:
        pipeline.fit(x, y)
        return None
    import numpy as np
    from sklearn.model_selection import train_test_split

    stratify = None
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        n_val = max(1, round(len(y) * early_stopping.validation_fraction))
        if counts.min() >= 2 and len(counts) <= n_val <= len(y) - len(counts):
            stratify = y
    x_fit, x_val, y_fit, y_val = train_test_split(
        x, y, test_size=early_stopping.validation_fraction, random_state=seed, stratify=stratify
    )
    preprocess, model = pipeline[:-1], pipeline.steps[-1][1]
    xt_fit = preprocess.fit_transform(x_fit, y_fit)
    xt_val = preprocess.transform(x_val)
    if type(model).__name__.startswith("XGB"):
        model.set_params(early_stopping_rounds=early_stopping.rounds)
        model.fit(xt_fit, y_fit, eval_set=[(xt_val, y_val)], verbose=False)
        return int(model.best_iteration)
    import warnings

    import lightgbm

    with warnings.catch_warnings():
        # LightGBM 4.7 deprecates eval_set for eval_X/eval_y, but its classifier encodes labels only in eval_set.
        warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated", category=FutureWarning)
        model.fit(
            xt_fit,
            y_fit,
            eval_set=[(xt_val, y_val)],
            callbacks=[lightgbm.early_stopping(early_stopping.rounds, verbose=False)],
        )
    return int(model.best_iteration_) - 1


def split_pipeline(pipeline: Any) -> tuple[Any, Any]:
    """(the preprocessing Pipeline, the boosted estimator) of a fitted Pipeline ending in a boosted estimator."""
    return pipeline[:-1], pipeline.steps[-1][1]


def native_file(kind: str, estimator: Any) -> tuple[str, NativeFormat, bytes]:
    """(file name, format, bytes) of the fitted estimator in its library's own format."""
    name, fmt = NATIVE_FORMATS[kind]
    data: bytes = estimator.native()
    return name, fmt, data


def rebuild_pipeline(
    kind: str, preprocess: Any, data: bytes, *, classes: Sequence[Any] | None, params: Mapping[str, Any]
) -> Any:
    """The fitted Pipeline from the loaded preprocessing Pipeline and the native model bytes (no unpickling)."""
    from sklearn.pipeline import Pipeline

    from gyre.training import boosted

    cls: Any = getattr(boosted, kind)
    options = {k: v for k, v in params.items() if k in PARAMS[kind]}
    options["n_jobs"] = min(options.get("n_jobs") or available_cpus(), available_cpus())
    if kind.startswith("LGBM") and options.get("verbose") is None:
        options["verbose"] = -1
    model = cls.from_native(data, classes, options)
    return Pipeline([*preprocess.steps, ("model", model)])


def register_onnx_converters() -> None:
    """Register onnxmltools' XGBoost and LightGBM converters in skl2onnx for Gyre's classes and for the libraries'
    own scikit-learn classes, which an imported pipeline holds (idempotent)."""
    import lightgbm
    import xgboost
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from gyre.training import boosted

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for kind, converter, library in (
        ("XGBClassifier", convert_xgboost, xgboost),
        ("XGBRegressor", convert_xgboost, xgboost),
        ("LGBMClassifier", convert_lightgbm, lightgbm),
        ("LGBMRegressor", convert_lightgbm, lightgbm),
    ):
        is_classifier = kind.endswith("Classifier")
        for cls, alias in (
            (getattr(boosted, kind), f"Gyre{kind}"),
            (getattr(library, kind), f"Library{kind}"),
        ):
            update_registered_converter(
                cls,
                alias,
                calculate_linear_classifier_output_shapes
                if is_classifier
                else calculate_linear_regressor_output_shapes,
                converter,
                options=classifier_options if is_classifier else None,
            )
