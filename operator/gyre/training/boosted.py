"""Gyre's XGBoost and LightGBM estimators: the libraries' scikit-learn classes, rebuilt from their own model files.

The kinds `XGBClassifier`, `XGBRegressor`, `LGBMClassifier` and `LGBMRegressor` (gyre.api.trainingrun) resolve to
these subclasses. They differ from the library classes in two ways only:

- XGBoost's classifier accepts any class labels (strings, or integers other than 0..K-1), as scikit-learn's do:
  they are encoded for fitting and `predict` returns the original labels (XGBoost itself refuses such labels).
- `from_native(data, classes, params)` rebuilds a fitted estimator from the library's own model file (XGBoost
  UBJSON, LightGBM text) without unpickling anything; `native()` writes that file. The class labels come from the
  manifest (target.classes), which the model digest pins.

This module imports both libraries, so only gyre.training.boosting and gyre.training.estimators import it, lazily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm
import numpy as np
import xgboost

__all__ = ["LGBMClassifier", "LGBMRegressor", "XGBClassifier", "XGBRegressor"]


class _Native:
    """Rebuild from the library's own model file: `_load` reads the booster, `_set_classes` the labels."""

    @classmethod
    def from_native(cls, data: bytes, classes: Sequence[Any] | None, params: Mapping[str, Any]) -> Any:
        """A fitted estimator from `native()`'s bytes, its parameters and (classifiers) the class labels in
        predict_proba order, as the manifest records them."""
        model = cls(**params)
        model._load(data)
        model._set_classes(classes)
        return model

    def _load(self, data: bytes) -> None:
        raise NotImplementedError

    def _set_classes(self, classes: Sequence[Any] | None) -> None:
        del classes  # regressors have none


class _XGBNative(_Native):
    """XGBoost's own format (UBJSON); the booster's attributes (best_iteration) travel inside it."""

    def native(self) -> bytes:
        import json

        booster = self.get_booster()  # type: ignore[attr-defined]
        # As XGBModel.save_model does, so that load_model checks the estimator type; in memory, not via a file.
        booster.set_attr(scikit_learn=json.dumps({"_estimator_type": self._get_type()}))  # type: ignore[attr-defined]
        try:
            return bytes(booster.save_raw(raw_format="ubj"))
        finally:
            booster.set_attr(scikit_learn=None)

    def _load(self, data: bytes) -> None:
        self.load_model(bytearray(data))  # type: ignore[attr-defined]


class XGBClassifier(_XGBNative, xgboost.XGBClassifier):
    """xgboost.XGBClassifier over any class labels."""

    labels_: np.ndarray

    def fit(self, X: Any, y: Any, *, eval_set: Sequence[tuple[Any, Any]] | None = None, **kwargs: Any) -> Any:
        from sklearn.preprocessing import LabelEncoder

        self.__dict__.pop("labels_", None)  # XGBoost compares classes_ with 0..K-1 while fitting
        encoder = LabelEncoder().fit(y)
        if eval_set is not None:
            eval_set = [(x, encoder.transform(v)) for x, v in eval_set]
        super().fit(X, encoder.transform(y), eval_set=eval_set, **kwargs)
        self.labels_ = encoder.classes_
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = self.__dict__.get("labels_")
        return labels if labels is not None else np.arange(self.n_classes_)

    def predict(self, X: Any, **kwargs: Any) -> Any:
        codes = super().predict(X, **kwargs)
        if kwargs.get("output_margin"):
            return codes
        return self.classes_[np.asarray(codes).astype(np.intp)]

    def _set_classes(self, classes: Sequence[Any] | None) -> None:
        if classes is None or len(classes) != self.n_classes_:
            raise ValueError(f"the model has {self.n_classes_} classes, the manifest lists {classes}")
        self.labels_ = np.asarray(list(classes))


class XGBRegressor(_XGBNative, xgboost.XGBRegressor):
    """xgboost.XGBRegressor, saved and loaded in XGBoost's own format."""


class _LGBMNative(_Native):
    """LightGBM's text model format."""

    def native(self) -> bytes:
        # num_iteration=None saves up to the best iteration when early stopping found one, as predict uses.
        text: str = self.booster_.model_to_string(num_iteration=None)  # type: ignore[attr-defined]
        return text.encode()

    def _load(self, data: bytes) -> None:
        # The state LGBMModel.fit leaves behind, read back from the booster (LightGBM has no scikit-learn loader).
        booster = lightgbm.Booster(model_str=data.decode())
        self._Booster = booster
        self._n_features = booster.num_feature()
        self._n_features_in = booster.num_feature()
        self._fitted_with_feature_names = False
        self._best_iteration = booster.best_iteration
        self._best_score: dict[str, Any] = {}
        self._evals_result: dict[str, Any] = {}
        self.fitted_ = True
        self._objective = getattr(self, "objective", None) or "regression"


class LGBMClassifier(_LGBMNative, lightgbm.LGBMClassifier):  # type: ignore[misc]
    """lightgbm.LGBMClassifier, saved and loaded in LightGBM's text format."""

    def _set_classes(self, classes: Sequence[Any] | None) -> None:
        from lightgbm.compat import _LGBMLabelEncoder

        labels = np.asarray(list(classes or []))
        outputs = self._Booster.num_model_per_iteration()
        if len(labels) < 2 or outputs != (len(labels) if len(labels) > 2 else 1):
            raise ValueError(f"the model predicts {outputs} class score(s), the manifest lists {classes}")
        self._le = _LGBMLabelEncoder().fit(labels)
        self._classes = self._le.classes_
        self._n_classes = len(labels)
        self._class_map = dict(zip(self._classes, range(len(labels)), strict=True))
        self._objective = self.objective or ("multiclass" if len(labels) > 2 else "binary")


class LGBMRegressor(_LGBMNative, lightgbm.LGBMRegressor):  # type: ignore[misc]
    """lightgbm.LGBMRegressor, saved and loaded in LightGBM's text format."""
