"""The estimator allowlist (declared in gyre.api.trainingrun): the only scikit-learn classes Gyre instantiates,
trains, saves and loads."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from gyre.api.trainingrun import BOOSTED_KINDS, ESTIMATOR_ALLOWLIST, Task

__all__ = [
    "ESTIMATORS",
    "LINEAR_ESTIMATORS",
    "NATIVE_MISSING_ESTIMATORS",
    "PREPROCESSING_TYPES",
    "TREE_ESTIMATORS",
    "EstimatorError",
    "build_estimator",
    "estimator_class",
    "task_of",
]

# name -> (module, class, task), from the allowlist in gyre.api.trainingrun (the class is named like the kind).
ESTIMATORS: dict[str, tuple[str, str, Task]] = {
    name: (module, name, task) for name, (module, task) in ESTIMATOR_ALLOWLIST.items()
}

# Scale-invariant estimators: the trainer does not scale their inputs. Scaling cannot change their splits, and
# skipping it keeps the ONNX graph exact (a float32 scaler before float32 thresholds would move points across them).
TREE_ESTIMATORS: frozenset[str] = frozenset(
    name for name in ESTIMATORS if "Forest" in name or "Trees" in name or "Tree" in name or "Boosting" in name
) | frozenset(BOOSTED_KINDS)

# They learn at each split which side missing numbers go to, as they do in a notebook, so the trainer leaves
# missing numbers to them: a median imputer would replace that with a guess (and cost a sort of every column).
NATIVE_MISSING_ESTIMATORS: frozenset[str] = frozenset(BOOSTED_KINDS)

# Linear in their inputs after preprocessing (a prediction, or a classifier's log-odds, is coef . x + intercept):
# their per-prediction attributions are exact (gyre.serving.explain), from the mean training row the manifest keeps.
LINEAR_ESTIMATORS: frozenset[str] = frozenset(
    {"LogisticRegression", "LinearRegression", "Ridge", "Lasso", "ElasticNet"}
)

# The preprocessing steps the trainer builds around an estimator (gyre.training.preprocess). FunctionTransformer is
# how a fitted ColumnTransformer holds "passthrough" (no function); a function inside one is refused on its own.
PREPROCESSING_TYPES: tuple[str, ...] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._data.RobustScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
)


class EstimatorError(ValueError):
    """Unknown estimator or invalid parameters; `reason` is a CamelCase word for conditions."""

    def __init__(self, message: str, reason: str = "InvalidEstimator") -> None:
        super().__init__(message)
        self.reason = reason


def estimator_class(name: str) -> type[Any]:
    """The class of an allowlisted estimator; EstimatorError for anything else."""
    entry = ESTIMATORS.get(name)
    if entry is None:
        raise EstimatorError(
            f"unknown estimator {name!r}; allowed: {', '.join(sorted(ESTIMATORS))}", reason="UnknownEstimator"
        )
    module, cls, _task = entry
    found: type[Any] = getattr(importlib.import_module(module), cls)
    return found


def task_of(name: str) -> Task:
    """classification or regression, from the estimator name."""
    estimator_class(name)
    return ESTIMATORS[name][2]


def build_estimator(name: str, params: Mapping[str, Any] | None = None, *, seed: int | None = None) -> Any:
    """Instantiate an allowlisted estimator with validated parameters.

    Parameter names are checked against the estimator's get_params() keys and values by scikit-learn's own
    constraint validation, both raising EstimatorError with a clear message (XGBoost and LightGBM kinds: by
    gyre.training.boosting's parameter table). `seed` sets random_state when the
    estimator has one and the parameters do not. SVC gets probability=True unless set, so probabilities, roc_auc
    and log_loss exist.
    """
    cls = estimator_class(name)
    if name in BOOSTED_KINDS:
        from gyre.training.boosting import build_boosted

        return build_boosted(name, params or {}, seed=seed)
    params = dict(params or {})
    valid = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - valid)
    if unknown:
        raise EstimatorError(
            f"{name} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}",
            reason="InvalidParams",
        )
    if seed is not None and "random_state" in valid and params.get("random_state") is None:
        params["random_state"] = seed
    if name == "SVC" and "probability" not in params:
        params["probability"] = True
    estimator = cls(**params)
    validate = getattr(estimator, "_validate_params", None)
    if validate is not None:
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise EstimatorError(f"invalid parameters for {name}: {exc}", reason="InvalidParams") from exc
    return estimator
