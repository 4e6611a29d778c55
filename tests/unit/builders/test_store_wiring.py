"""Namespaced object stores in pod specs: each namespace's own store root, its own Secret, references only."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gyre.api.dataset import DatasetSpec
from gyre.api.driftmonitor import DriftMonitorSpec
from gyre.api.modeldeployment import ModelDeploymentSpec
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.drift import build_check_job
from gyre.builders.job import DatasetInput, build_profile_job, build_training_job
from gyre.builders.meta import Owner
from gyre.builders.pods import store_pod_parts
from gyre.builders.serving import ResolvedModel, build_server_deployment
from gyre.builders.settings import OperatorSettings

S3 = OperatorSettings(artifact_store="s3://bucket/gyre", artifact_secret="gyre-store")
CREDENTIAL_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def pod_containers(settings: OperatorSettings, namespace: str) -> dict[str, dict[str, Any]]:
    """The container of every workload a namespace gets: profiler, trainer, drift checker, model server."""

    def owner(kind: str, name: str) -> Owner:
        return Owner(kind=kind, name=name, namespace=namespace, uid=f"uid-{name}")

    dataset = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}})
    run = TrainingRunSpec.model_validate(
        {"datasetRef": {"name": "iris"}, "target": "target", "estimator": {"kind": "RandomForestClassifier"}}
    )
    monitor = DriftMonitorSpec.model_validate(
        {"deploymentRef": {"name": "iris"}, "schedule": {"interval": "1m"}}
    )
    serving = ModelDeploymentSpec.model_validate({"model": {"trainingRunRef": {"name": "iris-rf"}}})
    jobs = {
        "profile": build_profile_job(owner("Dataset", "iris"), dataset, settings, revision="g1"),
        "train": build_training_job(
            owner("TrainingRun", "iris-rf"),
            run,
            settings,
            DatasetInput("iris", "s3://x/d", "sha256:" + "a" * 64),
        ),
        "check": build_check_job(
            owner("DriftMonitor", "iris"),
            monitor,
            settings,
            check=1,
            deployment="iris",
            profile_path="datasets/x/profile.json",
            config_json="{}",
        ),
        "serve": build_server_deployment(
            owner("ModelDeployment", "iris"),
            serving,
            settings,
            ResolvedModel(uri="s3://x/m"),
            track="stable",
            replicas=1,
        ),
    }
    return {name: job["spec"]["template"]["spec"]["containers"][0] for name, job in jobs.items()}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


@pytest.mark.parametrize("namespace", ["team-a", "team-b"])
def test_every_workload_gets_its_namespaces_root_and_secret_as_references(namespace: str) -> None:
    for name, container in pod_containers(S3, namespace).items():
        env = env_of(container)
        assert env["GYRE_ARTIFACT_STORE"]["value"] == f"s3://bucket/gyre/{namespace}", name
        if "--store" in container["args"]:
            assert (
                container["args"][container["args"].index("--store") + 1] == f"s3://bucket/gyre/{namespace}"
            )
        assert env["GYRE_STORE_SECRET"]["value"] == "gyre-store", name
        assert env["AWS_EC2_METADATA_DISABLED"]["value"] == "true", name
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            ref = env[key]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "gyre-store", "key": key, "optional": True}, name
            assert "value" not in env[key], name
        # Only the store's keys: nothing else of the Secret reaches the process environment.
        assert "envFrom" not in container, name


def test_a_placeholder_in_the_url_gives_each_namespace_its_own_bucket() -> None:
    settings = OperatorSettings(artifact_store="s3://gyre-{namespace}/artifacts", artifact_secret="s")
    assert settings.store_url("team-a") == "s3://gyre-team-a/artifacts"
    container = pod_containers(settings, "team-b")["profile"]
    assert env_of(container)["GYRE_ARTIFACT_STORE"]["value"] == "s3://gyre-team-b/artifacts"
    assert OperatorSettings(artifact_store="gs://b/p/").store_url("ml") == "gs://b/p/ml"
    with pytest.raises(ValidationError, match="only s3:// and gs:// URLs take"):
        OperatorSettings(artifact_store="file:///srv/{namespace}")


def test_pvc_and_file_stores_are_unchanged() -> None:
    pvc = OperatorSettings(artifact_store="pvc://gyre-artifacts/sub")
    assert pvc.store_url("team-a") == "pvc://gyre-artifacts/sub"
    parts = store_pod_parts(pvc, "team-a")
    assert {e["name"] for e in parts.env} == {"GYRE_ARTIFACT_STORE", "GYRE_PVC_MOUNT"}
    assert parts.volumes == [{"name": "artifacts", "persistentVolumeClaim": {"claimName": "gyre-artifacts"}}]
    # A Secret setting does not leak credentials into pvc:// pods.
    with_secret = store_pod_parts(OperatorSettings(artifact_store="pvc://c", artifact_secret="s"), "team-a")
    assert not any(e["name"].startswith("AWS_") or "valueFrom" in e for e in with_secret.env)
    local = OperatorSettings(artifact_store="file:///srv/store")
    assert local.store_url("team-a") == "file:///srv/store"


def test_an_object_store_without_a_secret_setting_references_none() -> None:
    parts = store_pod_parts(OperatorSettings(artifact_store="s3://bucket/gyre"), "team-a")
    assert [e["name"] for e in parts.env] == ["GYRE_ARTIFACT_STORE"]
    assert parts.env[0]["value"] == "s3://bucket/gyre/team-a"


def test_gs_credentials_are_a_read_only_secret_file() -> None:
    parts = store_pod_parts(OperatorSettings(artifact_store="gs://bucket/gyre", artifact_secret="gcs"), "ml")
    env = {e["name"]: e for e in parts.env}
    assert (
        env["GOOGLE_APPLICATION_CREDENTIALS"]["value"] == "/var/run/secrets/gyre/store/service-account.json"
    )
    assert env["GYRE_STORE_SECRET"]["value"] == "gcs"
    [volume] = parts.volumes
    assert volume["secret"] == {
        "secretName": "gcs",
        "items": [{"key": "service-account.json", "path": "service-account.json"}],
        "optional": True,
    }
    assert parts.mounts == [
        {"name": "store-credentials", "mountPath": "/var/run/secrets/gyre/store", "readOnly": True}
    ]


def test_pod_specs_never_hold_a_secret_value() -> None:
    # The builders only ever see the Secret's name; every credential key is a reference.
    dumped = yaml.safe_dump(pod_containers(S3, "team-a"))
    for container in pod_containers(S3, "team-a").values():
        for item in container["env"]:
            if item["name"] in CREDENTIAL_KEYS:
                assert set(item) == {"name", "valueFrom"}
    assert "gyre-store" in dumped
