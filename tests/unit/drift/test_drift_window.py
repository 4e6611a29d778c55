"""The prediction log: the writer's exact format, and the window reader's maxRows / maxAge semantics."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gyre.drift.check import DriftConfig
from gyre.drift.profile import build_profile
from gyre.drift.window import (
    WindowInfo,
    check_window,
    iter_prediction_batches,
    read_window,
    write_prediction_batch,
)

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NS, DEP = "ml", "iris-rf"


def _rows(ts: list[float], x: list[float], color: str = "red") -> list[dict[str, Any]]:
    return [
        {
            "ts": t,
            "model": "iris-rf",
            "version": "3",
            "inputs": {"x": v, "color": color},
            "outputs": [0.1, 0.9],
        }
        for t, v in zip(ts, x, strict=True)
    ]


@pytest.fixture
def root(tmp_path: Path) -> str:
    return f"file://{tmp_path}"


def test_writer_produces_the_documented_layout_and_format(root: str, tmp_path: Path) -> None:
    rows = _rows([NOW - 2, NOW - 1], [1.5, float("nan")])
    rows[0]["inputs"]["n"] = np.int64(3)
    path = write_prediction_batch(root, NS, DEP, "iris-rf-abc12", rows, now_ms=int(NOW * 1000))
    assert path == f"predictions/{NS}/{DEP}/2027-01-15/{int(NOW * 1000)}-iris-rf-abc12.jsonl.gz"
    lines = gzip.decompress((tmp_path / path).read_bytes()).decode().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first == {
        "ts": NOW - 2,
        "model": "iris-rf",
        "version": "3",
        "inputs": {"x": 1.5, "color": "red", "n": 3},
        "outputs": [0.1, 0.9],
    }
    assert second["inputs"]["x"] is None  # NaN is written as null, read back as missing
    assert write_prediction_batch(root, NS, DEP, "p", []) is None
    # No temp files left behind by the atomic write.
    assert [p.name for p in (tmp_path / path).parent.iterdir()] == [Path(path).name]


def test_file_stamp_is_never_older_than_its_rows(root: str) -> None:
    path = write_prediction_batch(root, NS, DEP, "p", _rows([NOW + 5.5], [1.0]), now_ms=int(NOW * 1000))
    assert path is not None and path.rsplit("/", 1)[1].startswith(str(int((NOW + 5.5) * 1000)))


def _fill(root: str) -> None:
    # Three flushes, one per hour back from NOW, from two pods; 100 rows each.
    for hours_ago, pod in ((0, "a"), (1, "b"), (2, "a")):
        end = NOW - hours_ago * 3600
        ts = list(np.linspace(end - 600, end, 100))
        write_prediction_batch(
            root, NS, DEP, pod, _rows(ts, [float(hours_ago)] * 100), now_ms=int(end * 1000)
        )


def test_max_rows_takes_the_newest_rows(root: str) -> None:
    _fill(root)
    info = WindowInfo()
    batches = list(iter_prediction_batches(root, NS, DEP, max_rows=150, now=NOW, info=info))
    xs = [row["inputs"]["x"] for b in batches for row in b.rows]
    assert len(xs) == 150
    assert xs.count(0.0) == 100 and xs.count(1.0) == 50
    newest_of_second = sorted(r["ts"] for r in batches[1].rows)
    assert newest_of_second[0] > NOW - 3600 - 600 + 5 * 60  # the newest half of that file
    assert info.hit_max_rows and info.rows == 150 and info.files_read == 2


def test_max_age_drops_old_files_and_rows(root: str) -> None:
    _fill(root)
    info = WindowInfo()
    rows = [
        r
        for b in iter_prediction_batches(root, NS, DEP, max_age=3600 + 300, now=NOW, info=info)
        for r in b.rows
    ]
    assert {r["inputs"]["x"] for r in rows} == {0.0, 1.0}
    assert all(r["ts"] >= NOW - 3900 for r in rows)
    assert 100 < len(rows) < 200  # part of the 1-hour-old file is older than the window
    assert info.files_read == 2  # the 2-hour-old file is skipped by its name alone
    assert info.oldest_ts is not None and info.oldest_ts >= NOW - 3900
    assert info.newest_ts == NOW


def test_window_spans_days_newest_first(root: str) -> None:
    midnight = 1_800_057_600.0  # 2027-01-16T00:00:00Z
    write_prediction_batch(
        root, NS, DEP, "a", _rows([midnight - 10], [1.0]), now_ms=int((midnight - 5) * 1000)
    )
    write_prediction_batch(
        root, NS, DEP, "a", _rows([midnight + 10], [2.0]), now_ms=int((midnight + 15) * 1000)
    )
    batches = list(iter_prediction_batches(root, NS, DEP, now=midnight + 60))
    assert [b.path.split("/")[3] for b in batches] == ["2027-01-16", "2027-01-15"]
    assert (
        next(iter_prediction_batches(root, NS, DEP, max_rows=1, now=midnight + 60)).rows[0]["inputs"]["x"]
        == 2.0
    )


def test_corrupt_and_foreign_files_are_skipped(root: str, tmp_path: Path) -> None:
    _fill(root)
    day = tmp_path / f"predictions/{NS}/{DEP}/2027-01-15"
    (day / f"{int(NOW * 1000) - 1}-broken.jsonl.gz").write_bytes(b"\x1f\x8b not really gzip")
    (day / "README.txt").write_text("not a batch")
    (day / f"{int(NOW * 1000) - 2}-badrow.jsonl.gz").write_bytes(gzip.compress(b'{"ts": 1}\n'))
    info = WindowInfo()
    rows = [r for b in iter_prediction_batches(root, NS, DEP, now=NOW, info=info) for r in b.rows]
    assert len(rows) == 300
    assert info.files_skipped == 1 and "broken" in info.skipped_paths[0]
    assert info.bad_rows == 1


def test_empty_store_reads_nothing(root: str) -> None:
    assert list(iter_prediction_batches(root, NS, DEP)) == []
    with pytest.raises(ValueError, match="max_rows"):
        list(iter_prediction_batches(root, NS, DEP, max_rows=0))


def test_read_window_and_check_window_end_to_end(root: str) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"x": rng.normal(0, 1, 5000), "color": rng.choice(["red", "blue"], 5000), "unused": 1.0}
    )
    profile = build_profile(reference)
    for i in range(5):
        end = NOW - i * 60
        ts = list(np.linspace(end - 50, end, 200))
        rows = _rows(ts, list(rng.normal(1.0, 1, 200)), color="red")
        write_prediction_batch(root, NS, DEP, f"pod-{i % 2}", rows, now_ms=int(end * 1000))
    current, info = read_window(profile, root, NS, DEP, max_rows=600, now=NOW)
    assert current.rows == info.rows == 600
    assert current.count("x") == 600
    assert current.missing("unused") == 600  # the server never logs it

    report = check_window(
        profile, root, NS, DEP, max_rows=600, now=NOW, config=DriftConfig(columns=["x", "color"])
    )
    assert report.verdict == "drift"
    assert set(report.drifted_columns) == {"x", "color"}
    assert report.window is not None and report.window["rows"] == 600 and report.window["filesRead"] == 3


def test_older_days_are_not_listed_once_the_window_is_full(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gyre.store.store import ArtifactStore

    store = ArtifactStore(root)
    for days_ago in range(3):
        end = NOW - days_ago * 86_400
        write_prediction_batch(store, NS, DEP, "a", _rows([end - 1, end], [1.0, 2.0]), now_ms=int(end * 1000))
    listed: list[str] = []
    real_ls = store.fs.ls

    def spy(path: str, detail: bool = False) -> Any:
        listed.append(path.rstrip("/").rsplit("/", 1)[-1])
        return real_ls(path, detail=detail)

    monkeypatch.setattr(store.fs, "ls", spy)
    rows = [r for b in iter_prediction_batches(store, NS, DEP, max_rows=2, now=NOW) for r in b.rows]
    assert len(rows) == 2
    assert listed == [DEP, "2027-01-15"]
