"""Reading labels in every format of the feedback contract, and joining them with the prediction log by id."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from gyre.drift.window import write_prediction_batch
from gyre.performance.join import join_feedback, join_rows, label_key
from gyre.performance.labels import LabelRecord, read_labels
from gyre.store.layout import feedback_batch_path, feedback_dir

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NS, DEP = "ml", "churn"


def _prediction(ident: str, ts: float, predict: Any, proba: list[float] | None = None) -> dict[str, Any]:
    outputs: dict[str, Any] = {"predict": predict}
    if proba is not None:
        outputs["predict_proba"] = proba
    return {"id": ident, "ts": ts, "model": "churn", "version": "2", "inputs": {"x": 1.0}, "outputs": outputs}


def _write_feedback_batch(root: Path, unix_ms: int, rows: list[dict[str, Any]]) -> None:
    path = root / feedback_batch_path(NS, DEP, unix_ms, "srv-0")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows)))


def _bulk(root: Path, name: str) -> Path:
    path = root / feedback_dir(NS, DEP) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_labels_are_read_from_server_batches_and_every_bulk_format(tmp_path: Path) -> None:
    _write_feedback_batch(
        tmp_path, int(NOW * 1000), [{"id": "a", "label": 1, "ts": NOW - 5}, {"id": "b", "label": 0}]
    )
    csv = _bulk(tmp_path, "drop/2027-01-14.csv")
    csv.write_text("id,label,ts\n007,1,1799999000\nc,0,\n")
    pd.DataFrame({"id": ["d"], "label": [1]}).to_csv(
        _bulk(tmp_path, "more.csv.gz"), index=False, compression="gzip"
    )
    pd.DataFrame(
        {"id": ["e", "f"], "label": ["yes", "no"], "ts": pd.to_datetime([NOW, NOW - 1], unit="s")}
    ).to_parquet(_bulk(tmp_path, "x.parquet"))
    _bulk(tmp_path, "iso.csv").write_text("id,label,ts\ng,1,2027-01-15T07:59:00Z\nh,0,2027-01-15 07:58:00\n")
    _bulk(tmp_path, "README.md").write_text("ignored")
    os.utime(csv, (NOW - 100, NOW - 100))

    read = read_labels(str(tmp_path), NS, DEP)

    by_id = {r.id: r for r in read.records}
    assert sorted(by_id) == ["007", "a", "b", "c", "d", "e", "f", "g", "h"]  # "007" stays a string id, not 7
    assert by_id["a"].ts == NOW - 5
    assert by_id["b"].ts == NOW  # a server batch row without ts: the batch's flush time
    assert by_id["007"].ts == 1799999000
    assert by_id["c"].ts == NOW - 100  # a bulk row without ts: the file's modification time
    assert (
        by_id["e"].label == "yes" and by_id["e"].ts == NOW and by_id["f"].ts == NOW - 1
    )  # a timestamp column
    assert by_id["g"].ts == NOW - 60 and by_id["h"].ts == NOW - 120  # ISO 8601 text; naive is UTC
    assert read.files_read == 5 and read.files_skipped == 0


def test_unreadable_label_files_and_rows_without_id_are_counted_not_fatal(tmp_path: Path) -> None:
    _bulk(tmp_path, "broken.jsonl.gz").write_bytes(b"not gzip")
    _bulk(tmp_path, "wrong-columns.csv").write_text("prediction,truth\na,1\n")
    _bulk(tmp_path, "ok.csv").write_text("id,label\n,1\na,1\n")

    read = read_labels(str(tmp_path), NS, DEP)

    assert [r.id for r in read.records] == ["a"]
    assert read.files_skipped == 2 and read.files_read == 1 and read.rows_without_id == 1
    assert read_labels(str(tmp_path), NS, "nothing-here").records == []


def test_join_keeps_the_first_label_and_counts_unknown_duplicate_and_wrong_type_labels() -> None:
    predictions = [_prediction(f"r{i}", NOW - 100 + i, 1, [0.3, 0.7]) for i in range(5)]
    predictions.append(
        {"ts": NOW, "inputs": {"x": 2.0}, "outputs": {"predict": 0}}
    )  # logged before ids existed
    labels = [
        LabelRecord("r0", 1, NOW - 10, "f"),
        LabelRecord("r0", 0, NOW - 5, "f"),  # later: a duplicate, the first label (1) wins
        LabelRecord("r1", "0", NOW - 50, "f"),  # "0" is class 0
        LabelRecord("r2", "cat", NOW, "f"),  # wrong type: the classes are numbers
        LabelRecord("r3", None, NOW, "f"),  # wrong type: null
        LabelRecord("zzz", 1, NOW, "f"),  # unknown id
    ]

    joined = join_rows(predictions, labels, task="classification", classes=[0, 1])

    assert joined.ids == ["r0", "r1"]
    assert joined.labels == [1, 0]
    assert joined.predictions == [1, 1]
    assert joined.probabilities == [[0.3, 0.7], [0.3, 0.7]]
    s = joined.stats
    assert (s.prediction_rows, s.predictions_without_id, s.label_rows) == (6, 1, 6)
    assert (s.labelled_rows, s.unknown_ids, s.duplicate_labels, s.wrong_type_labels) == (2, 1, 1, 2)
    # Label delays: r0 predicted at NOW-100, labelled NOW-10 (90 s); r1 at NOW-99, labelled NOW-50 (49 s).
    assert s.label_delay_p50_seconds == 49.0 and s.label_delay_max_seconds == 90.0


def test_first_label_is_the_earliest_observed_whatever_the_file_order() -> None:
    labels = [LabelRecord("a", 0, NOW, "late.csv"), LabelRecord("a", 1, NOW - 60, "early.csv")]
    joined = join_rows([_prediction("a", NOW - 100, 1)], labels, task="classification", classes=[0, 1])
    assert joined.labels == [1] and joined.stats.duplicate_labels == 1


def test_regression_labels_must_be_finite_numbers() -> None:
    predictions = [_prediction(i, NOW, 2.5) for i in ("a", "b", "c", "d")]
    labels = [
        LabelRecord("a", "3.5", NOW, "f"),
        LabelRecord("b", "high", NOW, "f"),
        LabelRecord("c", True, NOW, "f"),
        LabelRecord("d", float("nan"), NOW, "f"),
    ]
    joined = join_rows(predictions, labels, task="regression")
    assert joined.labels == [3.5]
    assert joined.stats.wrong_type_labels == 3


def test_classes_are_inferred_from_predictions_without_a_manifest_and_unseen_classes_are_kept() -> None:
    predictions = [_prediction("a", NOW, "spam"), _prediction("b", NOW, "ham"), _prediction("c", NOW, "ham")]
    labels = [
        LabelRecord("a", "ham", NOW, "f"),
        LabelRecord("b", "eggs", NOW, "f"),
        LabelRecord("c", 3, NOW, "f"),
    ]
    joined = join_rows(predictions, labels, task="classification")
    assert joined.labels == [
        "ham",
        "eggs",
    ]  # an unseen class of the right type is a label the model got wrong
    assert joined.stats.wrong_type_labels == 1


def test_label_key_treats_equal_classes_in_different_spellings_as_one() -> None:
    assert label_key(1) == label_key(1.0) == label_key("1") == label_key(" 1 ")
    assert label_key(True) == label_key("true") != label_key(1)
    assert label_key(None) is None and label_key(float("nan")) is None


def test_join_feedback_reads_the_window_and_the_labels_from_the_store(tmp_path: Path) -> None:
    old = [_prediction(f"old{i}", NOW - 7200 + i, 0) for i in range(3)]
    new = [_prediction(f"new{i}", NOW - 60 + i, i % 2, [0.5, 0.5]) for i in range(4)]
    write_prediction_batch(str(tmp_path), NS, DEP, "srv-0", old, now_ms=int((NOW - 7000) * 1000))
    write_prediction_batch(str(tmp_path), NS, DEP, "srv-0", new, now_ms=int((NOW - 50) * 1000))
    _write_feedback_batch(
        tmp_path, int(NOW * 1000), [{"id": f"new{i}", "label": 1, "ts": NOW - 30} for i in range(4)]
    )
    _bulk(tmp_path, "old.csv").write_text("id,label\nold0,0\n")
    os.utime(_bulk(tmp_path, "old.csv"), (NOW - 6000, NOW - 6000))

    joined = join_feedback(
        str(tmp_path), NS, DEP, task="classification", classes=[0, 1], max_age=3600, now=NOW
    )

    assert sorted(joined.ids) == ["new0", "new1", "new2", "new3"]
    assert len(joined) == 4 and joined.stats.unknown_ids == 0  # old.csv predates the window: not read
    frame_out = joined.to_frame(target="churned")
    assert list(frame_out.columns) == [
        "x",
        "churned",
        "prediction",
        "prediction_id",
        "prediction_ts",
        "label_ts",
        "model_version",
    ]
    assert frame_out["churned"].tolist() == [1, 1, 1, 1]


def test_to_frame_refuses_a_target_named_like_a_feature() -> None:
    joined = join_rows([_prediction("a", NOW, 1)], [LabelRecord("a", 1, NOW, "f")], task="classification")
    with pytest.raises(ValueError, match="also an input feature"):
        joined.to_frame(target="x")
