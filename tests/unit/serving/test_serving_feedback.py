"""The feedback endpoint and `gyre feedback send`: labels are checked against the served model, written in the
documented format (docs/architecture.md, "Ground-truth feedback"), counted on /metrics, and every bad input gets
a 4xx (or a per-item reason) that says why."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from aiohttp.test_utils import TestClient
from serving_helpers import serve

from gyre.cli import main
from gyre.serving.app import ModelServer, ServerConfig
from gyre.serving.feedback import FeedbackWriter
from gyre.serving.model import ServedModel
from gyre.store.layout import feedback_dir
from gyre.store.store import ArtifactStore

ROUTE = "/v2/models/iris/feedback"


def _writer(tmp_path: Path, **options: Any) -> FeedbackWriter:
    return FeedbackWriter(
        ArtifactStore(f"file://{tmp_path}"),
        namespace="ns",
        deployment="iris-md",
        pod="iris-md-1",
        flush_interval_s=60,
        **options,
    )


def _written(tmp_path: Path) -> list[dict[str, Any]]:
    """Every feedback row under the deployment's prefix, read back from the gzipped JSON-lines files."""
    rows: list[dict[str, Any]] = []
    for path in sorted((tmp_path / feedback_dir("ns", "iris-md")).rglob("*.jsonl.gz")):
        rows += [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    return rows


def _metric(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {sample!r} in:\n{text}")


@contextlib.asynccontextmanager
async def _feedback_server(
    model: ServedModel, tmp_path: Path, **options: Any
) -> AsyncIterator[tuple[TestClient[Any, Any], ModelServer]]:
    async with serve(model, feedback=_writer(tmp_path, **options)) as running:
        yield running


async def test_labels_are_written_in_the_contract_format_and_read_back(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    before = time.time()
    async with _feedback_server(served("iris", "auto"), tmp_path) as (client, server):
        one = await client.post(ROUTE, json={"id": "req-1", "label": 2})
        many = await client.post(
            ROUTE,
            json=[{"id": "req-2.0", "label": 0, "ts": 1_700_000_000.5}, {"id": "req-2.1", "label": 1.0}],
        )
        assert (one.status, many.status) == (200, 200), await many.text()
        assert await one.json() == {
            "accepted": 1, "rejected": 0, "invalid": 0, "duplicate": 0, "unknown_class": 0,
            "unknown_classes": [], "errors": [],
        }  # fmt: skip
        assert (await many.json())["accepted"] == 2
        text = await (await client.get("/metrics")).text()
    # Shutdown flushed the buffer.
    rows = _written(tmp_path)
    assert [(r["id"], r["label"]) for r in rows] == [("req-1", 2), ("req-2.0", 0), ("req-2.1", 1)]
    assert all(set(r) == {"id", "label", "ts"} for r in rows)
    assert rows[1]["ts"] == 1_700_000_000.5  # the client's time of observation
    assert before <= rows[0]["ts"] <= time.time()  # else the time the server received it
    (path,) = server.feedback_writer.written_paths  # type: ignore[union-attr]
    assert path.startswith("feedback/ns/iris-md/") and path.endswith("-iris-md-1.jsonl.gz")
    assert _metric(text, 'gyre_feedback_labels_total{outcome="accepted"}') == 3
    assert _metric(text, 'gyre_feedback_requests_total{code="200"}') == 2
    assert _metric(server.metrics.render().decode(), "gyre_feedback_written_labels_total") == 3


# (id, body, status, words the reason must contain)
BAD_BODIES = [
    ("empty", b"", 400, "empty request body"),
    ("not json", b"{", 400, "malformed JSON"),
    ("not an object or array", b"42", 400, "an array of such objects"),
    ("empty array", b"[]", 400, "empty"),
    ("infinite number", b'{"id": "a", "label": 1e400}', 400, "malformed JSON"),
    ("item not an object", b"[1]", 422, "an item must be an object"),
    ("no id", b'{"label": 1}', 422, "id must be a non-empty string"),
    ("numeric id", b'{"id": 5, "label": 1}', 422, "id must be a non-empty string, got int 5"),
    ("empty id", b'{"id": "", "label": 1}', 422, "id must be a non-empty string"),
    ("long id", orjson.dumps({"id": "x" * 1025, "label": 1}), 422, "longer than 1024"),
    ("no label", b'{"id": "a"}', 422, "missing label"),
    (
        "text for int classes",
        b'{"id": "a", "label": "setosa"}',
        422,
        "an integer like the model's classes (0, 1, 2)",
    ),
    ("fraction for int classes", b'{"id": "a", "label": 1.5}', 422, "an integer like"),
    ("bool for int classes", b'{"id": "a", "label": true}', 422, "got bool true"),
    ("null label", b'{"id": "a", "label": null}', 422, "got NoneType"),
    ("list label", b'{"id": "a", "label": [1]}', 422, "got list"),
    ("unknown field", b'{"id": "a", "label": 1, "score": 3}', 422, "unknown field 'score'"),
    ("text ts", b'{"id": "a", "label": 1, "ts": "yesterday"}', 422, "ts (unix seconds) must be a number"),
    ("future ts", orjson.dumps({"id": "a", "label": 1, "ts": time.time() + 86400}), 422, "not a past time"),
    ("negative ts", b'{"id": "a", "label": 1, "ts": -5}', 422, "not a past time"),
]


@pytest.mark.parametrize(
    ("body", "status", "reason"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
async def test_every_bad_body_gets_a_4xx_that_says_why(
    served: Callable[[str, str], ServedModel], tmp_path: Path, body: bytes, status: int, reason: str
) -> None:
    async with _feedback_server(served("iris", "auto"), tmp_path) as (client, _):
        response = await client.post(ROUTE, data=body, headers={"Content-Type": "application/json"})
        answer = await response.json()
    assert response.status == status
    assert reason in answer["error"], answer
    assert _written(tmp_path) == []


async def test_a_partly_valid_batch_is_accepted_with_each_rejection_explained(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    items = [
        {"id": "a", "label": 0},
        {"id": "b", "label": "virginica"},  # wrong type
        {"id": "a", "label": 1},  # duplicate of item 0: the first label wins
        {"id": "c", "label": 7},  # an int, but not one of the model's classes: kept and reported
        {"id": "d", "label": 7},
        {"id": "e", "label": 2},
    ]
    async with _feedback_server(served("iris", "auto"), tmp_path) as (client, server):
        response = await client.post(ROUTE, json=items)
        answer = await response.json()
        text = server.metrics.render().decode()
    assert response.status == 200
    assert {k: answer[k] for k in ("accepted", "rejected", "invalid", "duplicate", "unknown_class")} == {
        "accepted": 4, "rejected": 2, "invalid": 1, "duplicate": 1, "unknown_class": 2,
    }  # fmt: skip
    assert answer["unknown_classes"] == [7]
    assert [(e["index"], e["id"]) for e in answer["errors"]] == [(1, "b"), (2, "a")]
    assert "integer" in answer["errors"][0]["reason"] and "item 0" in answer["errors"][1]["reason"]
    assert [(r["id"], r["label"]) for r in _written(tmp_path)] == [("a", 0), ("c", 7), ("d", 7), ("e", 2)]
    for outcome, count in (("accepted", 4), ("invalid", 1), ("duplicate", 1), ("dropped", 0)):
        assert _metric(text, f'gyre_feedback_labels_total{{outcome="{outcome}"}}') == count
    assert _metric(text, "gyre_feedback_unknown_class_labels_total") == 2


async def test_labels_follow_the_type_of_the_models_target(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    # mixed: classes "no" and "yes"; reg: a regressor.
    async with _feedback_server(served("mixed", "auto"), tmp_path) as (client, _):
        text = await client.post("/v2/models/mixed/feedback", json=[{"id": "1", "label": "yes"}])
        number = await client.post("/v2/models/mixed/feedback", json={"id": "2", "label": 1})
        new_class = await client.post("/v2/models/mixed/feedback", json={"id": "3", "label": "maybe"})
        assert text.status == 200 and (await new_class.json())["unknown_classes"] == ["maybe"]
        assert number.status == 422
        assert "a string like the model's classes" in (await number.json())["error"]
    async with _feedback_server(served("regression", "auto"), tmp_path / "reg") as (client, _):
        value = await client.post(
            "/v2/models/reg/feedback", json=[{"id": "1", "label": 3}, {"id": "2", "label": -0.5}]
        )
        word = await client.post("/v2/models/reg/feedback", json={"id": "3", "label": "high"})
        assert value.status == 200 and (await value.json())["unknown_class"] == 0
        assert word.status == 422 and "a finite number" in (await word.json())["error"]
    assert [r["label"] for r in _written(tmp_path / "reg")] == [3.0, -0.5]


async def test_compressed_bodies_wrong_methods_and_a_server_without_a_store(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    model = served("iris", "auto")
    async with _feedback_server(model, tmp_path) as (client, _):
        gzipped = await client.post(
            ROUTE,
            data=gzip.compress(orjson.dumps({"id": "z", "label": 1})),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert gzipped.status == 200
        assert (await client.get(ROUTE)).status == 405
        other = await client.post("/v2/models/other/feedback", json={"id": "z", "label": 1})
        assert other.status == 404 and "not served here" in (await other.json())["error"]
    async with serve(model) as (client, _):
        off = await client.post(ROUTE, json={"id": "z", "label": 1})
        assert off.status == 503 and "no artifact store" in (await off.json())["error"]


async def test_a_full_buffer_answers_503_and_counts_the_labels_dropped(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    async with _feedback_server(served("iris", "auto"), tmp_path, max_buffer_rows=2) as (client, server):
        fits = await client.post(ROUTE, json=[{"id": "a", "label": 0}, {"id": "b", "label": 1}])
        full = await client.post(ROUTE, json={"id": "c", "label": 2})
        reason = (await full.json())["error"]
        text = server.metrics.render().decode()
    assert fits.status == 200
    assert full.status == 503 and "retry later" in reason
    assert _metric(text, 'gyre_feedback_labels_total{outcome="dropped"}') == 1
    assert [r["id"] for r in _written(tmp_path)] == ["a", "b"]


# -- gyre feedback send ------------------------------------------------------------------------------------------


async def _send(*argv: str) -> tuple[int, str, str]:
    """`gyre feedback send ...` run as the command line runs it, in a thread (the server is on this loop)."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return main(["feedback", "send", *argv])

    code = await asyncio.to_thread(run)
    return code, out.getvalue(), err.getvalue()


async def test_feedback_send_posts_a_csv_in_chunks_and_prints_the_counts(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "id,label,ts\n"
        "p1,0,1700000000\n"
        "p2,2,2023-11-14T22:13:21Z\n"
        "p1,1,1700000002\n"  # repeated id: not sent, the first label wins
        "p3,setosa,\n"  # not an integer: rejected by the server, explained
        "p4,9,\n"  # an integer that is no class: accepted and reported
        "p5,1.0,\n"
    )
    store = tmp_path / "store"
    async with _feedback_server(served("iris", "auto"), store) as (client, _):
        url = str(client.make_url("")).rstrip("/")
        code, out, err = await _send("--url", url, "--file", str(labels), "--batch-size", "2")
    assert code == 0, err
    assert "sent 5 labels: accepted 4, rejected 2 (invalid 1, duplicate 1)" in out
    assert "1 accepted labels are not among the model's classes (9)" in out
    assert "1 repeated ids in the file were not sent" in out
    assert "row 3 (id 'p3')" in err and "an integer like" in err
    rows = {r["id"]: r for r in _written(store)}
    assert {k: (v["label"], v["ts"]) for k, v in rows.items() if k in ("p1", "p2")} == {
        "p1": (0, 1_700_000_000.0),
        "p2": (2, 1_700_000_001.0),
    }
    assert rows["p5"]["label"] == 1 and rows["p4"]["label"] == 9


async def test_feedback_send_reads_parquet_and_exits_non_zero_on_transport_errors(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    labels = tmp_path / "labels.parquet"
    stamps = pd.to_datetime(["2023-11-14T22:13:20Z", None, "2023-11-14T22:13:21Z"])
    pd.DataFrame({"id": ["q1", "q2", "q3"], "label": ["yes", "no", None], "ts": stamps}).to_parquet(labels)
    store = tmp_path / "store"
    async with serve(served("mixed", "auto"), feedback=_writer(store)) as (client, _):
        url = str(client.make_url("")).rstrip("/")
        code, out, err = await _send("--url", url, "--file", str(labels), "--model", "mixed")
        assert code == 0, err
        assert "sent 3 labels: accepted 2, rejected 1 (invalid 1, duplicate 0)" in out
        wrong_model = await _send("--url", url, "--file", str(labels), "--model", "nope")
    written = _written(store)
    assert [(r["id"], r["label"]) for r in written] == [("q1", "yes"), ("q2", "no")]
    # A Parquet timestamp is sent as unix seconds; a missing one leaves the time of receipt.
    assert written[0]["ts"] == 1_700_000_000.0 and written[1]["ts"] > 1_700_000_000.0
    assert wrong_model[0] == 1 and "404" in wrong_model[2]
    # Nobody listens there any more.
    down = await _send("--url", url, "--file", str(labels), "--model", "mixed", "--timeout", "5")
    assert down[0] == 1 and "gyre feedback send: error:" in down[2]


async def test_feedback_send_refuses_a_file_it_cannot_use(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    columns = tmp_path / "labels.csv"
    columns.write_text("prediction,truth\na,1\n")
    kind = tmp_path / "labels.json"
    kind.write_text("[]")
    async with _feedback_server(served("iris", "auto"), tmp_path / "store") as (client, _):
        url = str(client.make_url("")).rstrip("/")
        results = [
            await _send("--url", url, "--file", str(path))
            for path in (columns, kind, tmp_path / "missing.parquet")
        ]
    assert [code for code, _, _ in results] == [2, 2, 2]
    assert "no id or label column" in results[0][2]
    assert "unsupported file type" in results[1][2]
    assert "no such file" in results[2][2]


async def test_feedback_send_says_to_send_smaller_chunks_when_a_body_is_too_large(
    served: Callable[[str, str], ServedModel], tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"prediction-{i:06d},{i % 3}\n" for i in range(400)))
    small = ServerConfig(max_body_bytes=2048)
    async with serve(served("iris", "auto"), small, feedback=_writer(tmp_path / "store")) as (client, _):
        url = str(client.make_url("")).rstrip("/")
        too_big = await _send("--url", url, "--file", str(labels))
        fits = await _send("--url", url, "--file", str(labels), "--batch-size", "20")
    assert too_big[0] == 1 and "413" in too_big[2] and "--batch-size" in too_big[2]
    assert fits[0] == 0 and "sent 400 labels: accepted 400, rejected 0" in fits[1], fits
    assert len(_written(tmp_path / "store")) == 400
