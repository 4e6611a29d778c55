"""Names, labels and operator settings that every child object depends on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gyre.builders.meta import LABEL_INSTANCE, Owner, child_name, label_value, labels_for
from gyre.builders.pods import build_artifact_pvc, store_pod_parts
from gyre.builders.settings import OperatorSettings


def test_child_names_are_deterministic_and_fit_in_a_label() -> None:
    assert child_name("iris", "train") == "iris-train"
    long = "x" * 80
    name = child_name(long, "train")
    assert len(name) <= 63 and name.endswith("-train")
    assert name == child_name(long, "train")
    assert child_name("y" + long, "train") != name
    assert len(label_value(long)) <= 63 and label_value("short") == "short"


def test_labels_carry_the_owner_and_the_instance() -> None:
    owner = Owner(kind="Dataset", name="iris", namespace="ml", uid="u1")
    labels = labels_for(owner, "profiler")
    assert labels["gyre.dev/owner-kind"] == "Dataset"
    assert labels["app.kubernetes.io/managed-by"] == "gyre-operator"
    assert LABEL_INSTANCE not in labels
    sharded = Owner(kind="Dataset", name="iris", namespace="ml", uid="u1", instance="canary")
    assert labels_for(sharded, "profiler")[LABEL_INSTANCE] == "canary"


def test_settings_from_env() -> None:
    env = {
        "GYRE_ARTIFACT_STORE": "s3://bucket/gyre",
        "GYRE_ARTIFACT_SECRET": "s3-creds",
        "GYRE_IMAGE": "registry.example.com/gyre:1.0",
        "GYRE_ARTIFACT_STORAGE_CLASS": "",
    }
    settings = OperatorSettings.from_env(env)
    assert (settings.artifact_store, settings.artifact_secret, settings.image) == (
        "s3://bucket/gyre",
        "s3-creds",
        "registry.example.com/gyre:1.0",
    )
    assert settings.storage_class is None  # empty means unset
    assert OperatorSettings.from_env({}).artifact_store == "pvc://gyre-artifacts"
    with pytest.raises(ValidationError, match="GYRE_ARTIFACT_STORE"):
        OperatorSettings.from_env({"GYRE_ARTIFACT_STORE": "ftp://nope"})


def test_store_wiring_per_scheme() -> None:
    pvc = store_pod_parts(OperatorSettings(artifact_store="pvc://claim/sub/dir"), "ml")
    assert pvc.volumes == [{"name": "artifacts", "persistentVolumeClaim": {"claimName": "claim"}}]
    assert pvc.mounts == [{"name": "artifacts", "mountPath": "/var/lib/gyre/artifacts"}]
    s3 = store_pod_parts(OperatorSettings(artifact_store="s3://b/p", artifact_secret="creds"), "ml")
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in s3.env if "valueFrom" in e}
    assert (s3.volumes, refs) == ([], {"creds"})
    local = store_pod_parts(OperatorSettings(artifact_store="file:///tmp/store"), "ml")
    assert (local.volumes, local.mounts) == ([], [])
    claim = build_artifact_pvc(OperatorSettings(pvc_size="20Gi", storage_class="fast"), "ml")
    assert claim is not None
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert build_artifact_pvc(OperatorSettings(artifact_store="s3://b/p"), "ml") is None
