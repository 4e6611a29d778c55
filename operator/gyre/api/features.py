"""TrainingRun `spec.features`: the model's input columns and declarative transforms on them.

A transform names one or more columns and an ordered list of steps. Each step is a union in the Kubernetes style
(as a Volume's sources): an object that sets exactly one member (`impute`, `clip`, `log`, ...), whose fields are that
transform's parameters. gyre.training.preprocess compiles every step into a scikit-learn transformer inside the saved
Pipeline, so the server applies exactly what training fitted.

CEL refuses at admission what the spec alone shows to be wrong (a step with no or two transforms, an encoder that is
not the last step, a column transformed twice). Whether a column exists, and whether it holds numbers, only the data
can tell: the operator checks names against the Dataset's schema and the trainer checks types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from gyre.api.common import ApiModel, bounds_rules

__all__ = [
    "ENCODER_STEPS",
    "NUMERIC_STEPS",
    "STEP_KINDS",
    "BucketizeStep",
    "ClipStep",
    "CyclicStep",
    "DatePart",
    "DatePartsStep",
    "FeatureTransform",
    "FeaturesSpec",
    "HashStep",
    "ImputeStep",
    "LogStep",
    "OneHotStep",
    "PowerStep",
    "StandardizeStep",
    "TargetEncodeStep",
    "TfidfStep",
    "TransformStep",
]

ColumnName = Annotated[str, Field(min_length=1, max_length=128)]

# Every member of TransformStep, as spelled in the spec (camelCase).
STEP_KINDS: tuple[str, ...] = (
    "impute",
    "clip",
    "log",
    "power",
    "standardize",
    "bucketize",
    "cyclic",
    "dateParts",
    "oneHot",
    "targetEncode",
    "hash",
    "tfidf",
)
# Steps whose output is the transform's final encoding: nothing may follow them.
ENCODER_STEPS: tuple[str, ...] = ("bucketize", "cyclic", "oneHot", "targetEncode", "hash", "tfidf")
# Steps that compute on numbers, after which a category encoder makes no sense.
NUMERIC_STEPS: tuple[str, ...] = ("clip", "log", "power", "standardize", "dateParts")
_CATEGORY_ENCODERS: tuple[str, ...] = ("oneHot", "targetEncode", "hash")


def _any(kinds: tuple[str, ...], var: str = "s") -> str:
    return " || ".join(f"has({var}.{k})" for k in kinds)


class ImputeStep(ApiModel):
    """Fill missing values: NaN or null for numbers, null or the empty string for strings."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.strategy != 'constant' || (has(self.value) != has(self.category))",
                    "message": "impute strategy constant needs value (for number columns) or category (for string "
                    "columns), not both",
                },
                {
                    "rule": "self.strategy == 'constant' || (!has(self.value) && !has(self.category))",
                    "message": "impute value and category apply only to strategy constant",
                },
            ]
        }
    )

    strategy: Literal["mean", "median", "mostFrequent", "constant"] = "median"
    """mean and median: number columns only; mostFrequent: any column; constant: fill with value or category."""
    value: float | None = None
    """The fill value of strategy constant for number columns."""
    category: str | None = Field(default=None, max_length=256)
    """The fill value of strategy constant for string columns."""

    @model_validator(mode="after")
    def _constant(self) -> ImputeStep:
        if self.strategy == "constant" and (self.value is None) == (self.category is None):
            raise ValueError("impute strategy constant needs value or category, not both")
        if self.strategy != "constant" and (self.value is not None or self.category is not None):
            raise ValueError("impute value and category apply only to strategy constant")
        return self


class ClipStep(ApiModel):
    """Bound numbers to [min, max]; values outside become the bound."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": bounds_rules("clip")})

    min: float | None = None
    """Lower bound."""
    max: float | None = None
    """Upper bound."""

    @model_validator(mode="after")
    def _bounds(self) -> ClipStep:
        if self.min is None and self.max is None:
            raise ValueError("a clip needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("clip min must not be greater than max")
        return self


class LogStep(ApiModel):
    """Natural logarithm of (x + offset). Training fails when a value is at or below -offset; at serving, such a
    value is raised to the smallest value training saw (so no -inf or NaN reaches the model)."""

    offset: float = Field(default=1.0, ge=0)
    """Added before the logarithm; the default 1 gives log1p, defined at 0."""


class PowerStep(ApiModel):
    """A power transform that makes a skewed column more Gaussian (scikit-learn PowerTransformer)."""

    method: Literal["yeoJohnson", "boxCox"] = "yeoJohnson"
    """yeoJohnson accepts any number; boxCox needs strictly positive values."""
    standardize: bool = True
    """Scale the result to zero mean and unit variance."""


class StandardizeStep(ApiModel):
    """Scale numbers."""

    method: Literal["standard", "robust", "minMax"] = "standard"
    """standard: zero mean, unit variance; robust: median and interquartile range (outliers weigh less); minMax:
    into [0, 1] by the training range."""


class BucketizeStep(ApiModel):
    """Cut numbers into bins (scikit-learn KBinsDiscretizer). The encoding of the column: the last step."""

    bins: int = Field(default=5, ge=2, le=256)
    """Number of bins."""
    strategy: Literal["quantile", "uniform", "kmeans"] = "quantile"
    """quantile: equally filled bins; uniform: equally wide; kmeans: around 1-D k-means centres."""
    encode: Literal["oneHot", "ordinal"] = "oneHot"
    """oneHot: one 0/1 column per bin; ordinal: the bin's index as one number."""


class CyclicStep(ApiModel):
    """Encode a periodic number (hour 0-23, month 1-12, angle) as sin and cos of 2*pi*x/period, so that the end of
    the cycle is next to its start. The encoding of the column: the last step."""

    period: float = Field(gt=0)
    """Length of one cycle in the column's unit, e.g. 24 for hours, 12 for months, 360 for degrees."""


DatePart = Literal["year", "month", "day", "dayOfWeek", "dayOfYear", "hour", "minute"]


class DatePartsStep(ApiModel):
    """Parse a date or timestamp column (ISO 8601 text) into numeric parts. The first step of its transform;
    unparseable or missing dates take each part's training median."""

    parts: list[DatePart] = Field(
        default=["year", "month", "day", "dayOfWeek"],  # a default (not a factory) so the CRD shows it
        min_length=1,
        max_length=7,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    """Parts to extract; each becomes one number (or two with cyclic)."""
    cyclic: bool = False
    """Encode every periodic part (all but year) as sin and cos over its cycle: December is next to January."""


class OneHotStep(ApiModel):
    """One 0/1 column per category, with rare categories grouped into one "infrequent" column and a cap on columns
    (scikit-learn OneHotEncoder). Unseen categories at serving count as infrequent (or, when training saw no rare
    category, as all zeros). The encoding of the column: the last step."""

    max_categories: int = Field(default=50, ge=2, le=10000)
    """At most this many output columns per input column, the infrequent group included."""
    min_frequency: int = Field(default=1, ge=1)
    """Categories seen in fewer training rows than this are grouped as infrequent."""


class TargetEncodeStep(ApiModel):
    """Replace each category by a smoothed mean of the target for it, cross-fitted on the training rows so the
    model does not learn from its own labels (scikit-learn TargetEncoder). For high-cardinality columns. The encoding
    of the column: the last step."""

    smoothing: float | None = Field(default=None, ge=0)
    """How strongly rare categories shrink towards the global mean; unset: chosen from the data (empirical Bayes)."""


class HashStep(ApiModel):
    """Hash `column=value` into a fixed number of columns: memory is bounded whatever the number of distinct
    values, and unseen values need no vocabulary. The encoding of the column: the last step."""

    n_features: int = Field(default=1024, ge=2, le=1 << 20)
    """Number of output columns shared by the transform's columns; collisions grow as it shrinks."""


class TfidfStep(ApiModel):
    """TF-IDF of a free-text column (scikit-learn TfidfVectorizer), one vocabulary per column. The only step of its
    transform."""

    max_features: int = Field(default=1000, ge=1, le=100000)
    """Keep the most frequent terms up to this many."""
    ngram_max: int = Field(default=1, ge=1, le=3)
    """Longest word n-gram: 1 for words, 2 adds pairs of words."""
    min_df: int = Field(default=1, ge=1)
    """Ignore terms found in fewer training rows than this."""
    lowercase: bool = True
    """Lowercase text before tokenizing."""


class TransformStep(ApiModel):
    """One transform: set exactly one member."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[" + ", ".join(f"has(self.{k})" for k in STEP_KINDS) + "].exists_one(x, x)",
                    "message": "a step sets exactly one of " + ", ".join(STEP_KINDS) + "; put two transforms "
                    "in two steps",
                }
            ]
        }
    )

    # No docstrings here: each member shows its class docstring in `kubectl explain`.
    impute: ImputeStep | None = None
    clip: ClipStep | None = None
    log: LogStep | None = None
    power: PowerStep | None = None
    standardize: StandardizeStep | None = None
    bucketize: BucketizeStep | None = None
    cyclic: CyclicStep | None = None
    date_parts: DatePartsStep | None = None
    one_hot: OneHotStep | None = None
    target_encode: TargetEncodeStep | None = None
    hash: HashStep | None = None
    tfidf: TfidfStep | None = None

    def kind(self) -> str:
        """The member that is set (camelCase, as in the spec)."""
        return next(k for k in STEP_KINDS if self.params(k) is not None)

    def params(self, kind: str | None = None) -> Any:
        """The set member's model (or member `kind`'s, which may be None)."""
        name = kind or self.kind()
        return getattr(
            self,
            {"dateParts": "date_parts", "oneHot": "one_hot", "targetEncode": "target_encode"}.get(name, name),
        )

    @model_validator(mode="after")
    def _exactly_one(self) -> TransformStep:
        if sum(self.params(k) is not None for k in STEP_KINDS) != 1:
            raise ValueError(f"a step sets exactly one of {', '.join(STEP_KINDS)}")
        return self


def _count(kind: str) -> str:
    return f"self.steps.filter(s, has(s.{kind})).size()"


class FeatureTransform(ApiModel):
    """Steps applied, in order, to each of `columns`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.columns.all(c, self.columns.exists_one(d, d == c))",
                    "message": "a column is listed twice in one transform's columns; list it once",
                },
                {
                    "rule": " && ".join(f"{_count(k)} <= 1" for k in STEP_KINDS),
                    "message": "a transform uses each kind of step at most once; merge the repeated steps",
                },
                {
                    "rule": f"self.steps.filter(s, {_any(ENCODER_STEPS)}).size() <= 1",
                    "message": "a transform has at most one encoding step ("
                    + ", ".join(ENCODER_STEPS)
                    + "); use one transform per encoding",
                },
                {
                    "rule": f"!self.steps.exists(s, {_any(ENCODER_STEPS)}) || "
                    f"({_any(ENCODER_STEPS, 'self.steps[self.steps.size() - 1]')})",
                    "message": "an encoding step ("
                    + ", ".join(ENCODER_STEPS)
                    + ") must be the last step of its transform; move it to the end",
                },
                {
                    "rule": f"{_count('dateParts')} == 0 || has(self.steps[0].dateParts)",
                    "message": "dateParts must be the first step of its transform: it turns dates into numbers "
                    "for the steps after it",
                },
                {
                    "rule": f"{_count('tfidf')} == 0 || self.steps.size() == 1",
                    "message": "tfidf must be the only step of its transform (missing text is already empty)",
                },
                {
                    "rule": f"!self.steps.exists(s, {_any(_CATEGORY_ENCODERS)}) || "
                    f"!self.steps.exists(s, {_any(NUMERIC_STEPS)})",
                    "message": "oneHot, targetEncode and hash encode categories; they cannot follow numeric steps "
                    "(clip, log, power, standardize, dateParts): use bucketize to encode numbers",
                },
            ]
        }
    )

    columns: list[ColumnName] = Field(min_length=1, max_length=64)
    """Input columns the steps apply to, each on its own (a Dataset column name)."""
    steps: list[TransformStep] = Field(min_length=1, max_length=8)
    """Transforms applied in order; at most one encoding step, last."""

    @model_validator(mode="after")
    def _order(self) -> FeatureTransform:
        kinds = [s.kind() for s in self.steps]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("a column is listed twice in one transform's columns")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"a transform uses each kind of step at most once; got {', '.join(kinds)}")
        encoders = [k for k in kinds if k in ENCODER_STEPS]
        if len(encoders) > 1 or (encoders and kinds[-1] != encoders[0]):
            raise ValueError(
                f"an encoding step ({', '.join(ENCODER_STEPS)}) must be the last step, and only one"
            )
        if "dateParts" in kinds and kinds[0] != "dateParts":
            raise ValueError("dateParts must be the first step of its transform")
        if "tfidf" in kinds and len(kinds) != 1:
            raise ValueError("tfidf must be the only step of its transform")
        if any(k in _CATEGORY_ENCODERS for k in kinds) and any(k in NUMERIC_STEPS for k in kinds):
            raise ValueError("oneHot, targetEncode and hash cannot follow numeric steps")
        return self


class FeaturesSpec(ApiModel):
    """The model's inputs and the transforms that turn them into what the estimator sees."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.transforms) || self.transforms.all(t, t.columns.all(c, "
                    "self.transforms.exists_one(u, c in u.columns)))",
                    "message": "a column is in two transforms; give each column one transform with all its steps",
                },
            ]
        }
    )

    columns: list[ColumnName] | None = Field(
        default=None, max_length=1024, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Columns to train on; defaults to every column except the target. Columns named in transforms are always
    inputs. Columns without a transform get the default preprocessing (spec.preprocessing)."""
    transforms: list[FeatureTransform] | None = Field(default=None, min_length=1, max_length=32)
    """Per-column (or per-group of columns) transforms, compiled into the saved model, so serving applies exactly
    what training fitted."""

    @model_validator(mode="before")
    @classmethod
    def _legacy_list(cls, data: Any) -> Any:
        # Before transforms, spec.features was the list of columns; runs stored in that shape still reconcile.
        return {"columns": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _one_transform_per_column(self) -> FeaturesSpec:
        seen: set[str] = set()
        for transform in self.transforms or []:
            twice = seen.intersection(transform.columns)
            if twice:
                raise ValueError(f"column(s) {', '.join(sorted(twice))} are in two transforms")
            seen.update(transform.columns)
        return self

    def input_columns(self) -> list[str] | None:
        """The model's input columns when given (listed columns, then transformed ones); None: all but target."""
        if self.columns is None:
            return None
        names = list(self.columns)
        for transform in self.transforms or []:
            names.extend(c for c in transform.columns if c not in names)
        return names

    def named_columns(self) -> list[str]:
        """Every column this spec names (to check against the Dataset's schema)."""
        names = list(self.columns or [])
        for transform in self.transforms or []:
            names.extend(c for c in transform.columns if c not in names)
        return names
