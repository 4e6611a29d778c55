"""`gyre operator` accepts what the install passes it; `gyre crds` prints the generated CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gyre import cli
from gyre.api import crdgen

ROOT = Path(__file__).resolve().parents[3]


def test_operator_accepts_the_installed_args() -> None:
    docs = yaml.safe_load_all((ROOT / "manifests/operator/operator.yaml").read_text())
    deployment = next(
        d for d in docs if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "gyre-operator"
    )
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = cli.build_parser().parse_args(args)
    assert parsed.command == "operator"
    assert parsed.leader_election and parsed.all_namespaces
    assert (parsed.lease_name, parsed.lease_namespace) == ("gyre-operator", None)  # the pod's namespace
    assert parsed.liveness == "http://0.0.0.0:8080/healthz"
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"POD_NAMESPACE", "POD_NAME"} <= env


def test_the_default_install_runs_two_replicas_safely() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests/operator/operator.yaml").read_text()) if d]
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    deployment = by_kind["Deployment", "gyre-operator"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert by_kind["PodDisruptionBudget", "gyre-operator"]["spec"]["minAvailable"] == 1
    role = by_kind["Role", "gyre-operator-leader-election"]
    assert role["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]


def test_leader_election_can_be_switched_off() -> None:
    parsed = cli.build_parser().parse_args(["operator", "--no-leader-election", "--standalone"])
    assert parsed.leader_election is False and parsed.standalone
    assert cli.build_parser().parse_args(["operator"]).leader_election is None  # decided at run time


def test_operator_scopes() -> None:
    parsed = cli.build_parser().parse_args(["operator", "-n", "a", "-n", "b", "--instance", "canary"])
    assert (parsed.namespace, parsed.instance) == (["a", "b"], "canary")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["operator", "-n", "a", "--all-namespaces"])


def test_crds_prints_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crds"]) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["spec"]["names"]["kind"] for d in printed] == [k.kind for k in crdgen.KINDS]


def test_python_dash_m_gyre_runs_the_same_cli_as_the_gyre_command() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "gyre", "operator", "--help"], capture_output=True, text=True, check=True
    )
    assert "--leader-election" in out.stdout and "--instance" in out.stdout


def test_operator_help_describes_all_four_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["operator", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in ("Dataset", "TrainingRun", "ModelDeployment", "DriftMonitor"):
        assert f"a {kind} " in text
