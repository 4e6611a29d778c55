"""The artifact store: URL resolution, layout, atomic writes, sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gyre.store import (
    ArtifactStore,
    StoreError,
    dataset_data_path,
    fingerprint_digest,
    model_dir,
    prediction_batch_path,
    resolve_store_url,
    sha256_file,
    trial_dir,
    write_termination_message,
)

FP = "sha256:" + "ab" * 32


def test_pvc_url_resolves_to_the_mount_inside_pods() -> None:
    assert resolve_store_url("pvc://gyre-artifacts") == "file:///var/lib/gyre/artifacts"
    assert resolve_store_url("pvc://claim/team/a") == "file:///var/lib/gyre/artifacts/team/a"
    assert resolve_store_url("pvc://claim/x", pvc_mount="/mnt") == "file:///mnt/x"
    assert resolve_store_url("s3://bucket/prefix/") == "s3://bucket/prefix"
    with pytest.raises(StoreError):
        resolve_store_url("pvc://")
    with pytest.raises(StoreError):
        resolve_store_url("relative/path")


def test_layout_paths_follow_the_architecture() -> None:
    assert dataset_data_path("ns", "iris", FP) == f"datasets/ns/iris/{'ab' * 32}/data.parquet"
    assert model_dir("ns", "run") == "models/ns/run"
    assert trial_dir("ns", "run", 3) == "models/ns/run/trials/3"
    assert (
        prediction_batch_path("ns", "dep", 86_400_000, "pod-1")
        == "predictions/ns/dep/1970-01-02/86400000-pod-1.jsonl.gz"
    )
    assert fingerprint_digest(FP) == "ab" * 32
    with pytest.raises(ValueError):
        model_dir("../etc", "x")
    with pytest.raises(ValueError):
        fingerprint_digest("md5:abc")


def test_local_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path}")
    uri = store.write_bytes("a/b/c.txt", b"hello")
    assert uri == f"file://{tmp_path}/a/b/c.txt"
    assert store.read_bytes("a/b/c.txt") == b"hello"
    with pytest.raises(RuntimeError), store.open_write("a/b/c.txt") as fh:
        fh.write(b"partial")
        raise RuntimeError("crash mid-write")
    assert store.read_bytes("a/b/c.txt") == b"hello"
    assert os.listdir(tmp_path / "a" / "b") == ["c.txt"]
    assert store.sha256("a/b/c.txt") == hashlib.sha256(b"hello").hexdigest()
    assert sha256_file(tmp_path / "a/b/c.txt") == hashlib.sha256(b"hello").hexdigest()


def test_paths_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        ArtifactStore(f"file://{tmp_path}").path("a/../../etc/passwd")


def test_memory_store_round_trips_directories(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "manifest.json").write_text("{}")
    (src / "model.skops").write_bytes(b"m")
    (src / "sub" / "x").write_bytes(b"x")
    store = ArtifactStore("memory://gyre-test-store")
    uri = store.put_dir(src, "models/ns/run", last=("manifest.json",))
    assert uri.startswith("memory://")
    assert store.exists("models/ns/run/manifest.json")
    out = tmp_path / "out"
    store.get_dir("models/ns/run", out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "manifest.json",
        "model.skops",
        "sub/x",
    ]
    with pytest.raises(StoreError):
        store.read_bytes("missing")


def test_termination_message_goes_to_the_configured_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(target))
    assert write_termination_message('{"phase":"Succeeded"}', echo=False)
    assert target.read_text() == '{"phase":"Succeeded"}'
