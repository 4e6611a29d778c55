"""Prediction ids: every answer carries one (v2 `id`, v1 `Gyre-Prediction-Id`), and the prediction log records
each row's id, `{request id}.{row}` within a batch, also when rows are sampled."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from serving_helpers import Trained, serve

from gyre.drift.window import iter_prediction_batches
from gyre.serving.app import PREDICTION_ID_HEADER
from gyre.serving.model import Prediction, ServedModel
from gyre.serving.predlog import PredictionLogger, new_prediction_id, prediction_ids
from gyre.store.store import ArtifactStore

UUID_HEX = re.compile(r"[0-9a-f]{32}")
HEADER = "Inference-Header-Content-Length"


def _v2(rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}
    return {"inputs": [tensor], **extra}


def _logger(tmp_path: Path, model: ServedModel, **options: Any) -> PredictionLogger:
    return PredictionLogger(
        ArtifactStore(f"file://{tmp_path}"),
        namespace="ns",
        deployment="iris-md",
        pod="iris-md-0",
        model=model.name,
        version=model.version,
        feature_names=model.schema.names,
        flush_interval_s=60,
        **options,
    )


def _logged(tmp_path: Path) -> list[dict[str, Any]]:
    batches = iter_prediction_batches(ArtifactStore(f"file://{tmp_path}"), "ns", "iris-md")
    return [row for batch in batches for row in batch.rows]


async def test_v2_echoes_the_request_id_and_generates_one_when_there_is_none(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    rows = trained["iris"].rows.head(3).to_numpy()
    async with serve(served("iris", "auto")) as (client, _):
        echoed = await (await client.post("/v2/models/iris/infer", json=_v2(rows[:1], id="req-1"))).json()
        batch = await (await client.post("/v2/models/iris/infer", json=_v2(rows, id="req-2"))).json()
        first = await (await client.post("/v2/models/iris/infer", json=_v2(rows[:1]))).json()
        second = await (await client.post("/v2/models/iris/infer", json=_v2(rows[:1], id=""))).json()
        proba = await client.post(
            "/v2/models/iris/infer", json=_v2(rows, id="req-3", outputs=[{"name": "predict_proba"}])
        )
        assert (await proba.json())["id"] == "req-3"
    assert echoed["id"] == "req-1" and batch["id"] == "req-2"
    # No id, or an empty one: the server makes one up, a fresh one each time.
    assert UUID_HEX.fullmatch(first["id"]) and UUID_HEX.fullmatch(second["id"])
    assert first["id"] != second["id"]
    # The cached single-row answer is still the same answer, id aside.
    assert echoed["outputs"] == first["outputs"]
    assert echoed["model_name"] == "iris" and len(batch["outputs"][0]["data"]) == 3


async def test_the_binary_extension_answers_with_the_id_in_its_json_header(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    rows = trained["iris"].rows.head(2).to_numpy()
    raw = rows.astype("<f8").tobytes()
    header = orjson.dumps(
        {
            "id": "bin-1",
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 4],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 64},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    async with serve(served("iris", "auto")) as (client, _):
        response = await client.post(
            "/v2/models/iris/infer", data=header + raw, headers={HEADER: str(len(header))}
        )
        assert response.status == 200, await response.text()
        body = await response.read()
    head = orjson.loads(body[: int(response.headers[HEADER])])
    assert head["id"] == "bin-1"


async def test_v1_answers_the_id_in_a_header_and_takes_the_one_a_client_sends(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    rows = trained["iris"].rows.head(2).to_numpy().tolist()
    async with serve(served("iris", "auto")) as (client, _):
        generated = await client.post("/v1/models/iris:predict", json={"instances": rows[:1]})
        again = await client.post("/v1/models/iris:predict", json={"instances": rows[:1]})
        chosen = await client.post(
            "/v1/models/iris:predict", json={"instances": rows}, headers={PREDICTION_ID_HEADER: "order-17"}
        )
        refused = await client.post("/v1/models/iris:predict", json={"instances": [[1, 2]]})
        assert len((await chosen.json())["predictions"]) == 2
    assert UUID_HEX.fullmatch(generated.headers[PREDICTION_ID_HEADER])
    assert generated.headers[PREDICTION_ID_HEADER] != again.headers[PREDICTION_ID_HEADER]
    assert chosen.headers[PREDICTION_ID_HEADER] == "order-17"
    # An answer without a prediction has no prediction id.
    assert refused.status == 422 and PREDICTION_ID_HEADER not in refused.headers


async def test_the_prediction_log_records_each_rows_id(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    model = served("iris", "auto")
    rows = trained["iris"].rows.head(3).to_numpy()
    logger = _logger(tmp_path, model)
    async with serve(model, logger=logger) as (client, _):
        await client.post("/v2/models/iris/infer", json=_v2(rows[:1], id="one"))
        await client.post("/v2/models/iris/infer", json=_v2(rows, id="many"))
        v1 = await client.post("/v1/models/iris:predict", json={"instances": rows[:2].tolist()})
        generated = v1.headers[PREDICTION_ID_HEADER]
        v2 = await client.post("/v2/models/iris/infer", json=_v2(rows[2:]))
        generated_v2 = (await v2.json())["id"]
    by_id = {row["id"]: row for row in _logged(tmp_path)}
    assert set(by_id) == {
        "one",
        "many.0",
        "many.1",
        "many.2",
        f"{generated}.0",
        f"{generated}.1",
        generated_v2,
    }
    for i in range(3):  # row i of the batch is the request's row i
        assert list(by_id[f"many.{i}"]["inputs"].values()) == rows[i].tolist()
    assert list(by_id[generated_v2]["inputs"].values()) == rows[2].tolist()


async def test_sampled_batches_keep_each_row_with_its_own_id(tmp_path: Path) -> None:
    logger = PredictionLogger(
        ArtifactStore(f"file://{tmp_path}"), namespace="ns", deployment="iris-md", pod="p", model="m",
        version="v", feature_names=("x",), sample_rate=0.5, flush_interval_s=60,
    )  # fmt: skip
    n = 400
    values = np.arange(n, dtype=np.float64)
    # Each row's input, label and probability are its place in the request: any misalignment shows.
    proba = np.column_stack([values, -values])
    logger.record(values.reshape(-1, 1), Prediction(values.astype(np.int64), proba), "req")
    logger.record(np.array([[7.0]]), Prediction(np.array([7]), None), "single")
    await logger.close()
    logged = _logged(tmp_path)
    batch = [row for row in logged if row["id"].startswith("req.")]
    assert 0 < len(batch) < n  # sampled
    for row in batch:
        place = int(row["id"].removeprefix("req."))
        assert row["inputs"] == {"x": place}
        assert row["outputs"] == {"predict": place, "predict_proba": [place, -place]}
    assert all(row["id"] == "single" for row in logged if not row["id"].startswith("req."))


def test_generated_ids_are_random_uuid4s() -> None:
    ids = [new_prediction_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_prediction_ids_follow_the_documented_rule() -> None:
    assert prediction_ids("r", 1) == ["r"]
    assert prediction_ids("r", 3) == ["r.0", "r.1", "r.2"]
    assert prediction_ids("r", 2, np.array([4, 9])) == ["r.4", "r.9"]
    # A batch sampled down to one row keeps its place in the id.
    assert prediction_ids("r", 1, np.array([5])) == ["r.5"]
