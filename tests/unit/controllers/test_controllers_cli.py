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
    assert parsed.standalone and parsed.all_namespaces
    assert parsed.liveness == "http://0.0.0.0:8080/healthz"


def test_operator_scopes() -> None:
    parsed = cli.build_parser().parse_args(["operator", "-n", "a", "-n", "b", "--instance", "canary"])
    assert (parsed.namespace, parsed.instance) == (["a", "b"], "canary")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["operator", "-n", "a", "--all-namespaces"])


def test_crds_prints_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crds"]) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["spec"]["names"]["kind"] for d in printed] == [k.kind for k in crdgen.KINDS]
