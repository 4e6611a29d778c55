"""The Argo CD health checks, run as Argo CD runs them, against the statuses Gyre writes.

The scripts from manifests/argocd/argocd-cm.yaml run in hack/argocd-lua: gopher-lua with the libraries Argo CD
opens for argocd-cm scripts (base, table, package: no string or math) and Argo CD's conversion of the object, built
from the Go module proxy and cached in ~/.cache/gyre. They are fed:

- every distinct status the operator wrote during the integration and e2e tiers (tests/data/argocd/observed.json,
  recorded by tests/statuscapture.py), each classified by the reasons it carries;
- DriftMonitor statuses from the reconcile plan itself (invalid spec, a failed check Job);
- a table of edge cases: deletion, refused writes, an old observedGeneration, nulls and empty lists.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gyre.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
from gyre.api.reasons import Reason
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.reconcile.driftmonitor import ObservedDriftMonitor, plan_driftmonitor
from gyre.reconcile.observed import JobOutcome, JobView, PodResult
from gyre.reconcile.plan import dump_status

ROOT = Path(__file__).resolve().parents[3]
CM = yaml.safe_load((ROOT / "manifests/argocd/argocd-cm.yaml").read_text())
OBSERVED = json.loads((ROOT / "tests/data/argocd/observed.json").read_text())
KINDS = ("Dataset", "TrainingRun", "ModelDeployment", "DriftMonitor")


@pytest.fixture(scope="module")
def argocd_lua() -> str:
    proc = subprocess.run(
        [str(ROOT / "hack/argocd-lua/build.sh")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def evaluate(runner: str, objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(status, message) of each object, as Argo CD's controller computes it; a script error fails the test."""
    if not objects:
        return []
    lines = [
        json.dumps(
            {"script": CM["data"][f"resource.customizations.health.gyre.dev_{o['kind']}"], "object": o}
        )
        for o in objects
    ]
    proc = subprocess.run([runner], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    out = []
    for obj, line in zip(objects, proc.stdout.splitlines(), strict=True):
        result = json.loads(line)
        assert "error" not in result, (
            f"{obj['kind']} health script failed in Argo CD's Lua: {result['error']}"
        )
        out.append((result["status"], result.get("message", "")))
    return out


def health(runner: str, obj: dict[str, Any]) -> tuple[str, str]:
    return evaluate(runner, [obj])[0]


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": 1}


def obj(kind: str, generation: int = 1, observed: int | None = 1, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "gyre.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ml", "generation": generation},
        "status": {**status},
    }
    if observed is not None:
        body["status"]["observedGeneration"] = observed
    return body


def test_every_kind_has_a_health_check() -> None:
    assert {k.rsplit("_", 1)[1] for k in CM["data"]} == set(KINDS)


# ------------------------------------------------------------------------------ what the operator really wrote

# Ready=False reasons that mean waiting (Progressing); every other Ready=False reason is a failure (Degraded).
WAITING = {
    Reason.PROFILING,
    Reason.DATASET_NOT_FOUND,
    Reason.DATASET_NOT_READY,
    Reason.DEPLOYMENT_NOT_FOUND,
    Reason.REFERENCE_UNKNOWN,
    Reason.REFERENCE_NOT_READY,
    Reason.TRAINING_RUN_NOT_FOUND,
    Reason.WAITING_FOR_TRAINING,
    Reason.WAITING_FOR_VALIDATED_RUN,
    Reason.ROLLING_OUT,
}


def expected(o: dict[str, Any]) -> str:
    """What Argo CD should show for a status, from its reasons alone (independent of the scripts' structure)."""
    status = o.get("status") or {}
    conds = {c["type"]: c for c in status.get("conditions") or []}
    meta = o["metadata"]

    def is_(type_: str, value: str) -> bool:
        return type_ in conds and conds[type_]["status"] == value

    if "deletionTimestamp" in meta:
        return "Progressing"
    if is_("Synced", "False"):
        return "Degraded"
    if status.get("observedGeneration") is None or status["observedGeneration"] < meta["generation"]:
        return "Progressing"
    if is_("Ready", "False"):
        return "Progressing" if conds["Ready"]["reason"] in WAITING else "Degraded"
    phase = status.get("phase")
    kind = o["kind"]
    if kind == "Dataset":
        if phase == "Failed":
            return "Degraded"
        refresh = conds.get("Refreshing")
        if refresh and refresh["status"] == "False" and refresh["reason"] not in ("Profiled", "SpecChanged"):
            return "Degraded"
        return "Progressing" if is_("Refreshing", "True") or not is_("Ready", "True") else "Healthy"
    if kind == "TrainingRun":
        if phase == "Failed" or (phase == "Succeeded" and is_("Validated", "False")):
            return "Degraded"
        return "Healthy" if phase == "Succeeded" else "Progressing"
    if kind == "ModelDeployment":
        if is_("Degraded", "True"):
            return "Degraded"
        return "Healthy" if is_("Ready", "True") and not is_("Progressing", "True") else "Progressing"
    if is_("Drifted", "True"):
        return "Degraded"
    return "Healthy" if status.get("lastCheckTime") else "Progressing"


def test_the_observed_statuses_cover_every_kind_and_their_failures() -> None:
    assert {o["kind"] for o in OBSERVED} == set(KINDS)
    reasons = {c["reason"] for o in OBSERVED for c in (o.get("status") or {}).get("conditions") or []}
    # The failure states were really written by the operator during the tests: an invalid spec, a failed drift
    # check, a failed Job, failed gates, a stuck rollout, a write the API server refused.
    assert {
        Reason.INVALID_SPEC,
        Reason.CHECK_FAILED,
        Reason.GATES_FAILED,
        Reason.ROLLOUT_STUCK,
        Reason.WRITE_REJECTED,
    } <= reasons
    assert any(o["kind"] == "TrainingRun" and o.get("status", {}).get("phase") == "Failed" for o in OBSERVED)
    # (A DriftMonitor's InvalidSpec needs a spec the CRD admits and the model refuses: see the plan tests below.)


def test_every_status_the_operator_wrote_gets_the_health_its_reasons_mean(argocd_lua: str) -> None:
    got = evaluate(argocd_lua, OBSERVED)
    wrong = [
        f"{o['kind']} {json.dumps(o.get('status'))}: {status} ({message}), want {expected(o)}"
        for o, (status, message) in zip(OBSERVED, got, strict=True)
        if status != expected(o)
    ]
    assert not wrong, "\n".join(wrong)
    # Degraded always says why.
    assert all(message for status, message in got if status == "Degraded")


# ------------------------------------------------------------------------------ DriftMonitor, from its plan

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER = Owner(kind="DriftMonitor", name="iris", namespace="ml", uid="uid-m", generation=2)
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")


def planned(status: DriftMonitorStatus, **kw: Any) -> dict[str, Any]:
    """The status plan_driftmonitor writes for `status` and the observed state `kw` overrides."""
    spec = DriftMonitorSpec.model_validate(
        {"deploymentRef": {"name": "iris"}, "schedule": {"interval": "20s"}}
    )
    fields: dict[str, Any] = {"spec": spec, "spec_error": None, **kw}
    obs = ObservedDriftMonitor(owner=OWNER, status=status, settings=SETTINGS, now=NOW, **fields)
    result = plan_driftmonitor(obs).status
    return {
        "apiVersion": "gyre.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "iris", "namespace": "ml", "generation": OWNER.generation},
        "status": dump_status(result),
    }


def test_a_drift_monitor_with_an_invalid_spec_and_no_check_is_degraded(argocd_lua: str) -> None:
    # The controller plans with spec None when the stored spec does not validate.
    monitor = planned(DriftMonitorStatus(), spec=None, spec_error="schedule: bad cron")
    assert "lastCheckTime" not in monitor["status"]
    assert health(argocd_lua, monitor) == ("Degraded", "schedule: bad cron")


def test_a_drift_monitor_whose_check_job_failed_is_degraded_not_healthy(argocd_lua: str) -> None:
    before = DriftMonitorStatus.model_validate(
        {
            "observedGeneration": 2,
            "jobName": "iris-check-3",
            "checkCount": 2,
            "lastCheckTime": "2026-12-01T11:00:00Z",
            "conditions": [
                {
                    **cond("Drifted", "False", "NoDrift", "check 2: no drift"),
                    "lastTransitionTime": NOW.isoformat(),
                }
            ],
        }
    )
    failed = JobView(
        "iris-check-3", OWNER.uid, "drift-check", JobOutcome(True, False, "BackoffLimitExceeded")
    )
    died = PodResult("iris-check-3-x", None, 1, "Error", "Traceback ...\nMemoryError")
    monitor = planned(before, jobs=[failed], pods=[died])
    status, message = health(argocd_lua, monitor)
    assert status == "Degraded" and "MemoryError" in message


def test_a_drift_monitor_waiting_for_its_deployment_is_progressing(argocd_lua: str) -> None:
    monitor = planned(DriftMonitorStatus(), deployment=None)
    assert health(argocd_lua, monitor) == ("Progressing", "ModelDeployment iris does not exist")


# ------------------------------------------------------------------------------ edge cases

SYNCED_FALSE = cond("Synced", "False", "WriteRejected", "admission webhook denied the Job")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("case", "body", "want"),
    [
        ("no status yet", {"status": None}, "Progressing"),
        ("spec changed, not yet observed", {"generation": 3, "observed": 2}, "Progressing"),
        ("no observedGeneration", {"observed": None}, "Progressing"),
        ("being deleted", {"deleting": True}, "Progressing"),
        ("a refused write keeps the old observedGeneration", {"generation": 3, "synced": True}, "Degraded"),
        ("invalid spec", {"ready": cond("Ready", "False", "InvalidSpec", "bad spec")}, "Degraded"),
        ("image refused", {"ready": cond("Ready", "False", "ImageNotAllowed", "evil:1")}, "Degraded"),
        ("a reason added later", {"ready": cond("Ready", "False", "SomethingNew", "")}, "Degraded"),
        ("conditions null", {"conditions": None}, None),
        ("conditions empty", {"conditions": []}, None),
    ],
)
def test_edge_cases(argocd_lua: str, kind: str, case: str, body: dict[str, Any], want: str | None) -> None:
    o = obj(kind, generation=body.get("generation", 1), observed=body.get("observed", 1))
    if "status" in body:
        del o["status"]
    if body.get("deleting"):
        o["metadata"]["deletionTimestamp"] = "2026-12-01T12:00:00Z"
    conditions = [c for c in (body.get("ready"), SYNCED_FALSE if body.get("synced") else None) if c]
    if "conditions" in body:
        o["status"]["conditions"] = body["conditions"]
    elif conditions:
        o["status"]["conditions"] = conditions
    status, message = health(argocd_lua, o)
    assert status == (want or "Progressing"), (case, message)
    assert message
    if body.get("synced"):
        assert message == SYNCED_FALSE["message"]


def test_dataset(argocd_lua: str) -> None:
    ready = cond("Ready", "True", "Profiled", "version 3")
    fp = "sha256:" + "a" * 64
    ok = obj("Dataset", phase="Ready", version=3, fingerprint=fp, conditions=[ready])
    assert health(argocd_lua, ok) == ("Healthy", f"Version 3 ({fp})")
    refreshing = obj(
        "Dataset", phase="Ready", version=3, fingerprint=fp,
        conditions=[ready, cond("Refreshing", "True", "RefreshDue", "re-reading s3://b/iris.csv")],
    )  # fmt: skip
    assert health(argocd_lua, refreshing)[0] == "Progressing"
    refused = obj(
        "Dataset", phase="Ready", version=3, fingerprint=fp,
        conditions=[ready, cond("Refreshing", "False", "SourceRefused", "host 10.0.0.1 is refused")],
    )  # fmt: skip
    assert health(argocd_lua, refused) == (
        "Degraded",
        f"Version 3 ({fp}); refresh failed: host 10.0.0.1 is refused",
    )
    failed = obj(
        "Dataset", phase="Failed", conditions=[cond("Ready", "False", "ProfilingFailed", "no such key")]
    )
    assert health(argocd_lua, failed) == ("Degraded", "no such key")


def test_trainingrun(argocd_lua: str) -> None:
    passed = obj(
        "TrainingRun", phase="Succeeded", conditions=[cond("Validated", "True", "GatesPassed", "2 gates")]
    )
    assert health(argocd_lua, passed) == ("Healthy", "2 gates")
    gated = obj(
        "TrainingRun", phase="Succeeded", conditions=[cond("Validated", "False", "GatesFailed", "acc 0.7")]
    )
    assert health(argocd_lua, gated) == ("Degraded", "acc 0.7")
    job_failed = obj(
        "TrainingRun", phase="Failed", conditions=[cond("Failed", "True", "JobFailed", "OOMKilled")]
    )
    assert health(argocd_lua, job_failed) == ("Degraded", "OOMKilled")
    waiting = obj(
        "TrainingRun",
        phase="Pending",
        conditions=[cond("DatasetReady", "False", "DatasetNotFound", "no iris")],
    )
    assert health(argocd_lua, waiting) == ("Progressing", "no iris")
    assert health(argocd_lua, obj("TrainingRun", phase="Running")) == ("Progressing", "Training is Running")


def test_modeldeployment(argocd_lua: str) -> None:
    serving = [cond("Ready", "True", "Serving", "2/2 pods"), cond("Progressing", "False", "RolledOut")]
    assert health(argocd_lua, obj("ModelDeployment", conditions=serving)) == ("Healthy", "2/2 pods")
    rolling = [cond("Ready", "True", "Serving", "1/2"), cond("Progressing", "True", "RollingOut", "run-2")]
    assert health(argocd_lua, obj("ModelDeployment", conditions=rolling)) == ("Progressing", "run-2")
    stuck = [
        cond("Ready", "False", "ServerFailing", "CrashLoopBackOff"),
        cond("Degraded", "True", "ServerFailing", "CrashLoopBackOff"),
    ]
    assert health(argocd_lua, obj("ModelDeployment", conditions=stuck)) == ("Degraded", "CrashLoopBackOff")


def test_driftmonitor(argocd_lua: str) -> None:
    checked = "2026-12-01T12:00:00Z"
    first = obj("DriftMonitor", conditions=[cond("Ready", "True", "Checking", "check 1 running")])
    assert health(argocd_lua, first) == ("Progressing", "check 1 running")
    calm = obj(
        "DriftMonitor", lastCheckTime=checked, conditions=[cond("Drifted", "False", "NoDrift", "share 0.1")]
    )
    assert health(argocd_lua, calm) == ("Healthy", "share 0.1")
    drifted = obj(
        "DriftMonitor",
        lastCheckTime=checked,
        conditions=[cond("Drifted", "True", "DriftDetected", "share 0.6")],
    )
    assert health(argocd_lua, drifted) == ("Degraded", "share 0.6")
    worse = obj(
        "DriftMonitor",
        lastCheckTime=checked,
        conditions=[
            cond("Drifted", "False", "NoDrift", "share 0.0"),
            cond("Degraded", "True", "PerformanceDegraded", "accuracy 0.7 vs baseline 0.9"),
        ],
    )
    assert health(argocd_lua, worse) == ("Degraded", "accuracy 0.7 vs baseline 0.9")
    thin = obj(
        "DriftMonitor",
        lastCheckTime=checked,
        conditions=[cond("Ready", "True", "InsufficientData", "12 rows")],
    )
    assert health(argocd_lua, thin) == ("Healthy", "12 rows")


def test_a_script_that_uses_a_library_argo_cd_withholds_fails_here_too(argocd_lua: str) -> None:
    proc = subprocess.run(
        [argocd_lua],
        input=json.dumps({"script": 'return {status = string.upper("healthy")}', "object": {}}) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert "error" in json.loads(proc.stdout)
