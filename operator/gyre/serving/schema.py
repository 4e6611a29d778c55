"""Turn KServe v1 and Open Inference Protocol v2 request bodies into one feature matrix, checked against the
model's feature schema.

A parsed batch is a 2-D numpy array in feature order: float64 when every feature is numeric (the common case,
kept on a fast path), otherwise dtype=object holding floats and strings. Anything that does not fit the schema
raises `RequestError` with the HTTP status the client should get (400 malformed, 422 well-formed but wrong).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from gyre.training.features import MISSING_CATEGORY
from gyre.training.manifest import FeatureSpec

__all__ = [
    "FLOAT32_MAX",
    "NUMERIC_DATATYPES",
    "V2_DATATYPES",
    "FeatureSchema",
    "RequestError",
    "binary_data_size",
    "load_json_body",
    "tensor_shape_and_datatype",
    "v2_datatype",
]

NUMERIC_DATATYPES = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
)
V2_DATATYPES = NUMERIC_DATATYPES | {"BOOL", "BYTES"}
_INT_DATATYPES = frozenset(d for d in NUMERIC_DATATYPES if "INT" in d)

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest magnitude a feature value may have. Tree models compare in float32 on both inference paths, so a
larger number would be cast to infinity by onnxruntime and refused by scikit-learn: refuse it up front, alike."""


class RequestError(Exception):
    """A request the server refuses; `status` is the HTTP status (4xx) and the message the reason. `close` asks
    to close the connection after the answer (the rest of the body may be unread or unreadable)."""

    def __init__(self, status: int, reason: str, *, close: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.close = close


def load_json_body(raw: bytes | memoryview, expected: str) -> Any:
    """A request body as JSON; empty or malformed is a 400 (`expected` says what to send instead of nothing)."""
    if not raw:
        raise RequestError(400, f"empty request body; send {expected}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None


def v2_datatype(array: np.ndarray) -> str:
    """The Open Inference Protocol datatype of a numpy array."""
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{array.dtype.itemsize * 8}"
    if kind == "f":
        return f"FP{array.dtype.itemsize * 8}"
    return "BYTES"


def _is_number(value: object) -> bool:
    cls = type(value)
    return cls is float or cls is int


def _out_of_range(value: object) -> RequestError:
    return RequestError(
        422,
        f"value {value!r} is outside the range of finite float32 numbers (magnitude at most {FLOAT32_MAX:.4g})",
    )


def _check_range(matrix: np.ndarray, values: list[Any] | None = None) -> None:
    """Refuse (422) any value of `matrix` beyond float32's range; `values`, when given, are its elements as sent."""
    if matrix.size <= 32:
        # Small requests (the common case) are cheaper to check in Python than with three numpy calls. A NaN or
        # None can only make min or max return NaN or raise, which falls through to the exact check below.
        if values is None:
            values = matrix.ravel().tolist()
        try:
            if min(values, default=0.0) >= -FLOAT32_MAX and max(values, default=0.0) <= FLOAT32_MAX:
                return
        except TypeError:
            pass
    # NaN (a missing value) compares false and passes; infinities and huge numbers do not.
    too_big = np.abs(matrix) > FLOAT32_MAX
    if too_big.any():
        raise _out_of_range(float(matrix[too_big].flat[0]))


_SMALL = 32
"""Requests of at most this many values are range-checked in Python, larger ones with numpy."""
_FLOAT_DATATYPES = ("FP64", "FP32", "FP16")  # a tuple: `in` must not fail on an unhashable datatype


def _plain_rows(rows: list[Any], width: int) -> np.ndarray | None:
    """The fast path of both protocols: `rows` (lists of `width` values) as a float64 matrix when every value is a
    float or int within float32's range; else None, and the general path parses them or says what is wrong.

    JSON numbers are finite (orjson refuses the rest), so a float beyond float32's range is the only value of
    the right types a request can be refused for here.
    """
    small = len(rows) * width <= _SMALL
    for row in rows:
        if type(row) is not list or len(row) != width:
            return None
        if small:
            for value in row:
                cls = type(value)
                if (cls is not float and cls is not int) or value > FLOAT32_MAX or value < -FLOAT32_MAX:
                    return None
        else:
            for value in row:
                cls = type(value)
                if cls is not float and cls is not int:
                    return None
    matrix = np.array(rows, dtype=np.float64)
    if not small and (matrix.max() > FLOAT32_MAX or matrix.min() < -FLOAT32_MAX):
        return None
    return matrix


def _plain_flat(values: list[Any], rows: int, width: int) -> np.ndarray | None:
    """`_plain_rows` for the `rows` x `width` values of a flat list. Its own loop on purpose: `_plain_rows([values],
    ...)` adds about 0.4 us to a one-row v2 request, a fifth of its parse."""
    small = len(values) <= _SMALL
    if small:
        for value in values:
            cls = type(value)
            if (cls is not float and cls is not int) or value > FLOAT32_MAX or value < -FLOAT32_MAX:
                return None
    else:
        for value in values:
            cls = type(value)
            if cls is not float and cls is not int:
                return None
    matrix = np.array(values, dtype=np.float64)
    if not small and (matrix.max() > FLOAT32_MAX or matrix.min() < -FLOAT32_MAX):
        return None
    matrix.shape = (rows, width)
    return matrix


def binary_data_size(tensor: object) -> object:
    """A v2 tensor's `parameters.binary_data_size` as sent (any JSON value), or None when it has none."""
    if type(tensor) is not dict:
        return None
    parameters = tensor.get("parameters")
    if type(parameters) is not dict:
        return None
    return parameters.get("binary_data_size")


def tensor_shape_and_datatype(name: str, tensor: dict[str, Any]) -> tuple[list[int], str]:
    """A v2 tensor's shape (non-negative integers) and datatype (one Gyre accepts), or a RequestError (422)."""
    shape, datatype = tensor.get("shape"), tensor.get("datatype")
    if type(shape) is not list:
        raise RequestError(422, f"input {name!r}: shape must be an array of non-negative integers")
    for d in shape:
        if type(d) is not int or d < 0:
            raise RequestError(422, f"input {name!r}: shape must be an array of non-negative integers")
    if type(datatype) is not str or datatype not in V2_DATATYPES:
        raise RequestError(
            422, f"input {name!r}: unknown datatype {datatype!r}; one of {sorted(V2_DATATYPES)}"
        )
    return shape, datatype


def _describe(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


@dataclass(frozen=True)
class FeatureSchema:
    """The model's input features, in the order the model expects them."""

    features: tuple[FeatureSpec, ...]
    names: tuple[str, ...] = field(init=False)
    numeric: tuple[bool, ...] = field(init=False)
    all_numeric: bool = field(init=False)
    # Scalar JSON types a non-numeric feature accepts besides strings (from the category values seen in training).
    _extra_types: tuple[frozenset[type], ...] = field(init=False)
    _positions: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in self.features))
        object.__setattr__(self, "_positions", {name: i for i, name in enumerate(self.names)})
        # The manifest's dtype is how the trainer fed the column (gyre.training.features.coerce_features).
        numeric = tuple(f.dtype == "number" for f in self.features)
        object.__setattr__(self, "numeric", numeric)
        object.__setattr__(self, "all_numeric", all(numeric))
        extra: list[frozenset[type]] = []
        for spec in self.features:
            extra.append(frozenset(type(c) for c in (spec.categories or ()) if not isinstance(c, str)))
        object.__setattr__(self, "_extra_types", tuple(extra))

    @classmethod
    def from_specs(cls, specs: Sequence[FeatureSpec]) -> FeatureSchema:
        """Build from the manifest's feature list."""
        if not specs:
            raise ValueError("the model declares no features")
        return cls(tuple(specs))

    @property
    def width(self) -> int:
        """Number of features."""
        return len(self.features)

    # -- values ---------------------------------------------------------------------------------------------

    def _check_value(self, index: int, value: object, row: int) -> object:
        if self.numeric[index]:
            if _is_number(value):
                if abs(value) > FLOAT32_MAX:  # type: ignore[arg-type]
                    raise _out_of_range(value)
                return value
            if value is None:
                return math.nan
            raise RequestError(
                422, f"feature {self.names[index]!r} (row {row}) must be a number, got {_describe(value)}"
            )
        if type(value) is str:
            return value
        if value is None:
            return MISSING_CATEGORY
        if type(value) in self._extra_types[index]:
            # Same text the trainer made of it (str(True) == "True", str(3) == "3").
            return str(value)
        raise RequestError(
            422,
            f"feature {self.names[index]!r} (row {row}) must be a string category, got {_describe(value)}",
        )

    def _numeric_rows(self, rows: list[Any]) -> np.ndarray:
        width = self.width
        for r, row in enumerate(rows):
            if type(row) is not list:
                raise RequestError(422, f"instance {r} must be an array of {width} features or an object")
            if len(row) != width:
                raise RequestError(422, f"instance {r} has {len(row)} values, the model expects {width}")
            for value in row:
                cls = type(value)  # _is_number inlined: this loop runs for every value of every request
                if cls is not float and cls is not int and value is not None:
                    for i, v in enumerate(row):
                        self._check_value(i, v, r)
        # None becomes NaN, the missing-value marker imputers understand.
        matrix = np.array(rows, dtype=np.float64)
        _check_range(matrix, rows[0] if len(rows) == 1 else None)
        return matrix

    def _mixed_rows(self, rows: list[Any]) -> np.ndarray:
        width = self.width
        out = np.empty((len(rows), width), dtype=object)
        for r, row in enumerate(rows):
            if type(row) is not list:
                raise RequestError(422, f"instance {r} must be an array of {width} features or an object")
            if len(row) != width:
                raise RequestError(422, f"instance {r} has {len(row)} values, the model expects {width}")
            for i, value in enumerate(row):
                out[r, i] = self._check_value(i, value, r)
        return out

    # -- KServe v1 ------------------------------------------------------------------------------------------

    def parse_instances(self, instances: object) -> np.ndarray:
        """Rows of a v1 `instances` list: each an array in feature order or an object keyed by feature name.

        Unknown keys in objects are ignored; a missing feature, a wrong type or a wrong length is a 422.
        """
        if type(instances) is not list or not instances:
            raise RequestError(422, '"instances" must be a non-empty array of rows')
        if self.all_numeric:
            matrix = _plain_rows(instances, self.width)
            if matrix is not None:
                return matrix
        first = instances[0]
        if type(first) is dict:
            rows: list[Any] = []
            names = self.names
            for r, obj in enumerate(instances):
                if type(obj) is not dict:
                    raise RequestError(422, f"instance {r} is not an object; do not mix arrays and objects")
                try:
                    rows.append([obj[name] for name in names])
                except KeyError as exc:
                    raise RequestError(422, f"instance {r} is missing feature {exc.args[0]!r}") from None
            instances = rows
        elif type(first) is not list:
            # A single flat row is a common client mistake; say what was expected.
            raise RequestError(
                422,
                f"each instance must be an array of {self.width} features or an object keyed by feature name",
            )
        assert isinstance(instances, list)
        return self._numeric_rows(instances) if self.all_numeric else self._mixed_rows(instances)

    # -- Open Inference Protocol v2 ---------------------------------------------------------------------------

    def parse_v2_inputs(self, inputs: object) -> np.ndarray:
        """Rows of a v2 `inputs` list: one [N, F] tensor (all-numeric models) or one [N] tensor per feature."""
        if type(inputs) is not list or not inputs:
            raise RequestError(422, '"inputs" must be a non-empty array of tensors')
        if len(inputs) == 1 and self.all_numeric and self.width > 1:
            # The common batch request: one [N, F] tensor that is not named after a feature.
            tensor = inputs[0]
            if (
                type(tensor) is dict
                and type(tensor.get("name")) is str
                and tensor["name"] not in self._positions
            ):
                matrix = self._plain_tensor(tensor)
                return matrix if matrix is not None else self._single_tensor(tensor)
        tensors: dict[str, dict[str, Any]] = {}
        for i, tensor in enumerate(inputs):
            if type(tensor) is not dict:
                raise RequestError(422, f"input {i} must be an object with name, shape, datatype and data")
            name = tensor.get("name")
            if type(name) is not str:
                raise RequestError(422, f"input {i} needs a string name")
            if name in tensors:
                raise RequestError(422, f"input {name!r} appears twice")
            tensors[name] = tensor
        if all(n in tensors for n in self.names) and (len(tensors) > 1 or self.width == 1):
            return self._named_tensors(tensors)
        if len(tensors) == 1:
            return self._single_tensor(next(iter(tensors.values())))
        missing = [n for n in self.names if n not in tensors]
        raise RequestError(422, f"missing input tensors for features {missing}")

    def _tensor_parts(self, tensor: dict[str, Any]) -> tuple[str, list[int], str, list[Any] | np.ndarray]:
        """Name, shape, datatype and flat data: a list from JSON, or an array decoded from binary data."""
        name = tensor["name"]
        shape, datatype = tensor_shape_and_datatype(name, tensor)
        data = tensor.get("data")
        if type(data) is not list:
            if isinstance(data, np.ndarray):  # decoded binary data: its size was checked against the shape
                return name, shape, datatype, data
            if data is None and binary_data_size(tensor) is not None:
                raise RequestError(
                    400,
                    f"input {name!r} has binary_data_size but the request has no Inference-Header-Content-Length "
                    "header saying where its JSON ends",
                )
            raise RequestError(422, f"input {name!r}: data must be an array")
        if data and type(data[0]) is list:
            data = _flatten(data, name)
        size = math.prod(shape)
        if size != len(data):
            raise RequestError(
                422, f"input {name!r}: shape {shape} holds {size} values, data has {len(data)}"
            )
        return name, shape, datatype, data

    def _plain_tensor(self, tensor: dict[str, Any]) -> np.ndarray | None:
        """The matrix of an [N, F] float tensor of JSON numbers in range (the common request) in one pass, or None
        for `_single_tensor` to parse it, or refuse it with its reason."""
        shape, data = tensor.get("shape"), tensor.get("data")
        if (
            type(shape) is not list
            or len(shape) != 2
            or type(shape[0]) is not int
            or type(shape[1]) is not int
            or shape[1] != self.width
            or shape[0] <= 0
            or type(data) is not list
            or tensor.get("datatype") not in _FLOAT_DATATYPES
        ):
            return None
        rows, width = shape[0], self.width
        if len(data) == rows * width and type(data[0]) is not list:
            return _plain_flat(data, rows, width)
        return _plain_rows(data, width) if len(data) == rows else None

    def _single_tensor(self, tensor: dict[str, Any]) -> np.ndarray:
        name, shape, datatype, data = self._tensor_parts(tensor)
        if not self.all_numeric:
            raise RequestError(
                422, f"the model has categorical features: send one tensor per feature {list(self.names)}"
            )
        if len(shape) != 2 or shape[1] != self.width:
            raise RequestError(422, f"input {name!r}: shape must be [N, {self.width}], got {shape}")
        if shape[0] == 0:
            raise RequestError(422, f"input {name!r}: no rows")
        if datatype not in NUMERIC_DATATYPES:
            raise RequestError(422, f"input {name!r}: datatype must be numeric, got {datatype}")
        if type(data) is list:
            _check_numbers(data, datatype, name)
        matrix = np.asarray(data, dtype=np.float64).reshape(shape[0], shape[1])
        _check_range(matrix, data if type(data) is list else None)
        return matrix

    def _named_tensors(self, tensors: dict[str, dict[str, Any]]) -> np.ndarray:
        columns: list[list[Any] | np.ndarray] = []
        rows = -1
        for index, feature in enumerate(self.names):
            name, shape, datatype, data = self._tensor_parts(tensors[feature])
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise RequestError(422, f"input {name!r}: shape must be [N] or [N, 1], got {shape}")
            if rows == -1:
                rows = shape[0]
            elif shape[0] != rows:
                raise RequestError(422, f"input {name!r} has {shape[0]} rows, other inputs have {rows}")
            if self.numeric[index]:
                if datatype not in NUMERIC_DATATYPES:
                    raise RequestError(
                        422, f"input {name!r}: numeric feature needs a numeric datatype, got {datatype}"
                    )
                if isinstance(data, np.ndarray):
                    data = data.astype(np.float64)
                else:
                    _check_numbers(data, datatype, name)
            elif isinstance(data, np.ndarray):
                # Binary BOOL or numbers for a categorical feature (binary BYTES come as a list of str).
                data = [self._check_value(index, value, r) for r, value in enumerate(data.tolist())]
            elif datatype == "BYTES":
                for r, value in enumerate(data):
                    if type(value) is not str:
                        if value is not None:
                            raise RequestError(
                                422, f"input {name!r}: BYTES data must be strings, got {_describe(value)}"
                            )
                        data[r] = MISSING_CATEGORY
            else:
                data = [self._check_value(index, value, r) for r, value in enumerate(data)]
            columns.append(data)
        if rows == 0:
            raise RequestError(422, "inputs hold no rows")
        if self.all_numeric:
            matrix = np.array(columns, dtype=np.float64).T.copy()
            _check_range(matrix)
            return matrix
        out = np.empty((rows, self.width), dtype=object)
        for index, column in enumerate(columns):
            if self.numeric[index]:
                _check_range(np.asarray(column, dtype=np.float64))
            out[:, index] = column
        return out


def _flatten(data: list[Any], name: str, depth: int = 0) -> list[Any]:
    # Depth-bounded: a hostile body must not exhaust the recursion limit.
    if depth > 8:
        raise RequestError(422, f"input {name!r}: data nested too deeply")
    flat: list[Any] = []
    for value in data:
        if type(value) is list:
            flat.extend(_flatten(value, name, depth + 1))
        else:
            flat.append(value)
    return flat


def _check_numbers(data: list[Any], datatype: str, name: str) -> None:
    if datatype in _INT_DATATYPES:
        for value in data:
            if type(value) is not int:
                raise RequestError(
                    422, f"input {name!r}: {datatype} data must be integers, got {_describe(value)}"
                )
        return
    for value in data:
        cls = type(value)  # _is_number inlined, as in FeatureSchema._numeric_rows
        if cls is not float and cls is not int:
            raise RequestError(
                422, f"input {name!r}: {datatype} data must be numbers, got {_describe(value)}"
            )
