"""Metrics, the prediction log, micro-batching, and `gyre serve` shutting down cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_helpers import Trained, gyre_serve, serve

from gyre.drift.window import iter_prediction_batches
from gyre.serving.app import ServerConfig
from gyre.serving.batching import MicroBatcher
from gyre.serving.model import Prediction, ServedModel
from gyre.serving.predlog import PredictionLogger
from gyre.store.store import ArtifactStore


def _metric(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample starting with {prefix!r} in:\n{text}")


async def test_metrics_exposed(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    model = served("iris", "auto")
    rows = trained["iris"].rows.head(5)
    expected = trained["iris"].result.pipeline.predict(rows)
    async with serve(model) as (client, _server):
        await client.post("/v1/models/iris:predict", json={"instances": rows.values.tolist()})
        await client.post("/v1/models/iris:predict", json={"instances": [[1, 2]]})
        await client.post(
            "/v2/models/iris/infer",
            json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]},
        )
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert _metric(text, 'gyre_requests_total{code="200",protocol="v1"}') == 1
    assert _metric(text, 'gyre_requests_total{code="422",protocol="v1"}') == 1
    assert _metric(text, 'gyre_requests_total{code="200",protocol="v2"}') == 1
    assert _metric(text, 'gyre_request_duration_seconds_count{code="200",protocol="v1"}') == 1
    for label in set(expected.tolist()):
        counted = _metric(text, f'gyre_predictions_total{{class="{label}"}}')
        assert counted >= int((expected == label).sum())
    info = f'gyre_model_info{{inference="onnx",model="iris",run="default/iris",sha256="{model.sha256}",track="",version="{model.version}"}}'
    assert _metric(text, info) == 1


async def test_prediction_log_flushed_in_the_documented_format(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    model = served("mixed", "auto")
    store = ArtifactStore(f"file://{tmp_path}")
    logger = PredictionLogger(
        store,
        namespace="team-a",
        deployment="mixed-md",
        pod="mixed-md-7c9-x2",
        model=model.name,
        version=model.version,
        feature_names=model.schema.names,
        max_batch_rows=3,
        flush_interval_s=60,
    )
    rows = trained["mixed"].rows.head(4)
    expected = trained["mixed"].result.pipeline.predict(rows).tolist()
    async with serve(model, logger=logger) as (client, server):
        await client.post(
            "/v1/models/mixed:predict", json={"instances": rows.head(3).to_dict(orient="records")}
        )
        for _ in range(100):  # size-triggered flush, in the background
            if logger.written_paths:
                break
            await asyncio.sleep(0.02)
        assert len(logger.written_paths) == 1
        await client.post(
            "/v1/models/mixed:predict?predict_proba=1", json={"instances": rows.tail(1).values.tolist()}
        )
    # Shutdown flushed the last row.
    assert len(logger.written_paths) == 2
    assert _metric(server.metrics.render().decode(), "gyre_prediction_log_written_rows_total") == 4
    batches = list(iter_prediction_batches(store, "team-a", "mixed-md"))
    logged = sorted((row for b in batches for row in b.rows), key=lambda r: r["ts"])
    assert len(logged) == 4
    assert all(
        p.startswith("predictions/team-a/mixed-md/") and p.endswith("-mixed-md-7c9-x2.jsonl.gz")
        for p in logger.written_paths
    )
    for row, (_, source), label in zip(logged, rows.iterrows(), expected, strict=True):
        assert set(row) == {"id", "ts", "model", "version", "inputs", "outputs"}
        assert row["model"] == "mixed" and row["version"] == model.version
        assert row["inputs"] == {
            "size": source["size"],
            "colour": source["colour"],
            "weight": source["weight"],
        }
        assert row["outputs"]["predict"] == label
    assert "predict_proba" in logged[-1]["outputs"] and "predict_proba" not in logged[0]["outputs"]
    # The three rows of the first request are {its id}.0 to .2; the single row of the second has its id.
    batch_id = logged[0]["id"].rsplit(".", 1)[0]
    assert [row["id"] for row in logged[:3]] == [f"{batch_id}.{i}" for i in range(3)]
    assert "." not in logged[3]["id"] and logged[3]["id"] != batch_id


async def test_prediction_log_buffer_is_bounded_and_sampled(tmp_path: Path) -> None:
    dropped: list[int] = []
    logger = PredictionLogger(
        ArtifactStore(f"file://{tmp_path}"),
        namespace="ns",
        deployment="d",
        pod="p",
        model="m",
        version="v",
        feature_names=("a",),
        max_batch_rows=1000,
        max_buffer_rows=5,
        on_dropped=dropped.append,
    )
    prediction = Prediction(np.zeros(3), None)
    logger.record(np.zeros((3, 1)), prediction, "a")
    logger.record(np.zeros((3, 1)), prediction, "b")  # would exceed 5: dropped and counted
    assert dropped == [3]
    sampled = PredictionLogger(
        ArtifactStore(f"file://{tmp_path}"), namespace="ns", deployment="d", pod="p", model="m", version="v",
        feature_names=("a",), sample_rate=0.0,
    )  # fmt: skip
    sampled.record(np.zeros((50, 1)), Prediction(np.zeros(50), None), "c")
    await sampled.close()
    await logger.close()
    assert sampled.written_paths == [] and len(logger.written_paths) == 1


class _Recorder:
    """A predictor that answers each row with its own first value, and records batch sizes."""

    path = "onnx"
    has_proba = True

    def __init__(self, inline: bool) -> None:
        self.inline = inline
        self.batches: list[int] = []

    def predict(self, rows: np.ndarray, want_proba: bool) -> Prediction:
        self.batches.append(len(rows))
        if not self.inline:
            time.sleep(0.01)
        return Prediction(
            rows[:, 0].copy(), np.stack([rows[:, 0], -rows[:, 0]], axis=1) if want_proba else None
        )


@pytest.mark.parametrize("inline", [True, False])
async def test_micro_batching_returns_each_caller_its_own_rows(inline: bool) -> None:
    recorder = _Recorder(inline)
    batcher = MicroBatcher(recorder, max_batch_rows=64)  # type: ignore[arg-type]

    async def call(i: int) -> tuple[int, Prediction]:
        rows = np.arange(i * 10, i * 10 + (i % 3) + 1, dtype=np.float64).reshape(-1, 1)
        return i, await batcher.predict(rows, want_proba=i % 2 == 0)

    results = await asyncio.gather(*(call(i) for i in range(40)))
    for i, prediction in results:
        own = np.arange(i * 10, i * 10 + (i % 3) + 1, dtype=np.float64)
        np.testing.assert_array_equal(prediction.predict, own)
        if i % 2 == 0:
            assert prediction.proba is not None
            np.testing.assert_array_equal(prediction.proba[:, 1], -own)
        else:
            assert prediction.proba is None
    assert sum(recorder.batches) == sum((i % 3) + 1 for i in range(40))
    assert len(recorder.batches) < 40  # requests were coalesced
    assert max(recorder.batches) <= 64


async def test_batching_on_and_off_agree(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    rows = trained["iris"].rows
    expected = trained["iris"].result.pipeline.predict(rows).tolist()
    for config in (ServerConfig(batching=True, max_batch_rows=7), ServerConfig(batching=False)):
        async with serve(served("iris", "sklearn"), config) as (client, _server):
            replies = await asyncio.gather(
                *(
                    client.post("/v1/models/iris:predict", json={"instances": [row]})
                    for row in rows.values.tolist()
                )
            )
            labels = [(await r.json())["predictions"][0] for r in replies]
        assert labels == expected


def test_serve_drains_and_flushes_on_sigterm(trained: dict[str, Trained], tmp_path: Path) -> None:
    """The real `gyre serve` process: ready, serves, then SIGTERM -> exit 0 with the prediction log written."""
    env = {
        "GYRE_ARTIFACT_STORE": f"file://{tmp_path}",
        "GYRE_LOG_STORE": f"file://{tmp_path}",
        "GYRE_NAMESPACE": "ns",
        "GYRE_DEPLOYMENT": "iris",
        "POD_NAME": "iris-0",
        "GYRE_LOG_FLUSH_SECONDS": "3600",
    }
    with gyre_serve(trained["iris"].directory, env=env) as server:
        assert server.predict_one() == 200
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    rows: list[Any] = [
        row for b in iter_prediction_batches(f"file://{tmp_path}", "ns", "iris") for row in b.rows
    ]
    assert len(rows) == 1
    assert rows[0]["inputs"] == {
        "sepal_length": 5.1,
        "sepal_width": 3.5,
        "petal_length": 1.4,
        "petal_width": 0.2,
    }


async def test_batcher_goes_direct_when_alone_and_batches_again_under_load() -> None:
    recorder = _Recorder(inline=True)
    batcher = MicroBatcher(recorder, max_batch_rows=256)  # type: ignore[arg-type]
    for i in range(20):  # one caller at a time
        prediction = await batcher.predict(np.array([[float(i)]]), want_proba=False)
        assert prediction.predict.tolist() == [float(i)]
    assert batcher._direct
    recorder.batches.clear()

    async def call(i: int) -> tuple[int, Prediction]:
        return i, await batcher.predict(np.array([[float(i)]]), want_proba=False)

    for _ in range(3):  # bursts: the periodic probe notices the company and batching resumes
        results = await asyncio.gather(*(call(i) for i in range(32)))
        assert all(p.predict.tolist() == [float(i)] for i, p in results)
    assert not batcher._direct
    assert max(recorder.batches) > 1
