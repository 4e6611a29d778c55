"""The fast paths of the JSON protocols (plain numbers in range, the batch of prediction ids) give exactly what
the general path gives: the same matrix for every request they take, the same 4xx and reason for every one they
leave to it."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gyre.serving import schema as schema_module
from gyre.serving.predlog import new_prediction_id
from gyre.serving.schema import FLOAT32_MAX, FeatureSchema, RequestError
from gyre.training.manifest import FeatureSpec

SCHEMA = FeatureSchema.from_specs([FeatureSpec(name=f"f{i}", kind="numeric") for i in range(4)])
ROW = [5.1, 3.5, 1.4, 0.2]
BIG = FLOAT32_MAX * 2


def _outcome(parse: Callable[[Any], np.ndarray], payload: Any) -> tuple[str, Any]:
    try:
        matrix = parse(orjson.loads(orjson.dumps(payload)))  # as the server sees it: parsed JSON
    except RequestError as exc:
        return "refused", (exc.status, exc.reason)
    return "matrix", (matrix.dtype, matrix.shape, matrix.tobytes())  # bytes: NaN equals NaN, -0.0 is not 0.0


def _both_paths(
    monkeypatch: pytest.MonkeyPatch, parse: Callable[[Any], np.ndarray], payload: Any
) -> tuple[tuple[str, Any], tuple[str, Any]]:
    fast = _outcome(parse, payload)
    with monkeypatch.context() as patched:
        patched.setattr(schema_module, "_plain_rows", lambda *_: None)
        patched.setattr(schema_module, "_plain_flat", lambda *_: None)
        general = _outcome(parse, payload)
    return fast, general


V1_CASES: dict[str, Any] = {
    "one row": [ROW],
    "ints and floats": [[1, 2.5, -3, 0]],
    "64 rows": [ROW, [0, 1, 2, 3]] * 32,
    "float32 limits": [[FLOAT32_MAX, -FLOAT32_MAX, 0.0, 1e-45]],
    "large ints": [[2**63 - 1, -(2**63), 0, 1]],
    "missing values": [[1.0, None, 3.0, None]],
    "out of range": [[1.0, BIG, 1.0, 1.0]],
    "out of range, negative": [[1.0, 1.0, -1e300, 1.0]],
    "out of range in a large batch": [ROW] * 20 + [[1.0, 1.0, 1.0, -BIG]],
    "out of range before a type error": [[BIG, 1, 1, 1], [1, "x", 1, 1]],
    "string": [[1, 2, "x", 4]],
    "boolean": [[1, 2, True, 4]],
    "nested value": [[1, 2, [3], 4]],
    "short row": [[1.0, 2.0]],
    "long row in a batch": [ROW, [*ROW, 1.0]],
    "objects": [{"f0": 1, "f1": 2, "f2": 3, "f3": 4}],
    "object missing a feature": [{"f0": 1, "f1": 2, "f2": 3}],
    "arrays and objects mixed": [ROW, {"f0": 1}],
    "flat row": ROW,
    "empty": [],
    "not a list": {"f0": 1},
}


@pytest.mark.parametrize("payload", list(V1_CASES.values()), ids=list(V1_CASES))
def test_v1_instances_parse_alike_on_the_fast_and_the_general_path(
    monkeypatch: pytest.MonkeyPatch, payload: Any
) -> None:
    fast, general = _both_paths(monkeypatch, SCHEMA.parse_instances, payload)
    assert fast == general


def _tensor(**changes: Any) -> list[dict[str, Any]]:
    return [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW, **changes}]


V2_CASES: dict[str, Any] = {
    "one row": _tensor(),
    "FP32": _tensor(datatype="FP32"),
    "FP16": _tensor(datatype="FP16"),
    "INT64 of ints": _tensor(datatype="INT64", data=[1, 2, 3, 4]),
    "INT64 of floats": _tensor(datatype="INT64"),
    "64 rows, flat": _tensor(shape=[64, 4], data=ROW * 64),
    "64 rows, nested": _tensor(shape=[64, 4], data=[ROW] * 64),
    "nested one row": _tensor(data=[ROW]),
    "nested deeper": _tensor(data=[[ROW]]),
    "ragged nesting": _tensor(shape=[2, 4], data=[[1, 2], [3, 4], [5, 6], [7, 8]]),
    "float32 limits": _tensor(data=[FLOAT32_MAX, -FLOAT32_MAX, 0.0, 1e-45]),
    "out of range": _tensor(data=[1.0, 2.0, -1e300, 4.0]),
    "out of range in a large batch": _tensor(shape=[10, 4], data=ROW * 9 + [1.0, BIG, 1.0, 1.0]),
    "missing value": _tensor(data=[1.0, None, 3.0, 4.0]),
    "boolean": _tensor(data=[1.0, True, 3.0, 4.0]),
    "string": _tensor(data=[1.0, "2", 3.0, 4.0]),
    "wrong width": _tensor(shape=[2, 2]),
    "shape and data disagree": _tensor(shape=[2, 4]),
    "float in the shape": _tensor(shape=[1, 4.0]),
    "boolean in the shape": _tensor(shape=[True, 4]),
    "negative shape": _tensor(shape=[-1, 4]),
    "zero rows": _tensor(shape=[0, 4], data=[]),
    "three dimensions": _tensor(shape=[1, 4, 1]),
    "shape not a list": _tensor(shape="1,4"),
    "unknown datatype": _tensor(datatype="FP128"),
    "datatype not a string": _tensor(datatype=["FP64"]),
    "BYTES": _tensor(datatype="BYTES"),
    "data not a list": _tensor(data="5.1,3.5,1.4,0.2"),
    "no data": _tensor(data=None),
}


@pytest.mark.parametrize("payload", list(V2_CASES.values()), ids=list(V2_CASES))
def test_v2_inputs_parse_alike_on_the_fast_and_the_general_path(
    monkeypatch: pytest.MonkeyPatch, payload: Any
) -> None:
    fast, general = _both_paths(monkeypatch, SCHEMA.parse_v2_inputs, payload)
    assert fast == general


_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([FLOAT32_MAX, -FLOAT32_MAX, BIG, -BIG, 0, -0.0]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.none(),
    st.booleans(),
    st.text(max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(_VALUES, min_size=3, max_size=5), min_size=1, max_size=12))
def test_any_rows_get_the_same_answer_from_both_paths(rows: list[list[Any]]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, general = _both_paths(monkeypatch, SCHEMA.parse_instances, rows)
        assert fast == general
        flat = [value for row in rows for value in row]
        tensor = [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": flat}]
        fast, general = _both_paths(monkeypatch, SCHEMA.parse_v2_inputs, tensor)
        assert fast == general


def test_ids_drawn_in_batches_stay_unique_uuid4s_across_many_batches() -> None:
    ids = [new_prediction_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def _child_id(connection: Any) -> None:
    connection.send(new_prediction_id())


def test_a_forked_process_does_not_reuse_its_parents_unused_ids() -> None:
    new_prediction_id()  # the parent now holds a batch of ids it has not handed out
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(target=_child_id, args=(child,))
    process.start()
    from_child = parent.recv()
    process.join(10)
    assert process.exitcode == 0
    assert from_child != new_prediction_id()


@pytest.mark.parametrize(
    "tensor",
    [_tensor(), _tensor(shape=[64, 4], data=ROW * 64), _tensor(shape=[64, 4], data=[ROW] * 64)],
    ids=["one row", "64 rows, flat", "64 rows, nested"],
)
def test_plain_float_tensors_take_the_fast_path(tensor: list[dict[str, Any]]) -> None:
    assert SCHEMA._plain_tensor(tensor[0]) is not None


@pytest.mark.parametrize("rows", [[ROW], [ROW] * 64], ids=["one row", "64 rows"])
def test_plain_instances_take_the_fast_path(rows: list[list[float]]) -> None:
    assert schema_module._plain_rows(rows, 4) is not None
