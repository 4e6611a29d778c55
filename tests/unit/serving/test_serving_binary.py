"""The binary tensor data extension, compressed bodies and the KServe routes: what tritonclient and the KServe SDK
send by default is understood, and what cannot be understood gets a 4xx that says why."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from serving_helpers import Trained, serve

from gyre.serving.model import ServedModel

HEADER = "Inference-Header-Content-Length"


def _binary_body(
    inputs: list[tuple[str, str, list[int], bytes]], **extra: Any
) -> tuple[bytes, dict[str, str]]:
    """A request as tritonclient lays it out: the JSON header, then each input's bytes in order."""
    header = {
        **extra,
        "inputs": [
            {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": len(raw)}}
            for name, datatype, shape, raw in inputs
        ],
    }
    head = orjson.dumps(header)
    return head + b"".join(raw for *_, raw in inputs), {HEADER: str(len(head))}


def _bytes_tensor(values: list[str]) -> bytes:
    return b"".join(len(v.encode()).to_bytes(4, "little") + v.encode() for v in values)


def _split(body: bytes, header_length: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The JSON header of a binary response and each binary output's bytes by name."""
    head = orjson.loads(body[:header_length])
    blobs: dict[str, bytes] = {}
    offset = header_length
    for output in head["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            blobs[output["name"]] = body[offset : offset + size]
            offset += size
    assert offset == len(body)
    return head, blobs


NUMERIC = ["FP64", "FP32", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
_NUMPY = {
    "FP64": "<f8",
    "FP32": "<f4",
    "FP16": "<f2",
    "INT8": "i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}


@pytest.mark.parametrize("inference", ["auto", "sklearn"])
@pytest.mark.parametrize("datatype", NUMERIC)
async def test_binary_batch_tensor_in_every_numeric_datatype_predicts_as_json_does(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel], datatype: str, inference: str
) -> None:
    model = served("iris", inference)
    # Whole numbers survive every datatype unchanged, so JSON and binary must give the same labels.
    rows = np.rint(trained["iris"].rows.to_numpy(dtype=np.float64) * 2)
    typed = rows.astype(_NUMPY[datatype])
    body, headers = _binary_body([("input-0", datatype, list(rows.shape), typed.tobytes())])
    async with serve(model) as (client, _server):
        binary = await client.post("/v2/models/iris/infer", data=body, headers=headers)
        as_json = await client.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
        assert binary.status == 200, await binary.text()
        assert HEADER not in binary.headers  # outputs were not asked for in binary
        labels = (await binary.json())["outputs"][0]["data"]
        assert labels == (await as_json.json())["predictions"]


async def test_named_binary_and_json_tensors_mix_bytes_and_bool_included(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    model = served("mixed", "auto")
    rows = trained["mixed"].rows.head(20)
    expected = trained["mixed"].result.pipeline.predict(rows).tolist()
    body, headers = _binary_body(
        [
            ("size", "FP64", [len(rows)], rows["size"].to_numpy("<f8").tobytes()),
            ("colour", "BYTES", [len(rows), 1], _bytes_tensor(rows["colour"].tolist())),
        ]
    )
    head = orjson.loads(body[: int(headers[HEADER])])
    # A JSON tensor among binary ones: it holds no bytes of the binary part.
    head["inputs"].append(
        {"name": "weight", "datatype": "FP64", "shape": [len(rows)], "data": rows["weight"].tolist()}
    )
    head_bytes = orjson.dumps(head)
    body = head_bytes + body[int(headers[HEADER]) :]
    async with serve(model) as (client, _server):
        response = await client.post(
            "/v2/models/mixed/infer", data=body, headers={HEADER: str(len(head_bytes))}
        )
        assert response.status == 200, await response.text()
        assert (await response.json())["outputs"][0]["data"] == expected
        # BOOL: one byte per element; here for a numeric feature, which needs a numeric datatype.
        bools, bool_headers = _binary_body([("size", "BOOL", [1], b"\x01")])
        refused = await client.post("/v2/models/mixed/infer", data=bools, headers=bool_headers)
        assert refused.status == 422


@pytest.mark.parametrize("name", ["iris", "mixed"])
async def test_binary_outputs_carry_what_json_outputs_carry(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel], name: str
) -> None:
    model = served(name, "auto")
    rows = trained[name].rows.head(7)
    inputs = [
        {
            "name": column,
            "shape": [len(rows)],
            "datatype": "FP64" if rows[column].dtype.kind == "f" else "BYTES",
            "data": rows[column].tolist(),
        }
        for column in rows.columns
    ]
    outputs = [{"name": "predict"}, {"name": "predict_proba"}]
    async with serve(model) as (client, _server):
        as_json = await (
            await client.post(f"/v2/models/{name}/infer", json={"inputs": inputs, "outputs": outputs})
        ).json()
        everything = await client.post(
            f"/v2/models/{name}/infer",
            json={"inputs": inputs, "outputs": outputs, "parameters": {"binary_data_output": True}},
        )
        assert everything.status == 200, await everything.text()
        assert everything.headers["Content-Type"] == "application/octet-stream"
        head, blobs = _split(await everything.read(), int(everything.headers[HEADER]))
        # An output's own binary_data wins over the request's binary_data_output.
        one = await client.post(
            f"/v2/models/{name}/infer",
            json={
                "inputs": inputs,
                "outputs": [
                    {"name": "predict", "parameters": {"binary_data": False}},
                    {"name": "predict_proba"},
                ],
                "parameters": {"binary_data_output": True},
            },
        )
        one_head, one_blobs = _split(await one.read(), int(one.headers[HEADER]))
    by_name = {o["name"]: o for o in as_json["outputs"]}
    for output in head["outputs"]:
        expected = by_name[output["name"]]
        assert (output["datatype"], output["shape"]) == (expected["datatype"], expected["shape"])
        raw = blobs[output["name"]]
        if output["datatype"] == "BYTES":
            values, offset = [], 0
            while offset < len(raw):
                size = int.from_bytes(raw[offset : offset + 4], "little")
                values.append(raw[offset + 4 : offset + 4 + size].decode())
                offset += 4 + size
            assert values == expected["data"]
        else:
            dtype = np.dtype(_NUMPY[output["datatype"]])
            assert np.frombuffer(raw, dtype).tolist() == pytest.approx(expected["data"])
    assert set(one_blobs) == {"predict_proba"}
    assert one_head["outputs"][0]["data"] == by_name["predict"]["data"]


def _iris_binary(raw: bytes, **parameters: Any) -> dict[str, Any]:
    return {
        "name": "input-0",
        "datatype": "FP64",
        "shape": [1, 4],
        "parameters": {"binary_data_size": len(raw), **parameters},
    }


ROW = np.array([[5.1, 3.5, 1.4, 0.2]], dtype="<f8").tobytes()
AUTO = "the length of the JSON part"
BINARY_CASES: list[tuple[str, Any, bytes, str | None, int, str]] = [
    # (id, JSON part, binary part, Inference-Header-Content-Length, status, word expected in the reason)
    ("size without header", {"inputs": [_iris_binary(ROW)]}, b"", None, 400, HEADER),
    ("header past the body", {}, b"", "99", 400, HEADER),
    ("header not a number", {}, b"", "ten", 400, HEADER),
    ("negative header", {}, b"", "-1", 400, HEADER),
    ("size overruns", {"inputs": [_iris_binary(ROW + ROW)]}, ROW, AUTO, 400, "overruns"),
    ("unclaimed bytes", {"inputs": [_iris_binary(ROW)]}, ROW + b"xx", AUTO, 400, "no input claims"),
    (
        "size a string",
        {"inputs": [_iris_binary(ROW, binary_data_size="32")]},
        ROW,
        AUTO,
        400,
        "binary_data_size",
    ),
    ("size for shape", {"inputs": [_iris_binary(ROW[:16])]}, ROW[:16], AUTO, 422, "needs 32 bytes"),
    ("data and size", {"inputs": [{**_iris_binary(ROW), "data": [1, 2, 3, 4]}]}, ROW, AUTO, 422, "both"),
    (
        "datatype a list",
        {"inputs": [{**_iris_binary(ROW), "datatype": ["FP64"]}]},
        ROW,
        AUTO,
        422,
        "datatype",
    ),
    ("datatype an object", {"inputs": [{**_iris_binary(ROW), "datatype": {}}]}, ROW, AUTO, 422, "datatype"),
    (
        "json datatype a list",
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": [], "data": [1] * 4}]},
        b"",
        None,
        422,
        "datatype",
    ),
]


@pytest.mark.parametrize(
    ("head", "tail", "header", "status", "word"),
    [c[1:] for c in BINARY_CASES],
    ids=[c[0] for c in BINARY_CASES],
)
async def test_malformed_binary_requests_get_4xx_with_reason(
    served: Callable[[str, str], ServedModel],
    head: Any,
    tail: bytes,
    header: str | None,
    status: int,
    word: str,
) -> None:
    json_part = orjson.dumps(head)
    headers = {} if header is None else {HEADER: str(len(json_part)) if header == AUTO else header}
    async with serve(served("iris", "auto")) as (client, _server):
        response = await client.post("/v2/models/iris/infer", data=json_part + tail, headers=headers)
        assert response.status == status, await response.text()
        reason = (await response.json())["error"]
    assert word.lower() in reason.lower(), reason


@pytest.mark.parametrize(
    ("name", "raw", "word"),
    [
        ("truncated prefix", b"\x05\x00", "truncated"),
        ("overlong element", b"\x09\x00\x00\x00red", "declares 9 bytes"),
        ("not utf-8", b"\x02\x00\x00\x00\xff\xfe", "UTF-8"),
        ("too many elements", _bytes_tensor(["red", "blue"]), "shape needs 1"),
    ],
)
async def test_malformed_bytes_tensors_get_422(
    served: Callable[[str, str], ServedModel], name: str, raw: bytes, word: str
) -> None:
    body, headers = _binary_body(
        [
            ("size", "FP64", [1], np.array([1.0]).tobytes()),
            ("colour", "BYTES", [1], raw),
            ("weight", "FP64", [1], np.array([1.0]).tobytes()),
        ]
    )
    async with serve(served("mixed", "auto")) as (client, _server):
        response = await client.post("/v2/models/mixed/infer", data=body, headers=headers)
        assert response.status == 422, name
        assert word in (await response.json())["error"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
async def test_compressed_bodies_are_read_whole(
    served: Callable[[str, str], ServedModel], encoding: str
) -> None:
    raw = orjson.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 50})
    if encoding == "raw deflate":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, encoding = packer.compress(raw) + packer.flush(), "deflate"
    else:
        body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    async with serve(served("iris", "auto")) as (client, _server):
        response = await client.post(
            "/v1/models/iris:predict", data=body, headers={"Content-Encoding": encoding}
        )
        assert response.status == 200, await response.text()
        assert len((await response.json())["predictions"]) == 50


@pytest.mark.parametrize(
    ("encoding", "body", "status", "word"),
    [
        ("gzip", b"\x1f\x8b\x08\x00garbage-that-is-not-deflate", 400, "not valid gzip"),
        ("gzip", b"plain text, not gzip at all", 400, "not valid gzip"),
        ("gzip", gzip.compress(b'{"instances": [[1, 2, 3, 4]]}')[:-12], 400, "truncated"),
        ("gzip", gzip.compress(b" " * 5_000_000), 413, "expands beyond"),
        ("br", b"{}", 415, "Content-Encoding"),
        ("br-unknown", b"{}", 415, "Content-Encoding"),
    ],
)
async def test_undecodable_bodies_get_4xx(
    served: Callable[[str, str], ServedModel], encoding: str, body: bytes, status: int, word: str
) -> None:
    async with serve(served("iris", "auto")) as (client, _server):
        response = await client.post(
            "/v1/models/iris:predict", data=body, headers={"Content-Encoding": encoding}
        )
        assert response.status == status, await response.text()
        assert word in (await response.json())["error"]


@pytest.mark.parametrize("inference", ["auto", "sklearn"])
async def test_numbers_beyond_float32_get_the_same_422_on_both_paths(
    served: Callable[[str, str], ServedModel], inference: str
) -> None:
    model = served("iris", inference)
    async with serve(model) as (client, _server):
        infinite, infinite_headers = _binary_body(
            [("x", "FP64", [1, 4], np.array([1, 2, np.inf, 4], "<f8").tobytes())]
        )
        answers = [
            await client.post("/v1/models/iris:predict", json={"instances": [[1e39, 1.0, 1.0, 1.0]]}),
            await client.post(
                "/v2/models/iris/infer",
                json={
                    "inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, -1e300, 4]}]
                },
            ),
            await client.post("/v2/models/iris/infer", data=infinite, headers=infinite_headers),
        ]
        for answer in answers:
            assert answer.status == 422, await answer.text()
            assert "float32" in (await answer.json())["error"]
        # NaN (a missing value) is not out of range, and the largest float32 is in range.
        edge = await client.post(
            "/v1/models/iris:predict", json={"instances": [[3.4028234663852886e38, 1.0, 1.0, None]]}
        )
        assert edge.status == 200, await edge.text()


async def test_kserve_and_triton_routes(served: Callable[[str, str], ServedModel]) -> None:
    model = served("iris", "auto")
    async with serve(model) as (client, server):
        assert await (await client.get("/")).json() == {"status": "alive"}
        assert await (await client.get("/v2/models")).json() == {"models": ["iris"]}
        assert await (await client.get("/v1/models")).json() == {"models": ["iris"]}
        assert await (await client.post("/v2/repository/index")).json() == [
            {"name": "iris", "version": model.version, "state": "READY"}
        ]
        versioned = f"/v2/models/iris/versions/{model.version}"
        assert (await client.get(versioned)).status == 200
        assert (await client.get(f"{versioned}/ready")).status == 200
        assert (await client.get("/v2/models/iris/versions/nope/ready")).status == 404
        server.begin_drain()
        assert (await client.get("/v2/models/iris/ready")).status == 503
        assert (await client.get("/")).status == 200  # alive while draining
