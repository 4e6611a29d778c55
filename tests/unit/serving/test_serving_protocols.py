"""KServe v1 and Open Inference Protocol v2: answers match scikit-learn, on both inference paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serving_helpers import Trained, serve

from gyre.serving.app import INFERENCE_HEADER, ServerConfig
from gyre.serving.model import ServedModel

# (fixture model, inference path, the path the server must report)
PATHS = [
    ("iris", "auto", "onnx"),
    ("iris", "sklearn", "sklearn"),
    ("iris-sklearn", "auto", "sklearn"),
    ("mixed", "auto", "onnx"),
    ("mixed", "sklearn", "sklearn"),
]


def _v2_named(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "shape": [len(rows)],
            "datatype": "FP64" if rows[name].dtype.kind == "f" else "BYTES",
            "data": rows[name].tolist(),
        }
        for name in rows.columns
    ]


@pytest.mark.parametrize(("name", "inference", "expected_path"), PATHS)
async def test_v1_predictions_match_sklearn(
    trained: dict[str, Trained],
    served: Callable[[str, str], ServedModel],
    name: str,
    inference: str,
    expected_path: str,
) -> None:
    model = served(name, inference)
    rows = trained[name].rows
    expected = trained[name].result.pipeline.predict(rows).tolist()
    async with serve(model) as (client, _server):
        as_lists = await client.post(
            f"/v1/models/{model.name}:predict", json={"instances": rows.values.tolist()}
        )
        as_objects = await client.post(
            f"/v1/models/{model.name}:predict", json={"instances": rows.to_dict(orient="records")}
        )
        assert as_lists.status == 200, await as_lists.text()
        assert as_lists.headers[INFERENCE_HEADER] == expected_path
        assert (await as_lists.json())["predictions"] == expected
        assert (await as_objects.json())["predictions"] == expected


@pytest.mark.parametrize(("name", "inference", "expected_path"), PATHS)
async def test_v2_predictions_match_sklearn(
    trained: dict[str, Trained],
    served: Callable[[str, str], ServedModel],
    name: str,
    inference: str,
    expected_path: str,
) -> None:
    model = served(name, inference)
    rows = trained[name].rows
    pipeline = trained[name].result.pipeline
    async with serve(model) as (client, _server):
        response = await client.post(
            f"/v2/models/{model.name}/infer",
            json={
                "id": "req-1",
                "inputs": _v2_named(rows),
                "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
            },
        )
        assert response.status == 200, await response.text()
        assert response.headers[INFERENCE_HEADER] == expected_path
        body = await response.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == model.name and body["model_version"] == model.version
    predict, proba = body["outputs"]
    assert predict["name"] == "predict" and predict["shape"] == [len(rows)]
    assert predict["data"] == pipeline.predict(rows).tolist()
    assert predict["datatype"] == ("BYTES" if name == "mixed" else "INT64")
    expected_proba = pipeline.predict_proba(rows)
    assert proba["shape"] == list(expected_proba.shape)
    assert proba["datatype"] == ("FP32" if expected_path == "onnx" else "FP64")
    np.testing.assert_allclose(np.reshape(proba["data"], proba["shape"]), expected_proba, atol=1e-5)


async def test_v2_single_tensor_batch(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    model = served("iris", "auto")
    rows = trained["iris"].rows
    tensor = {
        "name": "input-0",
        "shape": list(rows.shape),
        "datatype": "FP64",
        "data": rows.values.ravel().tolist(),
    }
    nested = {**tensor, "data": rows.values.tolist()}
    async with serve(model) as (client, _server):
        flat = await (await client.post("/v2/models/iris/infer", json={"inputs": [tensor]})).json()
        deep = await (await client.post("/v2/models/iris/infer", json={"inputs": [nested]})).json()
    expected = trained["iris"].result.pipeline.predict(rows).tolist()
    assert [o["name"] for o in flat["outputs"]] == ["predict"]  # only what was asked for by default
    # No id in the request: the server generates a fresh one each time.
    assert len(flat["id"]) == 32 and flat["id"] != deep["id"]
    assert flat["outputs"][0]["data"] == expected
    assert deep["outputs"][0]["data"] == expected


async def test_regression_both_paths(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    rows = trained["regression"].rows
    expected = trained["regression"].result.pipeline.predict(rows)
    for inference in ("auto", "sklearn"):
        model = served("regression", inference)
        async with serve(model) as (client, _server):
            v1 = await (
                await client.post("/v1/models/reg:predict", json={"instances": rows.values.tolist()})
            ).json()
            v2 = await (await client.post("/v2/models/reg/infer", json={"inputs": _v2_named(rows)})).json()
            asked = await client.post(
                "/v1/models/reg:predict", json={"instances": [[0, 0, 0]], "predict_proba": True}
            )
        np.testing.assert_allclose(v1["predictions"], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(v2["outputs"][0]["data"], expected, rtol=1e-5, atol=1e-5)
        assert v2["outputs"][0]["datatype"] in ("FP32", "FP64")
        assert asked.status == 422  # a regressor has no probabilities


async def test_v1_probabilities_by_query_or_body(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    model = served("iris", "auto")
    rows = trained["iris"].rows.head(3)
    expected = trained["iris"].result.pipeline.predict_proba(rows)
    async with serve(model) as (client, _server):
        by_query = await (
            await client.post(
                "/v1/models/iris:predict?predict_proba=true", json={"instances": rows.values.tolist()}
            )
        ).json()
        by_body = await (
            await client.post(
                "/v1/models/iris:predict", json={"instances": rows.values.tolist(), "predict_proba": True}
            )
        ).json()
        plain = await (
            await client.post("/v1/models/iris:predict", json={"instances": rows.values.tolist()})
        ).json()
    np.testing.assert_allclose(by_query["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(by_body["probabilities"], expected, atol=1e-5)
    assert "probabilities" not in plain


async def test_missing_values_become_nan_and_empty_category(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    """null means missing, as in training: NaN for numbers (imputed), "" for strings."""
    pipeline = trained["mixed"].result.pipeline
    frame = pd.DataFrame({"size": [np.nan], "colour": [""], "weight": [5.0]})
    expected = pipeline.predict(frame).tolist()
    for inference in ("auto", "sklearn"):
        model = served("mixed", inference)
        async with serve(model) as (client, _server):
            response = await client.post(
                "/v1/models/mixed:predict",
                json={"instances": [{"size": None, "colour": None, "weight": 5.0}]},
            )
            assert response.status == 200, await response.text()
            assert (await response.json())["predictions"] == expected


async def test_health_readiness_and_metadata(served: Callable[[str, str], ServedModel]) -> None:
    model = served("mixed", "auto")
    async with serve(model) as (client, server):
        assert (await client.get("/v2/health/live")).status == 200
        ready = await client.get("/v2/health/ready")
        assert ready.status == 200 and (await ready.json()) == {"ready": True}
        assert await (await client.get("/v1/models/mixed")).json() == {"name": "mixed", "ready": True}
        assert await (await client.get("/v1/models")).json() == {"models": ["mixed"]}
        assert (await client.get(f"/v2/models/mixed/versions/{model.version}/ready")).status == 200
        assert (await (await client.get("/v2")).json())["name"] == "gyre"
        meta = await (await client.get("/v2/models/mixed")).json()
        versioned = await (await client.get(f"/v2/models/mixed/versions/{model.version}")).json()
        assert (await client.get("/v2/health/live")).headers.get("Connection", "").lower() != "close"
        server.begin_drain()  # what shutdown does first
        unready = await client.get("/v2/health/ready")
        assert unready.status == 503
        # Keep-alive clients must leave a draining pod: its answers close their connections.
        assert unready.headers.get("Connection", "").lower() == "close"
        drained = await client.post(
            "/v1/models/mixed:predict", json={"instances": [{"size": 1.0, "colour": "red", "weight": 5.0}]}
        )
        assert drained.status == 200 and drained.headers.get("Connection", "").lower() == "close"
        assert (await client.get("/v2/models/mixed/ready")).status == 503
        assert (await client.get("/v2/health/live")).status == 200
    assert meta == versioned
    assert meta["name"] == "mixed" and meta["versions"] == [model.version]
    assert meta["inputs"] == [
        {"name": "size", "datatype": "FP64", "shape": [-1]},
        {"name": "colour", "datatype": "BYTES", "shape": [-1]},
        {"name": "weight", "datatype": "FP64", "shape": [-1]},
    ]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 2]},
    ]
    assert meta["parameters"]["inference_path"] == "onnx"
    assert meta["parameters"]["sha256"] == model.sha256


async def test_versioned_infer(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    model = served("iris", "auto")
    rows = trained["iris"].rows.head(2)
    body = {
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": rows.values.ravel().tolist()}]
    }
    async with serve(model) as (client, _server):
        ok = await client.post(f"/v2/models/iris/versions/{model.version}/infer", json=body)
        wrong = await client.post("/v2/models/iris/versions/000000000000/infer", json=body)
        assert ok.status == 200
        assert wrong.status == 404 and "version" in (await wrong.json())["error"]


async def test_model_name_override(trained: dict[str, Trained]) -> None:
    from gyre.serving.model import load_served_model

    model = load_served_model(str(trained["iris"].directory), name="flowers")
    async with serve(model, ServerConfig(batching=False)) as (client, _server):
        assert (
            await client.post("/v1/models/flowers:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
        ).status == 200
        assert (
            await client.post("/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
        ).status == 404


@pytest.mark.parametrize("inference", ["auto", "sklearn"])
async def test_one_row_at_a_time(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel], inference: str
) -> None:
    """Single-row answers (prebuilt per class on the server) are right for every class, on both protocols."""
    model = served("iris", inference)
    rows = trained["iris"].rows
    expected = trained["iris"].result.pipeline.predict(rows).tolist()
    assert len(set(expected)) == 3
    v1, v2 = [], []
    async with serve(model) as (client, _server):
        for row in rows.values.tolist():
            r1 = await client.post("/v1/models/iris:predict", json={"instances": [row]})
            v1.append((await r1.json())["predictions"][0])
            body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": row}]}
            r2 = await (await client.post("/v2/models/iris/infer", json=body)).json()
            assert r2["model_name"] == "iris" and len(r2["id"]) == 32
            v2.append(r2["outputs"][0]["data"][0])
    assert v1 == expected
    assert v2 == expected
