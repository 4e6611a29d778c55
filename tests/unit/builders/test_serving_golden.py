"""Golden files for the ModelDeployment builders: tests/data/serving/input/*.yaml in, output/*.yaml out.

Regenerate after an intended change with `GYRE_UPDATE_GOLDEN=1 pytest tests/unit/builders` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gyre.api.modeldeployment import ModelDeploymentSpec
from gyre.builders.meta import Owner
from gyre.builders.serving import (
    ResolvedModel,
    build_hpa,
    build_network_policy,
    build_server_deployment,
    build_service,
    desired_total_replicas,
    split_replicas,
)
from gyre.builders.settings import OperatorSettings

DATA = Path(__file__).resolve().parents[2] / "data/serving"
CASES = sorted(p.stem for p in (DATA / "input").glob("*.yaml"))
UPDATE = os.environ.get("GYRE_UPDATE_GOLDEN") == "1"


def build(case: dict[str, Any]) -> list[dict[str, Any]]:
    meta = case["metadata"]
    owner = Owner(kind=case["kind"], name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    settings = OperatorSettings.model_validate(case["settings"])
    spec = ModelDeploymentSpec.model_validate(case["spec"])
    split = split_replicas(desired_total_replicas(spec), spec.canary.weight if spec.canary else 0)
    replicas = None if spec.autoscaling else split.stable
    objects = [
        build_service(owner, spec),
        build_server_deployment(
            owner, spec, settings, ResolvedModel(**case["stable"]), track="stable", replicas=replicas
        ),
    ]
    if "canary" in case:
        canary = ResolvedModel(**case["canary"])
        objects.append(
            build_server_deployment(owner, spec, settings, canary, track="canary", replicas=split.canary)
        )
    hpa = build_hpa(owner, spec)
    if hpa is not None:
        objects.append(hpa)
    policy = build_network_policy(owner, spec, settings)
    if policy is not None:
        objects.append(policy)
    return objects


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    case = yaml.safe_load((DATA / "input" / f"{name}.yaml").read_text())
    got = build(case)
    out = DATA / "output" / f"{name}.yaml"
    if UPDATE:
        out.write_text(yaml.safe_dump_all(got, sort_keys=False, width=120))
    assert out.exists(), f"no golden output for {name}: run with GYRE_UPDATE_GOLDEN=1"
    assert got == list(yaml.safe_load_all(out.read_text()))


def test_service_selects_both_tracks_and_deployments_only_their_own() -> None:
    case = yaml.safe_load((DATA / "input" / "canary-pvc.yaml").read_text())
    objects = build(case)
    (service,), (stable, canary) = of_kind(objects, "Service"), of_kind(objects, "Deployment")
    selector = service["spec"]["selector"]
    for deployment in (stable, canary):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items(), "the Service must route to both tracks"
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert stable["spec"]["selector"] != canary["spec"]["selector"], "tracks must not adopt each other's pods"


def test_the_network_policy_admits_the_namespace_and_the_monitoring_namespace_to_both_tracks_model_port() -> (
    None
):
    case = yaml.safe_load((DATA / "input" / "canary-pvc.yaml").read_text())
    objects = build(case)
    (policy,), deployments = of_kind(objects, "NetworkPolicy"), of_kind(objects, "Deployment")
    assert policy["metadata"]["ownerReferences"][0]["uid"] == case["metadata"]["uid"]
    for deployment in deployments:
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": port}]
    assert policy["spec"]["ingress"][0]["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress"], "egress (store, prediction log) stays open"


@pytest.mark.parametrize(
    ("settings", "peers"),
    [
        pytest.param({"network_policy": False}, None, id="disabled: no policy"),
        pytest.param({}, [{"podSelector": {}}], id="no monitoring namespace: the same namespace only"),
        pytest.param({"monitoring_namespace": "ml"}, [{"podSelector": {}}], id="monitoring is the namespace"),
    ],
)
def test_the_network_policy_follows_the_operator_settings(
    settings: dict[str, Any], peers: list[dict[str, Any]] | None
) -> None:
    owner = Owner(kind="ModelDeployment", name="iris", namespace="ml", uid="u1")
    spec = ModelDeploymentSpec.model_validate({"model": {"uri": "pvc://gyre-artifacts/m"}})
    policy = build_network_policy(owner, spec, OperatorSettings.model_validate(settings))
    assert (policy["spec"]["ingress"][0]["from"] if policy else None) == peers


def test_a_new_model_changes_the_pod_template() -> None:
    # A new sha256 must change the template, or the Deployment would never roll the new model out.
    case = yaml.safe_load((DATA / "input" / "canary-pvc.yaml").read_text())
    first = build(case)[1]["spec"]["template"]
    case["stable"]["sha256"] = "cc33"
    second = build(case)[1]["spec"]["template"]
    assert first != second


@pytest.mark.parametrize(
    ("total", "weight", "stable", "canary"),
    [(4, 25, 3, 1), (4, 0, 4, 0), (1, 10, 1, 1), (10, 50, 5, 5), (3, 100, 0, 3), (2, 90, 1, 2)],
)
def test_split_replicas(total: int, weight: int, stable: int, canary: int) -> None:
    split = split_replicas(total, weight)
    assert (split.stable, split.canary) == (stable, canary)


def test_split_reports_the_weight_whole_pods_allow() -> None:
    assert split_replicas(1, 10).canary_weight == 50
    assert split_replicas(4, 25).canary_weight == 25


def test_explanations_are_passed_to_the_server_only_when_enabled() -> None:
    from gyre.api import env

    case = yaml.safe_load((DATA / "input" / "canary-pvc.yaml").read_text())

    def server_env() -> dict[str, str]:
        container = build(case)[1]["spec"]["template"]["spec"]["containers"][0]
        return {v["name"]: v.get("value", "") for v in container["env"]}

    assert env.EXPLAIN not in server_env()
    case["spec"]["explain"] = {"enabled": False}
    assert env.EXPLAIN not in server_env()
    case["spec"]["explain"] = {"enabled": True, "maxRows": 20}
    assert (server_env()[env.EXPLAIN], server_env()[env.EXPLAIN_MAX_ROWS]) == ("true", "20")


def test_server_settings_reach_the_flags_gyre_serve_parses_in_the_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gyre import cli

    case = yaml.safe_load((DATA / "input" / "canary-pvc.yaml").read_text())
    case["spec"]["server"] = {"headerTimeoutSeconds": 5, "bodyTimeoutSeconds": 90, "maxConnections": 64}
    container = build(case)[1]["spec"]["template"]["spec"]["containers"][0]
    for item in container["env"]:
        monkeypatch.setenv(item["name"], item.get("value", ""))
    args = cli.build_parser().parse_args(container["args"])
    assert (args.header_timeout, args.body_timeout, args.max_connections) == (5, 90, 64)
    assert args.shutdown_timeout == 30, "unset fields keep the server's defaults"


@pytest.mark.parametrize("shutdown", [1, 30, 600])
def test_the_pod_grace_period_outlasts_every_stage_of_the_server_shutdown(shutdown: int) -> None:
    case = yaml.safe_load((DATA / "input" / "canary-pvc.yaml").read_text())
    case["spec"]["server"] = {"shutdownTimeoutSeconds": shutdown}
    pod = build(case)[1]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    values = {v["name"]: v.get("value") for v in container["env"]}
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain, wait = float(values["GYRE_DRAIN_SECONDS"]), float(values["GYRE_SHUTDOWN_TIMEOUT"])
    assert wait == shutdown
    # Kubernetes counts preStop in the grace period; the last batches of the prediction log still need time after.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + wait + 5
