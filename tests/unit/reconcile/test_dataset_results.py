"""How a profiling report becomes Dataset status: versions, history, failures (pure part of the controller)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetStatus
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.reconcile.dataset import apply_profile_result

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def fp(ch: str) -> str:
    return "sha256:" + ch * 64


def ok(fingerprint: str, rows: int = 150) -> ProfileReport:
    return ProfileReport(
        phase="Succeeded",
        fingerprint=fingerprint,
        rows=rows,
        columns=[
            ColumnInfo(name="x", kind="numeric", dtype="float64"),
            ColumnInfo(name="y", kind="binary", dtype="int64"),
        ],
        data_uri=f"file:///store/datasets/ml/d/{fingerprint[7:]}/data.parquet",
        profile_uri=f"file:///store/datasets/ml/d/{fingerprint[7:]}/profile.json",
    )


def apply(
    status: DatasetStatus, report: ProfileReport, *, refresh: bool = False, limit: int = 10, at: datetime = T0
):
    return apply_profile_result(
        status, report, history_limit=limit, generation=1, finished_at=at, refresh=refresh
    )


def test_first_profile_is_version_1_and_ready() -> None:
    status, reason, message = apply(DatasetStatus(phase="Profiling"), ok(fp("a")))
    assert (status.phase, status.version, status.fingerprint, status.rows) == ("Ready", 1, fp("a"), 150)
    assert status.column_count == 2 and status.columns is not None and status.columns[1].kind == "binary"
    assert status.data_uri is not None and status.data_uri.endswith("/data.parquet")
    assert reason == "NewVersion"
    assert "version 1: 150 rows, 2 columns" in message
    ready = find_condition(status.conditions or [], "Ready")
    assert ready is not None and (ready.status, ready.reason) == ("True", "Profiled")
    assert status.history is not None and [h.version for h in status.history] == [1]


def test_version_moves_only_when_the_fingerprint_changes() -> None:
    s1, _, _ = apply(DatasetStatus(), ok(fp("a")))
    s2, reason, _ = apply(s1, ok(fp("a")), refresh=True, at=T0 + timedelta(hours=1))
    assert (s2.version, reason) == (1, "Unchanged")
    assert s2.history == s1.history
    s3, reason, _ = apply(s2, ok(fp("b"), rows=160), refresh=True, at=T0 + timedelta(hours=2))
    assert (s3.version, s3.rows, reason) == (2, 160, "NewVersion")
    assert s3.history is not None and [h.fingerprint for h in s3.history] == [fp("b"), fp("a")]


def test_reading_the_same_job_twice_changes_nothing() -> None:
    s1, _, _ = apply(DatasetStatus(), ok(fp("a")))
    again, _, _ = apply(s1, ok(fp("a")))
    assert again == s1


def test_history_is_capped() -> None:
    status = DatasetStatus()
    for ch in "abcdef":
        status, _, _ = apply(status, ok(fp(ch)), limit=3)
    assert status.version == 6
    assert status.history is not None and [h.version for h in status.history] == [6, 5, 4]


def test_failed_profile_explains_itself() -> None:
    report = ProfileReport(phase="Failed", reason="TargetMissing", error="column 'label' not in the data")
    status, reason, message = apply(DatasetStatus(phase="Profiling"), report)
    assert status.phase == "Failed"
    ready = find_condition(status.conditions or [], "Ready")
    assert ready is not None and (ready.status, ready.reason, ready.message) == (
        "False",
        "TargetMissing",
        "column 'label' not in the data",
    )
    assert (reason, message) == ("TargetMissing", "column 'label' not in the data")


def test_failed_refresh_keeps_the_current_version_ready() -> None:
    good, _, _ = apply(DatasetStatus(), ok(fp("a")))
    report = ProfileReport(phase="Failed", reason="SourceUnreadable", error="403 Forbidden")
    status, _, _ = apply(good, report, refresh=True)
    assert (status.phase, status.version) == ("Ready", 1)
    refreshing = find_condition(status.conditions or [], "Refreshing")
    assert refreshing is not None and (refreshing.status, refreshing.reason) == ("False", "SourceUnreadable")
