"""Bad requests get a 4xx with a JSON reason, never a 500; and hostile input never yields a 5xx (fuzzed)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import serve

from gyre.serving.app import ServerConfig
from gyre.serving.model import ServedModel
from gyre.serving.schema import V2_DATATYPES

ROW = [5.1, 3.5, 1.4, 0.2]
V2_OK = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}

CASES: list[tuple[str, str, str, Any, int, str]] = [
    # (id, method, path, body (bytes or JSON-able), status, word expected in the reason)
    ("malformed json", "POST", "/v1/models/iris:predict", b'{"instances": [[1, 2', 400, "malformed"),
    ("empty body", "POST", "/v1/models/iris:predict", b"", 400, "empty"),
    ("not an object", "POST", "/v1/models/iris:predict", [ROW], 400, "object"),
    ("no instances", "POST", "/v1/models/iris:predict", {"rows": [ROW]}, 422, "instances"),
    ("empty instances", "POST", "/v1/models/iris:predict", {"instances": []}, 422, "non-empty"),
    ("flat row", "POST", "/v1/models/iris:predict", {"instances": ROW}, 422, "array of 4"),
    ("short row", "POST", "/v1/models/iris:predict", {"instances": [[1.0, 2.0]]}, 422, "expects 4"),
    ("string for number", "POST", "/v1/models/iris:predict", {"instances": [[1, 2, "x", 4]]}, 422, "number"),
    ("bool for number", "POST", "/v1/models/iris:predict", {"instances": [[1, 2, True, 4]]}, 422, "boolean"),
    ("nested value", "POST", "/v1/models/iris:predict", {"instances": [[1, 2, [3], 4]]}, 422, "number"),
    (
        "missing feature",
        "POST",
        "/v1/models/iris:predict",
        {"instances": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}]},
        422,
        "petal_width",
    ),
    ("mixed rows", "POST", "/v1/models/iris:predict", {"instances": [ROW, {"a": 1}]}, 422, "instance 1"),
    ("unknown model v1", "POST", "/v1/models/nope:predict", {"instances": [ROW]}, 404, "nope"),
    ("unknown model ready", "GET", "/v1/models/nope", None, 404, "nope"),
    ("unknown model v2", "POST", "/v2/models/nope/infer", {"inputs": [V2_OK]}, 404, "nope"),
    ("unknown path", "GET", "/v3/whatever", None, 404, "endpoint"),
    ("wrong method", "GET", "/v1/models/iris:predict", None, 405, "GET"),
    ("wrong method v2", "PUT", "/v2/models/iris/infer", None, 405, "PUT"),
    ("v2 no inputs", "POST", "/v2/models/iris/infer", {"id": "a"}, 422, "inputs"),
    ("v2 bad id", "POST", "/v2/models/iris/infer", {"id": 3, "inputs": [V2_OK]}, 422, "id"),
    (
        "v2 wrong shape",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "shape": [2, 2]}]},
        422,
        "shape",
    ),
    (
        "v2 shape/data",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "shape": [2, 4]}]},
        422,
        "holds 8",
    ),
    (
        "v2 datatype",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "datatype": "FP128"}]},
        422,
        "datatype",
    ),
    (
        "v2 bytes",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "datatype": "BYTES"}]},
        422,
        "numeric",
    ),
    (
        "v2 int data",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "datatype": "INT64"}]},
        422,
        "integers",
    ),
    (
        "v2 missing tensors",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "name": "sepal_length", "shape": [1]}, {**V2_OK, "name": "x"}]},
        422,
        "missing",
    ),
    (
        "v2 unknown output",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [V2_OK], "outputs": [{"name": "logits"}]},
        422,
        "logits",
    ),
    (
        "v2 negative shape",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "shape": [-1, 4]}]},
        422,
        "shape",
    ),
    (
        "v2 zero rows",
        "POST",
        "/v2/models/iris/infer",
        {"inputs": [{**V2_OK, "shape": [0, 4], "data": []}]},
        422,
        "rows",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_requests_get_4xx_with_reason(
    served: Callable[[str, str], ServedModel], method: str, path: str, body: Any, status: int, word: str
) -> None:
    async with serve(served("iris", "auto")) as (client, _server):
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        response = await client.request(method, path, data=data, headers={"Content-Type": "application/json"})
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        reason = (await response.json())["error"]
    assert word.lower() in reason.lower(), reason


async def test_body_over_the_limit_is_413(served: Callable[[str, str], ServedModel]) -> None:
    body = orjson.dumps({"instances": [ROW] * 400})
    async with serve(served("iris", "auto"), ServerConfig(max_body_bytes=4096)) as (client, _server):
        with_length = await client.post("/v1/models/iris:predict", data=body)
        assert with_length.status == 413
        assert "limit" in (await with_length.json())["error"]

        async def chunks() -> Any:  # no Content-Length: the limit still holds while reading
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        chunked = await client.post("/v1/models/iris:predict", data=chunks())
        assert chunked.status == 413
        assert "error" in await chunked.json()
        small = await client.post("/v1/models/iris:predict", data=orjson.dumps({"instances": [ROW]}))
        assert small.status == 200


async def test_categorical_type_errors(served: Callable[[str, str], ServedModel]) -> None:
    async with serve(served("mixed", "auto")) as (client, _server):
        number_for_string = await client.post(
            "/v1/models/mixed:predict", json={"instances": [{"size": 1.0, "colour": 3, "weight": 2.0}]}
        )
        assert number_for_string.status == 422
        assert "colour" in (await number_for_string.json())["error"]
        one_tensor = await client.post(
            "/v2/models/mixed/infer",
            json={"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]},
        )
        assert one_tensor.status == 422
        assert "categorical" in (await one_tensor.json())["error"]
        bad_bytes = await client.post(
            "/v2/models/mixed/infer",
            json={
                "inputs": [
                    {"name": "size", "shape": [1], "datatype": "FP64", "data": [1.0]},
                    {"name": "colour", "shape": [1], "datatype": "BYTES", "data": [7]},
                    {"name": "weight", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
        )
        assert bad_bytes.status == 422
        ragged = await client.post(
            "/v2/models/mixed/infer",
            json={
                "inputs": [
                    {"name": "size", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                    {"name": "colour", "shape": [1], "datatype": "BYTES", "data": ["red"]},
                    {"name": "weight", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
        )
        assert ragged.status == 422
        assert "rows" in (await ragged.json())["error"]


async def test_model_failure_on_valid_json_is_422_and_spares_batch_mates(
    served: Callable[[str, str], ServedModel],
) -> None:
    """NaN reaches a model with no imputer: the model raises, the client gets a 422 naming the problem."""
    import asyncio

    model = served("regression", "sklearn")
    original = model.predictor

    class Picky:
        path = original.path
        inline = original.inline
        has_proba = False

        def predict(self, rows: Any, want_proba: bool) -> Any:
            if (rows != rows).any():
                raise ValueError("Input X contains NaN")
            return original.predict(rows, want_proba)

    from dataclasses import replace

    picky = replace(model, predictor=Picky())
    async with serve(picky) as (client, _server):
        bad, good = await asyncio.gather(
            client.post("/v1/models/reg:predict", json={"instances": [[None, 1.0, 2.0]]}),
            client.post("/v1/models/reg:predict", json={"instances": [[0.5, 1.0, 2.0]]}),
        )
        assert bad.status == 422
        assert "NaN" in (await bad.json())["error"]
        assert good.status == 200


# -- fuzzing ------------------------------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
_features = st.sampled_from(["sepal_length", "sepal_width", "petal_length", "petal_width", "input-0", "x"])
_tensor = st.fixed_dictionaries(
    {
        "name": _features,
        "shape": st.lists(st.integers(min_value=-2, max_value=6), max_size=3),
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "UINT8", "nope"]),
        "data": st.lists(_scalars, max_size=12) | st.lists(st.lists(_scalars, max_size=5), max_size=4),
    }
)
_bodies = st.one_of(
    _json,
    st.fixed_dictionaries({"instances": _json}),
    st.fixed_dictionaries({"instances": st.lists(st.lists(_scalars, min_size=4, max_size=4), max_size=4)}),
    st.fixed_dictionaries(
        {"inputs": st.lists(_tensor, max_size=5)},
        optional={"outputs": _json, "id": _json, "parameters": _json},
    ),
)
_paths = st.sampled_from(
    [
        "/v1/models/iris:predict",
        "/v2/models/iris/infer",
        "/v1/models/mixed:predict",
        "/v2/models/iris",
        "/v2/models/iris/versions/abc/infer",
        "/v1/models/iris%3Apredict",
        "/metrics",
        "/v2/health/ready",
    ]
) | st.text(alphabet="abcv12/:%.-_", max_size=30).map(lambda s: "/" + s.lstrip("/"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_fuzzed_requests_never_5xx(
    served: Callable[[str, str], ServedModel], data: st.DataObject
) -> None:
    async with serve(served("iris", "auto"), ServerConfig(max_body_bytes=8192)) as (client, _server):
        for _ in range(8):
            path = data.draw(_paths)
            method = data.draw(st.sampled_from(["POST", "POST", "GET", "PUT"]))
            raw = data.draw(st.one_of(_bodies.map(orjson.dumps), st.binary(max_size=64)))
            response = await client.request(method, path, data=raw)
            assert response.status < 500, (path, raw, await response.text())
            if response.status >= 400:
                assert "error" in orjson.loads(await response.read())


_DATATYPES = st.sampled_from([*sorted(V2_DATATYPES), "BF16", "fp64", ""]) | _json
_binary_tensor = st.fixed_dictionaries(
    {
        "name": _features,
        "shape": st.lists(st.integers(min_value=0, max_value=5), max_size=3) | _json,
        "datatype": _DATATYPES,
    },
    optional={
        "parameters": st.fixed_dictionaries(
            {"binary_data_size": st.integers(min_value=-2, max_value=80) | _scalars}
        )
        | _json,
        "data": st.lists(_scalars, max_size=8),
    },
)
_headers = st.fixed_dictionaries(
    {},
    optional={
        "Inference-Header-Content-Length": st.integers(min_value=-3, max_value=300).map(str)
        | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=4),
        "Content-Encoding": st.sampled_from(["gzip", "deflate", "identity", "br", "x-junk", ""]),
        "Content-Type": st.sampled_from(["application/json", "application/octet-stream", "text/plain"]),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_fuzzed_binary_and_header_requests_never_5xx(
    served: Callable[[str, str], ServedModel], data: st.DataObject
) -> None:
    """The binary extension, compressed bodies and tensors whose datatype or shape is any JSON value."""
    name = data.draw(st.sampled_from(["iris", "mixed"]))
    async with serve(served(name, "auto"), ServerConfig(max_body_bytes=8192)) as (client, _server):
        for _ in range(6):
            head = orjson.dumps(
                data.draw(
                    st.fixed_dictionaries(
                        {"inputs": st.lists(_binary_tensor, max_size=4)},
                        optional={"outputs": _json, "parameters": _json},
                    )
                )
            )
            tail = data.draw(st.binary(max_size=96))
            headers = data.draw(_headers)
            if data.draw(st.booleans()):  # the honest header length, so the tail is parsed as tensors
                headers["Inference-Header-Content-Length"] = str(len(head))
            body = head + tail
            encoding = headers.get("Content-Encoding")
            if encoding in ("gzip", "deflate") and data.draw(st.booleans()):
                body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
            response = await client.post(f"/v2/models/{name}/infer", data=body, headers=headers)
            assert response.status < 500, (headers, body, await response.text())
            if response.status >= 400:
                assert "error" in orjson.loads(await response.read())
