"""The store side of namespaced object stores: per-namespace roots, credentials check, refusals as StoreError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from gyre.api.reasons import Reason
from gyre.store import ArtifactStore, StoreError, check_store_credentials, namespace_store_url


def test_object_store_urls_are_split_per_namespace() -> None:
    assert namespace_store_url("s3://bucket/prefix", "team-a") == "s3://bucket/prefix/team-a"
    assert namespace_store_url("s3://bucket/prefix/", "team-a") == "s3://bucket/prefix/team-a"
    assert namespace_store_url("s3://bucket", "team-a") == "s3://bucket/team-a"
    assert namespace_store_url("gs://gyre-{namespace}/x", "team-a") == "gs://gyre-team-a/x"
    assert namespace_store_url("pvc://claim/sub", "team-a") == "pvc://claim/sub"
    assert namespace_store_url("file:///srv/s", "team-a") == "file:///srv/s"


@pytest.mark.parametrize("bad", ["", "Team-A", "a/b", "..", "a" * 64, "-a"])
def test_a_namespace_that_is_no_kubernetes_name_is_refused(bad: str) -> None:
    with pytest.raises(StoreError, match="not a valid Kubernetes namespace"):
        namespace_store_url("s3://bucket/p", bad)


def test_a_missing_secret_is_named_before_any_request() -> None:
    with pytest.raises(StoreError) as missing:
        check_store_credentials(
            "s3://b/p/ns", {"GYRE_STORE_SECRET": "gyre-store", "AWS_ACCESS_KEY_ID": "AKIA"}
        )
    assert missing.value.reason == Reason.STORE_CREDENTIALS_MISSING
    assert "'gyre-store'" in str(missing.value) and "AWS_SECRET_ACCESS_KEY" in str(missing.value)
    assert "AKIA" not in str(missing.value)
    with pytest.raises(StoreError, match=r"service-account\.json"):
        check_store_credentials(
            "gs://b/p", {"GYRE_STORE_SECRET": "g", "GOOGLE_APPLICATION_CREDENTIALS": "/nope"}
        )
    full = {"GYRE_STORE_SECRET": "s", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    check_store_credentials("s3://b/p", full)
    check_store_credentials("s3://b/p", {})  # no Secret configured: the platform's own identity
    check_store_credentials("file:///x", {"GYRE_STORE_SECRET": "s"})


def test_gs_credentials_file_present_passes(tmp_path: Path) -> None:
    key = tmp_path / "service-account.json"
    key.write_text("{}")
    check_store_credentials(
        "gs://b/p", {"GYRE_STORE_SECRET": "g", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    )


class DenyingFileSystem(MemoryFileSystem):
    """What s3fs and gcsfs do on AccessDenied: raise PermissionError (here with a credential in it)."""

    def _deny(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("Access Denied for key AKIASECRET / wJalrXUtnFEMI")

    cat_file = ls = exists = find = _open = _deny


def test_a_refusal_is_a_store_error_naming_the_path_and_no_credential() -> None:
    store = ArtifactStore("memory://root")
    store.fs = DenyingFileSystem()
    for attempt in (
        lambda: store.read_bytes("datasets/other/d/data.parquet"),
        lambda: store.exists("datasets/other/d/data.parquet"),
        lambda: store.list_names("datasets/other/d"),
        lambda: store.open_read("datasets/other/d/data.parquet"),
        lambda: store.write_bytes("datasets/other/d/data.parquet", b"x"),
        lambda: store.get_dir("datasets/other/d", "/tmp/never"),
    ):
        with pytest.raises(StoreError) as refused:
            attempt()
        assert str(refused.value).startswith("access denied to memory:///root/datasets/other/d")
        assert refused.value.reason == Reason.STORE_ACCESS_DENIED
        assert "AKIASECRET" not in str(refused.value) and refused.value.__suppress_context__
