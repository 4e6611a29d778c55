"""The generated CRDs on a real API server: they install, default, and refuse invalid objects with clear messages."""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, rejection

pytestmark = pytest.mark.integration

FP = "sha256:" + "0" * 64


def run_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
    spec.update(overrides)
    return spec


def md_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"trainingRunRef": {"name": "iris-rf"}}}
    spec.update(overrides)
    return spec


def dm_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"deploymentRef": {"name": "iris"}, "schedule": {"interval": "10m"}}
    spec.update(overrides)
    return spec


def test_crds_are_established_with_names_and_columns(
    k8s: kubernetes.client.ApiClient, crds: list[dict[str, Any]]
) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(k8s)
    for doc in crds:
        crd = ext.read_custom_resource_definition(doc["metadata"]["name"])
        conds = {c.type: c.status for c in crd.status.conditions}
        assert conds["NamesAccepted"] == "True", crd.metadata.name
        assert crd.spec.names.categories == ["gyre"]
        assert crd.spec.versions[0].subresources.status is not None
    # The server's discovery lists the short names (what `kubectl get tr` resolves).
    resources = kubernetes.client.CustomObjectsApi(k8s).get_api_resources("gyre.dev", "v1alpha1")
    shorts = {r.name: r.short_names for r in resources.resources if "/" not in r.name}
    assert shorts["datasets"] == ["dset"]
    assert shorts["trainingruns"] == ["tr", "trun"]


def test_valid_objects_of_every_kind_are_admitted_and_defaulted(custom: Custom) -> None:
    ds = custom.create(
        "datasets",
        "Dataset",
        "iris",
        {"source": {"uri": "builtin://iris"}, "resources": {"requests": {"cpu": 1, "memory": "256Mi"}}},
    )
    assert ds["spec"]["historyLimit"] == 10
    assert ds["spec"]["source"]["format"] == "auto"
    assert ds["spec"]["resources"]["requests"]["cpu"] == 1
    tr = custom.create(
        "trainingruns",
        "TrainingRun",
        "iris-rf",
        run_spec(
            estimator={
                "kind": "RandomForestClassifier",
                "params": {"n_estimators": 50, "class_weight": {"0": 1}},
            },
            gates=[{"metric": "accuracy", "min": 0.9}],
            search={
                "strategy": "random",
                "trials": 4,
                "space": {"max_depth": {"low": 2, "high": 8, "type": "int"}},
            },
        ),
    )
    # Free-form estimator params survive pruning.
    assert tr["spec"]["estimator"]["params"] == {"n_estimators": 50, "class_weight": {"0": 1}}
    assert tr["spec"]["search"]["parallelism"] == 2
    md = custom.create("modeldeployments", "ModelDeployment", "iris", md_spec(autoscaling={"maxReplicas": 3}))
    assert md["spec"]["autoscaling"]["minReplicas"] == 1
    assert "server" not in md["spec"], "without spec.server the server keeps its own defaults"
    tuned = custom.create(
        "modeldeployments", "ModelDeployment", "tuned", md_spec(server={"maxConnections": 64})
    )
    assert tuned["spec"]["server"] == {
        "headerTimeoutSeconds": 15,
        "bodyTimeoutSeconds": 30,
        "maxConnections": 64,
        "shutdownTimeoutSeconds": 30,
    }
    dm = custom.create("driftmonitors", "DriftMonitor", "iris", dm_spec(retrain={"enabled": True}))
    assert dm["spec"]["retrain"]["consecutiveChecks"] == 2


@pytest.mark.parametrize(
    ("plural", "kind", "spec", "message"),
    [
        (
            "trainingruns",
            "TrainingRun",
            run_spec(search={"strategy": "random", "space": {"C": {"low": 0.1, "high": 1}}}),
            "random search needs trials",
        ),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(search={"strategy": "grid", "space": {"C": {"low": 0.1, "high": 1}}}),
            "grid search needs explicit values for every parameter",
        ),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(search={"strategy": "random", "trials": 3, "space": {"C": {"low": 0.1}}}),
            "a range needs both low and high",
        ),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(
                search={"strategy": "random", "trials": 3, "space": {"C": {"low": 0, "high": 1, "log": True}}}
            ),
            "log scale needs a range with low > 0",
        ),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(gates=[{"metric": "accuracy"}]),
            "a gate needs min, max or both",
        ),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(gates=[{"metric": "accuracy", "min": 0.9, "max": 0.5}]),
            "gate min must not be greater than max",
        ),
        ("trainingruns", "TrainingRun", run_spec(estimator={"kind": "os.system"}), "Unsupported value"),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(estimator={"kind": "xgboost.XGBClassifier"}),
            "Unsupported value",
        ),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(estimator={"kind": "RandomForestClassifier", "earlyStopping": {"rounds": 5}}),
            "earlyStopping needs a gradient-boosting library kind",
        ),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(estimator={"kind": "XGBClassifier", "earlyStopping": {"rounds": 0}}),
            "earlyStopping.rounds",
        ),
        ("trainingruns", "TrainingRun", run_spec(split={"testSize": 1.5}), "testSize"),
        (
            "trainingruns",
            "TrainingRun",
            run_spec(datasetRef={"name": "iris", "fingerprint": "md5:abc"}),
            "datasetRef.fingerprint",
        ),
        ("datasets", "Dataset", {"source": {"uri": "ftp://example.com/x.csv"}}, "spec.source.uri"),
        (
            "datasets",
            "Dataset",
            {"source": {"uri": "file:///var/lib/gyre/artifacts/sources/../models/m.skops"}},
            ". or .. path segments",
        ),
        ("datasets", "Dataset", {"source": {"uri": "file:///a.csv::http://x/y.csv"}}, "fsspec chain"),
        (
            "datasets",
            "Dataset",
            {"source": {"uri": "builtin://iris"}, "refreshInterval": "1 hour"},
            "refreshInterval",
        ),
        (
            "datasets",
            "Dataset",
            {"source": {"uri": "builtin://iris"}, "resources": {"limits": {"memory": "lots"}}},
            "spec.resources.limits.memory",
        ),
        (
            "modeldeployments",
            "ModelDeployment",
            {"model": {"trainingRunRef": {"name": "a"}, "uri": "pvc://gyre-artifacts/models/x"}},
            "set exactly one of trainingRunRef or uri",
        ),
        (
            "modeldeployments",
            "ModelDeployment",
            {"model": {"trainingRunRef": {"name": "a"}, "sha256": "ab" * 32}},
            "sha256 pins a uri",
        ),
        (
            "modeldeployments",
            "ModelDeployment",
            {"model": {"uri": "pvc://gyre-artifacts/models/x", "sha256": "md5:abc"}},
            "spec.model.sha256",
        ),
        (
            "modeldeployments",
            "ModelDeployment",
            md_spec(autoscaling={"minReplicas": 5, "maxReplicas": 2}),
            "minReplicas must not be greater than maxReplicas",
        ),
        (
            "modeldeployments",
            "ModelDeployment",
            {"replicas": 1},
            "set spec.model, or promotion.policy LatestValidated",
        ),
        (
            "modeldeployments",
            "ModelDeployment",
            md_spec(server={"maxConnections": 0}),
            "spec.server.maxConnections in body should be greater than or equal to 8",
        ),
        (
            "modeldeployments",
            "ModelDeployment",
            md_spec(server={"headerTimeoutSeconds": "15s"}),
            "spec.server.headerTimeoutSeconds",
        ),
        (
            "driftmonitors",
            "DriftMonitor",
            dm_spec(schedule={"interval": "5m", "cron": "*/5 * * * *"}),
            "set exactly one of interval or cron",
        ),
        (
            "driftmonitors",
            "DriftMonitor",
            dm_spec(window={"minRows": 500, "maxRows": 100}),
            "minRows must not be greater than maxRows",
        ),
        (
            "driftmonitors",
            "DriftMonitor",
            dm_spec(thresholds={"perFeature": {"age": {"minEffect": -0.1}}}),
            "spec.thresholds.perFeature.age.minEffect",
        ),
        (
            "driftmonitors",
            "DriftMonitor",
            dm_spec(thresholds={"perFeature": {"age": {"minMissingIncrease": 1.5}}}),
            "spec.thresholds.perFeature.age.minMissingIncrease",
        ),
        (
            "driftmonitors",
            "DriftMonitor",
            dm_spec(thresholds={"perFeature": {"age": {"minEffect": 0.1, "method": "ks"}}}),
            "remove method and threshold from this feature, or remove minEffect",
        ),
        (
            "driftmonitors",
            "DriftMonitor",
            dm_spec(thresholds={"preset": "evidently", "perFeature": {"age": {"minEffect": 0.1}}}),
            "perFeature minEffect applies to preset gyre only",
        ),
    ],
)
def test_invalid_objects_are_rejected_at_admission(
    custom: Custom, plural: str, kind: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as info:
        custom.create(plural, kind, "bad", spec)
    assert message in rejection(info.value)


def test_a_features_minimum_effects_are_admitted_with_the_gyre_preset(custom: Custom) -> None:
    per_feature = {"age": {"minEffect": 0.2, "minMissingIncrease": 0.1}, "plan": {"method": "psi"}}
    dm = custom.create(
        "driftmonitors", "DriftMonitor", "floors", dm_spec(thresholds={"perFeature": per_feature})
    )
    assert dm["spec"]["thresholds"]["perFeature"]["age"] == {
        "minEffect": 0.2,
        "minMissingIncrease": 0.1,
        "enabled": True,
    }


def test_trainingrun_spec_is_immutable(custom: Custom) -> None:
    custom.create("trainingruns", "TrainingRun", "iris-rf", run_spec())
    with pytest.raises(ApiException) as info:
        custom.patch("trainingruns", "iris-rf", {"spec": {"estimator": {"kind": "SVC"}}})
    assert "a TrainingRun's spec is immutable" in rejection(info.value)
    # Labels and annotations stay editable (promotion selectors rely on them).
    custom.patch("trainingruns", "iris-rf", {"metadata": {"labels": {"team": "a"}}})


def test_status_fields_the_schema_does_not_declare_are_pruned(custom: Custom) -> None:
    custom.create("datasets", "Dataset", "iris", {"source": {"uri": "builtin://iris"}})
    status = {"phase": "Ready", "fingerprint": FP, "version": 1, "madeUp": "x"}
    got = custom.patch_status("datasets", "iris", status)
    assert got["status"]["fingerprint"] == FP
    assert "madeUp" not in got["status"]
