"""Namespaced object stores against a real S3 server (moto's server with IAM enforced, tests/s3server.py).

Two namespaces, team-a and team-b, each with its own IAM user whose policy allows only that namespace's part of the
store: a bucket each (`s3://gyre-{namespace}/artifacts`) and a prefix each in a shared bucket
(`s3://shared/gyre` -> `s3://shared/gyre/<namespace>`). The Jobs run `gyre profile` and `gyre train` as real
subprocesses with the environment the builders put in the pod spec, the Secret's keys resolved as the kubelet does.
No cluster is needed; the S3 server is started here and the module fails (never skips) if it cannot start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from kubetest import run_job

from gyre.api.dataset import DatasetSpec
from gyre.api.reasons import Reason
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.job import DatasetInput, build_profile_job, build_training_job
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ProfileReport
from gyre.store import ArtifactStore, StoreError
from gyre.training.report import TrainReport
from s3server import Credentials, S3Server, start_s3_server

pytestmark = pytest.mark.integration

NAMESPACES = ("team-a", "team-b")
PER_BUCKET = "s3://gyre-{namespace}/artifacts"
SHARED = "s3://shared/gyre"
SECRET = "gyre-store"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tenants(s3: S3Server) -> dict[str, Credentials]:
    """One IAM user per namespace, allowed only its own bucket and its own prefix of the shared bucket."""
    s3.create_bucket("shared")
    creds = {}
    for ns in NAMESPACES:
        s3.create_bucket(f"gyre-{ns}")
        arns = [f"arn:aws:s3:::gyre-{ns}", f"arn:aws:s3:::gyre-{ns}/*", f"arn:aws:s3:::shared/gyre/{ns}/*"]
        creds[ns] = s3.add_user(f"gyre-{ns}", arns)
    return creds


@pytest.fixture
def as_namespace(s3: S3Server, tenants: dict[str, Credentials], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Switch this process to one namespace's store credentials, as its pods have them."""
    import s3fs

    def switch(ns: str) -> Credentials:
        for key in list(os.environ):
            if key.startswith("AWS_"):
                monkeypatch.delenv(key)
        for key, value in tenants[ns].secret_data(s3.endpoint).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("GYRE_STORE_SECRET", SECRET)
        # fsspec caches filesystems by arguments, not by the credentials in the environment.
        s3fs.S3FileSystem.clear_instance_cache()
        return tenants[ns]

    yield switch
    s3fs.S3FileSystem.clear_instance_cache()


def store_of(url: str, ns: str) -> ArtifactStore:
    return ArtifactStore(OperatorSettings(artifact_store=url, artifact_secret=SECRET).store_url(ns))


def secrets_of(tenants: dict[str, Credentials]) -> list[str]:
    return [c.secret_access_key for c in tenants.values()]


def test_a_namespace_reads_writes_and_lists_its_own_bucket(as_namespace: Any, tmp_path: Path) -> None:
    as_namespace("team-a")
    store = store_of(PER_BUCKET, "team-a")
    assert store.uri("x") == "s3://gyre-team-a/artifacts/x"
    assert store.write_bytes("models/team-a/r/manifest.json", b"{}") == (
        "s3://gyre-team-a/artifacts/models/team-a/r/manifest.json"
    )
    assert store.read_bytes("models/team-a/r/manifest.json") == b"{}"
    assert store.exists("models/team-a/r/manifest.json")
    assert store.list_names("models/team-a/r") == ["manifest.json"]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "model.skops").write_bytes(b"model")
    store.put_dir(tmp_path / "d", "models/team-a/r2")
    store.get_dir("models/team-a/r2", tmp_path / "back")
    assert (tmp_path / "back" / "model.skops").read_bytes() == b"model"


def test_another_namespaces_bucket_is_refused_for_every_operation(
    as_namespace: Any, tenants: dict[str, Credentials]
) -> None:
    as_namespace("team-b")
    store_of(PER_BUCKET, "team-b").write_bytes("datasets/team-b/d/data.parquet", b"b's data")
    as_namespace("team-a")
    theirs = store_of(PER_BUCKET, "team-b")
    attempts = {
        "read": lambda: theirs.read_bytes("datasets/team-b/d/data.parquet"),
        "open": lambda: theirs.open_read("datasets/team-b/d/data.parquet"),
        "write": lambda: theirs.write_bytes("datasets/team-b/d/data.parquet", b"overwritten"),
        "list": lambda: theirs.list_names("datasets/team-b"),
        "exists": lambda: theirs.exists("datasets/team-b/d/data.parquet"),
        "download": lambda: theirs.get_dir("datasets/team-b", "/tmp/never-written"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(StoreError) as refused:
            attempt()
        message = str(refused.value)
        assert refused.value.reason == Reason.STORE_ACCESS_DENIED, what
        assert message.startswith("access denied to s3://gyre-team-b/artifacts/datasets/team-b"), (
            what,
            message,
        )
        assert refused.value.__cause__ is None and refused.value.__suppress_context__, what
        for secret in [*secrets_of(tenants), *(c.access_key_id for c in tenants.values())]:
            assert secret not in message, what
    as_namespace("team-b")
    assert store_of(PER_BUCKET, "team-b").read_bytes("datasets/team-b/d/data.parquet") == b"b's data"


def test_a_shared_bucket_keeps_each_namespace_to_its_prefix(as_namespace: Any) -> None:
    as_namespace("team-b")
    store_of(SHARED, "team-b").write_bytes("models/team-b/r/model.skops", b"b")
    as_namespace("team-a")
    mine = store_of(SHARED, "team-a")
    assert mine.uri("") == "s3://shared/gyre/team-a"
    mine.write_bytes("models/team-a/r/model.skops", b"a")
    assert mine.read_bytes("models/team-a/r/model.skops") == b"a"
    theirs = store_of(SHARED, "team-b")
    for attempt in (
        lambda: theirs.read_bytes("models/team-b/r/model.skops"),
        lambda: theirs.write_bytes("models/team-b/r/model.skops", b"a"),
    ):
        with pytest.raises(StoreError, match=r"^access denied to s3://shared/gyre/team-b/models/team-b/r"):
            attempt()


def test_profile_and_train_jobs_write_to_the_namespaces_own_part(
    s3: S3Server, tenants: dict[str, Credentials], as_namespace: Any, tmp_path: Path
) -> None:
    settings = OperatorSettings(artifact_store=PER_BUCKET, artifact_secret=SECRET)
    secrets = {SECRET: tenants["team-a"].secret_data(s3.endpoint)}
    owner = Owner(kind="Dataset", name="iris", namespace="team-a", uid="u-1", generation=1)
    spec = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "target"})
    profile_job = build_profile_job(owner, spec, settings, revision="g1")
    message, out, err = run_job(profile_job, secrets, tmp_path)
    profiled = ProfileReport.from_termination_message(message)
    assert profiled.phase == "Succeeded", (profiled, err[-2000:])
    assert profiled.data_uri and profiled.data_uri.startswith(
        "s3://gyre-team-a/artifacts/datasets/team-a/iris/"
    )
    assert profiled.fingerprint

    run = Owner(kind="TrainingRun", name="iris-rf", namespace="team-a", uid="u-2", generation=1)
    train_spec = TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "iris"},
            "target": "target",
            "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 5}},
        }
    )
    dataset = DatasetInput(
        name="iris", uri=profiled.data_uri, fingerprint=profiled.fingerprint, version=1, target="target"
    )
    train_job = build_training_job(run, train_spec, settings, dataset)
    t_message, t_out, t_err = run_job(train_job, secrets, tmp_path)
    trained = TrainReport.from_termination_message(t_message)
    assert trained.phase == "Succeeded", (trained, t_err[-2000:])
    assert trained.model_uri == "s3://gyre-team-a/artifacts/models/team-a/iris-rf"

    as_namespace("team-a")
    store = store_of(PER_BUCKET, "team-a")
    assert set(store.list_names("models/team-a/iris-rf")) >= {"manifest.json", "model.skops"}
    profile_rel = (
        profiled.profile_uri.removeprefix("s3://gyre-team-a/artifacts/") if profiled.profile_uri else ""
    )
    profile = store.read_bytes(profile_rel).decode()
    # No credential in the pod specs, the reports (status and Events are built from them), the logs or the profile.
    pod_specs = yaml.safe_dump([profile_job, train_job])
    for text in (pod_specs, message, out, err, t_message, t_out, t_err, profile):
        for secret in secrets_of(tenants):
            assert secret not in text


def test_a_dataset_source_in_another_namespace_is_refused(
    s3: S3Server, tenants: dict[str, Credentials], as_namespace: Any, tmp_path: Path
) -> None:
    as_namespace("team-b")
    store_of(PER_BUCKET, "team-b").write_bytes("private.csv", b"a,b\n1,2\n")
    settings = OperatorSettings(artifact_store=PER_BUCKET, artifact_secret=SECRET)
    owner = Owner(kind="Dataset", name="stolen", namespace="team-a", uid="u-3", generation=1)
    source = "s3://gyre-team-b/artifacts/private.csv"
    spec = DatasetSpec.model_validate({"source": {"uri": source, "format": "csv"}})
    job = build_profile_job(owner, spec, settings, revision="g1")
    message, out, err = run_job(job, {SECRET: tenants["team-a"].secret_data(s3.endpoint)}, tmp_path)
    report = ProfileReport.from_termination_message(message)
    assert report.phase == "Failed" and report.error and source in report.error
    assert "Access Denied" in report.error or "Forbidden" in report.error
    for text in (message, out, err):
        for secret in secrets_of(tenants):
            assert secret not in text


def test_a_missing_secret_fails_the_job_at_once_naming_it(
    s3: S3Server, tenants: dict[str, Credentials], tmp_path: Path
) -> None:
    settings = OperatorSettings(artifact_store=PER_BUCKET, artifact_secret=SECRET)
    owner = Owner(kind="Dataset", name="iris", namespace="team-a", uid="u-4", generation=1)
    spec = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}})
    message, _, err = run_job(build_profile_job(owner, spec, settings, revision="g1"), {}, tmp_path)
    report = ProfileReport.from_termination_message(message)
    assert report.phase == "Failed" and report.reason == Reason.STORE_CREDENTIALS_MISSING, (
        report,
        err[-2000:],
    )
    assert report.error and f"'{SECRET}'" in report.error and "AWS_ACCESS_KEY_ID" in report.error


def test_credentials_of_one_namespace_are_not_another_namespaces(
    s3: S3Server, tenants: dict[str, Credentials]
) -> None:
    """The server really enforces: the same request succeeds for the bucket's owner and fails for the other."""
    s3.client("s3", tenants["team-a"]).put_object(Bucket="gyre-team-a", Key="probe", Body=b"1")
    other = s3.client("s3", tenants["team-b"])
    with pytest.raises(ClientError, match=r"AccessDenied|Forbidden|403"):
        other.get_object(Bucket="gyre-team-a", Key="probe")
    with pytest.raises(ClientError, match=r"AccessDenied|Forbidden|403"):
        other.list_objects_v2(Bucket="gyre-team-a")
    unsigned = Credentials("AKIANOTAKEY000000000", "not-a-secret")
    with pytest.raises(ClientError, match=r"InvalidAccessKeyId|403"):
        s3.client("s3", unsigned).get_object(Bucket="gyre-team-a", Key="probe")
