"""The Argo CD health checks, run in Lua 5.1 (Argo CD's gopher-lua dialect) against the statuses Gyre writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[3]
CM = yaml.safe_load((ROOT / "manifests/argocd/argocd-cm.yaml").read_text())


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)

    def to_lua(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({k: to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([to_lua(v) for v in value])
        return value

    runtime.globals().obj = to_lua(obj)
    script = CM["data"][f"resource.customizations.health.gyre.dev_{kind}"]
    result = runtime.execute(script)
    return str(result["status"]), str(result["message"])


def obj(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "status": {"observedGeneration": 1, **status}}


def cond(type_: str, status: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": "R", "message": message}


def test_every_kind_has_a_health_check() -> None:
    kinds = {k.rsplit("_", 1)[1] for k in CM["data"]}
    assert kinds == {"Dataset", "TrainingRun", "ModelDeployment", "DriftMonitor"}


@pytest.mark.parametrize("kind", ["Dataset", "TrainingRun", "ModelDeployment", "DriftMonitor"])
def test_unobserved_spec_change_is_progressing(kind: str) -> None:
    assert health(kind, {"metadata": {"generation": 1}})[0] == "Progressing"
    stale = obj(generation=2, phase="Succeeded", conditions=[cond("Ready", "True")])
    assert health(kind, stale)[0] == "Progressing"


def test_dataset() -> None:
    ready = obj(phase="Ready", version=3, fingerprint="sha256:ab", conditions=[cond("Ready", "True")])
    assert health("Dataset", ready) == ("Healthy", "Version 3 (sha256:ab)")
    failed = obj(phase="Failed", conditions=[cond("Ready", "False", "source not found")])
    assert health("Dataset", failed) == ("Degraded", "source not found")


def test_trainingrun_failed_gate_is_degraded_not_healthy() -> None:
    passed = obj(phase="Succeeded", conditions=[cond("Validated", "True", "all 2 gates passed")])
    assert health("TrainingRun", passed) == ("Healthy", "all 2 gates passed")
    gated = obj(phase="Succeeded", conditions=[cond("Validated", "False", "accuracy 0.71 < min 0.9")])
    assert health("TrainingRun", gated) == ("Degraded", "accuracy 0.71 < min 0.9")
    assert health("TrainingRun", obj(phase="Running"))[0] == "Progressing"
    assert health("TrainingRun", obj(phase="Failed", conditions=[cond("Failed", "True", "OOMKilled")])) == (
        "Degraded",
        "OOMKilled",
    )


def test_modeldeployment() -> None:
    ready = obj(conditions=[cond("Ready", "True", "2/2 ready"), cond("Progressing", "False")])
    assert health("ModelDeployment", ready) == ("Healthy", "2/2 ready")
    rolling = obj(conditions=[cond("Ready", "True"), cond("Progressing", "True", "rolling out run-2")])
    assert health("ModelDeployment", rolling) == ("Progressing", "rolling out run-2")
    crash = obj(conditions=[cond("Ready", "False"), cond("Degraded", "True", "CrashLoopBackOff")])
    assert health("ModelDeployment", crash) == ("Degraded", "CrashLoopBackOff")


def test_driftmonitor() -> None:
    assert health("DriftMonitor", obj())[0] == "Progressing"
    calm = obj(lastCheckTime="2026-11-22T00:00:00Z", conditions=[cond("Drifted", "False", "share 0.1")])
    assert health("DriftMonitor", calm) == ("Healthy", "share 0.1")
    drifted = obj(lastCheckTime="2026-11-22T00:00:00Z", conditions=[cond("Drifted", "True", "share 0.6")])
    assert health("DriftMonitor", drifted) == ("Degraded", "share 0.6")
