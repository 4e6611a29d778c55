"""The ModelDeployment plan on plain data: what it writes, what status it reports, which Events it posts.

A tiny in-memory "cluster" (`World`) applies each plan's actions as the API server would and reports the children
back as the indexes would, so a test can follow a deployment over several reconciles.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gyre.api.common import find_condition
from gyre.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.controllers.indexes import RunSummary
from gyre.reconcile.modeldeployment import (
    ObservedModelDeployment,
    ServerPod,
    plan_modeldeployment,
    server_pod,
)
from gyre.reconcile.observed import ChildView, child_view
from gyre.reconcile.plan import Apply, Create, Delete, Plan, status_patch

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
TRAIN_SPEC = TrainingRunSpec.model_validate(
    {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
)


def run(
    name: str,
    finished: str = "2026-11-01T00:00:00Z",
    *,
    passed: bool | None = True,
    phase: str = "Succeeded",
    onnx: str | None = None,
    **labels: str,
) -> RunSummary:
    """A TrainingRun as the index holds it; `passed=None` means it has no Validated condition."""
    status: dict[str, Any] = {"phase": phase}
    if phase == "Succeeded":
        status.update(
            completionTime=finished, modelUri=f"pvc://gyre-artifacts/models/{name}", modelSha256=name * 8
        )
    if passed is not None:
        status["conditions"] = [
            {
                "type": "Validated",
                "status": "True" if passed else "False",
                "reason": "GatesPassed" if passed else "GatesFailed",
                "message": "accuracy 0.97 >= 0.9" if passed else "accuracy 0.41 < 0.9",
                "lastTransitionTime": finished,
            }
        ]
    if onnx:
        status["onnx"] = {"status": onnx}
    return RunSummary(
        name=name,
        uid=f"uid-{name}",
        labels=labels,
        created="2026-10-01T00:00:00Z",
        spec=TRAIN_SPEC,
        status=TrainingRunStatus.model_validate(status),
    )


def ref(name: str) -> dict[str, Any]:
    return {"trainingRunRef": {"name": name}}


def served(status: ModelDeploymentStatus) -> str | None:
    return status.model_version.training_run if status.model_version else None


@dataclass
class World:
    """The ModelDeployment, its children and pods as the indexes would show them, changed only by plans."""

    spec: dict[str, Any]
    runs: list[RunSummary] = field(default_factory=list)
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    children: dict[tuple[str, str], ChildView] = field(default_factory=dict)
    pods: dict[str, list[ServerPod]] = field(default_factory=dict)
    generation: int = 1
    spec_error: str | None = None
    settings: OperatorSettings = SETTINGS

    def observe(self) -> ObservedModelDeployment:
        owner = Owner(
            kind="ModelDeployment", name="iris", namespace="ml", uid="md-1", generation=self.generation
        )
        spec = None if self.spec_error else ModelDeploymentSpec.model_validate(self.spec)
        return ObservedModelDeployment(
            owner=owner,
            spec=spec,
            spec_error=self.spec_error,
            status=self.status,
            settings=self.settings,
            now=T0,
            runs=list(self.runs),
            children=list(self.children.values()),
            pods=self.pods,
        )

    def reconcile(self) -> Plan[ModelDeploymentStatus]:
        """Plan, then carry the plan out: applied children appear (not yet rolled out), deleted ones vanish."""
        plan = plan_modeldeployment(self.observe())
        for action in plan.actions:
            if isinstance(action, Apply):
                view = child_view(action.body)
                old = self.children.get((view.kind, view.name))
                generation = (old.generation + 1) if old else 1
                status = dict(old.status or {}) if old else {}
                self.children[(view.kind, view.name)] = replace(view, generation=generation, status=status)
            elif isinstance(action, Delete):
                del self.children[(action.kind, action.name)]
        self.status = plan.status
        return plan

    def roll_out(self, hpa_replicas: int | None = None) -> None:
        """The Deployment controller finishes: every desired pod updated and ready (HPA-set count if given)."""
        for key, child in self.children.items():
            if child.kind != "Deployment":
                continue
            replicas = hpa_replicas if child.spec_replicas is None else child.spec_replicas
            status = {
                "observedGeneration": child.generation,
                "replicas": replicas,
                "readyReplicas": replicas,
                "updatedReplicas": replicas,
            }
            self.children[key] = replace(child, status=status, spec_replicas=replicas)

    def edit(self, **spec: Any) -> None:
        self.spec = {**self.spec, **spec}
        self.spec = {k: v for k, v in self.spec.items() if v is not None}
        self.generation += 1

    def ready(self, **kwargs: Any) -> World:
        """Reconcile, roll out, reconcile: the deployment is Ready."""
        self.reconcile()
        self.roll_out(**kwargs)
        self.reconcile()
        assert self.status.phase == "Ready", self.status
        return self


def kinds(plan: Plan[Any]) -> list[tuple[str, str, str]]:
    """(action, kind, name) of every action, in order."""
    out = []
    for action in plan.actions:
        if isinstance(action, Apply | Create):
            out.append((type(action).__name__, action.body["kind"], action.body["metadata"]["name"]))
        elif isinstance(action, Delete):
            out.append(("Delete", action.kind, action.name))
    return out


def events(plan: Plan[Any]) -> list[tuple[str, str]]:
    return [(str(e.type), e.reason) for e in plan.events]


def condition(status: ModelDeploymentStatus, type_: str) -> tuple[str, str] | None:
    cond = find_condition(status.conditions or [], type_)
    return (cond.status, cond.reason) if cond else None


# --- first deploy and steady state --------------------------------------------------------------------------


def test_a_first_deploy_creates_the_claim_then_applies_the_service_the_network_policy_and_the_deployment() -> (
    None
):
    world = World({"model": ref("iris-a"), "replicas": 2}, runs=[run("iris-a")])
    plan = world.reconcile()
    assert kinds(plan) == [
        ("Create", "PersistentVolumeClaim", "gyre-artifacts"),
        ("Apply", "Service", "iris"),
        ("Apply", "NetworkPolicy", "iris"),
        ("Apply", "Deployment", "iris"),
    ]
    assert all(
        a.body["metadata"]["annotations"]["gyre.dev/applied-hash"]
        for a in plan.actions
        if isinstance(a, Apply)
    )
    assert plan.status.phase == "Progressing"
    assert condition(plan.status, "Ready") == ("False", "RollingOut")
    assert condition(plan.status, "Progressing") == ("True", "RollingOut")
    assert condition(plan.status, "Degraded") == ("False", "Healthy")
    assert events(plan) == [("Normal", "ModelRollout")]
    assert served(plan.status) == "iris-a" and plan.status.replicas == 2
    assert plan.status.url == "http://iris.ml.svc.cluster.local"


def test_a_store_without_a_claim_creates_none() -> None:
    world = World({"model": {"uri": "s3://bucket/models/iris"}}, runs=[])
    obs = replace(world.observe(), settings=OperatorSettings(artifact_store="s3://bucket"))
    assert [k for k, _, _ in kinds(plan_modeldeployment(obs))] == ["Apply", "Apply", "Apply"]


@pytest.mark.parametrize(
    ("model", "pin"),
    [
        ({"uri": "s3://bucket/models/iris"}, None),
        ({"uri": "s3://bucket/models/iris", "sha256": "ab" * 32}, "ab" * 32),
        ({"uri": "s3://bucket/models/iris", "sha256": "sha256:" + "ab" * 32}, "ab" * 32),
    ],
)
def test_a_uri_model_is_served_pinned_to_its_sha256_when_given(
    model: dict[str, str], pin: str | None
) -> None:
    world = World({"model": model}, runs=[])
    plan = world.reconcile()
    (deployment,) = [a.body for a in plan.actions if isinstance(a, Apply) and a.body["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env.get("GYRE_MODEL_SHA256") == pin
    assert plan.status.model_version is not None and plan.status.model_version.sha256 == pin


def test_in_steady_state_a_reconcile_plans_nothing_and_changes_no_status() -> None:
    world = World({"model": ref("iris-a"), "replicas": 2}, runs=[run("iris-a")]).ready()
    before = world.status
    plan = world.reconcile()
    assert plan.actions == [] and plan.events == []
    assert status_patch(before, plan.status) == {}


def test_the_ready_transition_posts_one_event_and_only_once() -> None:
    world = World({"model": ref("iris-a")}, runs=[run("iris-a")])
    world.reconcile()
    world.roll_out()
    plan = world.reconcile()
    assert events(plan) == [("Normal", "Ready")]
    assert (
        plan.events[0].message
        == "serving TrainingRun iris-a (sha256 iris-airis-a) at http://iris.ml.svc.cluster.local"
    )
    assert condition(plan.status, "Ready") == ("True", "Serving")
    assert condition(plan.status, "Progressing") == ("False", "RolledOut")
    assert events(world.reconcile()) == []


# --- spec changes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            {"replicas": 3},
            [("Create", "PersistentVolumeClaim", "gyre-artifacts"), ("Apply", "Deployment", "iris")],
            id="a new replica count re-applies only the Deployment",
        ),
        pytest.param(
            {"maxBodyBytes": 4096},
            [("Create", "PersistentVolumeClaim", "gyre-artifacts"), ("Apply", "Deployment", "iris")],
            id="a server setting re-applies only the Deployment",
        ),
        pytest.param(
            {"port": 9000},
            [
                ("Create", "PersistentVolumeClaim", "gyre-artifacts"),
                ("Apply", "NetworkPolicy", "iris"),
                ("Apply", "Deployment", "iris"),
            ],
            id="the container port re-applies the Deployment and the NetworkPolicy, the Service targets it by name",
        ),
    ],
)
def test_a_spec_change_re_applies_only_the_child_it_changes(
    edit: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    world = World({"model": ref("iris-a"), "replicas": 2}, runs=[run("iris-a")]).ready()
    world.edit(**edit)
    assert kinds(world.reconcile()) == expected


def test_a_new_monitoring_namespace_re_applies_only_the_network_policy() -> None:
    world = World({"model": ref("iris-a"), "replicas": 2}, runs=[run("iris-a")]).ready()
    world.settings = SETTINGS.model_copy(update={"monitoring_namespace": "monitoring"})
    plan = world.reconcile()
    assert kinds(plan) == [("Apply", "NetworkPolicy", "iris")]
    assert plan.status.phase == "Ready" and plan.events == []
    assert world.reconcile().actions == []


def test_turning_network_policies_off_deletes_the_existing_one_once() -> None:
    world = World({"model": ref("iris-a"), "replicas": 2}, runs=[run("iris-a")]).ready()
    world.settings = SETTINGS.model_copy(update={"network_policy": False})
    assert kinds(world.reconcile()) == [("Delete", "NetworkPolicy", "iris")]
    assert world.reconcile().actions == []


def test_an_autoscaling_change_re_applies_only_the_hpa() -> None:
    scaling = {"minReplicas": 1, "maxReplicas": 3}
    world = World({"model": ref("iris-a"), "autoscaling": scaling}, runs=[run("iris-a")]).ready(
        hpa_replicas=2
    )
    world.edit(autoscaling={**scaling, "maxReplicas": 5})
    plan = world.reconcile()
    assert kinds(plan) == [("Apply", "HorizontalPodAutoscaler", "iris")]
    assert plan.status.phase == "Ready"


def test_an_autoscaled_deployment_reports_the_replica_count_the_hpa_set() -> None:
    world = World(
        {"model": ref("iris-a"), "autoscaling": {"minReplicas": 1, "maxReplicas": 5}}, runs=[run("iris-a")]
    )
    plan = world.reconcile()
    assert ("Apply", "HorizontalPodAutoscaler", "iris") in kinds(plan)
    deployment = next(a.body for a in plan.actions if isinstance(a, Apply) and a.body["kind"] == "Deployment")
    assert "replicas" not in deployment["spec"], "the HPA owns the count"
    world.roll_out(hpa_replicas=4)
    assert world.reconcile().status.replicas == 4


@pytest.mark.parametrize(
    ("hpa_exists", "expected"),
    [
        pytest.param(True, [("Delete", "HorizontalPodAutoscaler", "iris")], id="an existing HPA is deleted"),
        pytest.param(False, [], id="a missing HPA is not deleted again"),
    ],
)
def test_removing_autoscaling_deletes_the_hpa_only_when_it_exists(
    hpa_exists: bool, expected: list[tuple[str, str, str]]
) -> None:
    world = World(
        {"model": ref("iris-a"), "autoscaling": {"minReplicas": 2, "maxReplicas": 3}}, runs=[run("iris-a")]
    ).ready(hpa_replicas=2)
    world.edit(autoscaling=None, replicas=2)
    if not hpa_exists:
        del world.children[("HorizontalPodAutoscaler", "iris")]
    deletes = [k for k in kinds(world.reconcile()) if k[0] == "Delete"]
    assert deletes == expected


# --- canary ------------------------------------------------------------------------------------------------


def test_adding_a_canary_splits_the_pods_and_applies_its_deployment() -> None:
    world = World({"model": ref("iris-a"), "replicas": 4}, runs=[run("iris-a"), run("iris-b")]).ready()
    world.edit(canary={"model": ref("iris-b"), "weight": 25})
    plan = world.reconcile()
    assert kinds(plan) == [
        ("Create", "PersistentVolumeClaim", "gyre-artifacts"),
        ("Apply", "Deployment", "iris"),
        ("Apply", "Deployment", "iris-canary"),
    ]
    replicas = {
        a.body["metadata"]["name"]: a.body["spec"]["replicas"] for a in plan.actions if isinstance(a, Apply)
    }
    assert replicas == {"iris": 3, "iris-canary": 1}
    assert plan.status.canary is not None and plan.status.canary.weight == 25
    assert plan.status.canary.model is not None and plan.status.canary.model.training_run == "iris-b"
    assert plan.status.phase == "Progressing"
    assert condition(plan.status, "Ready") == ("True", "Serving"), "the stable pods keep serving"
    world.roll_out()
    ready = world.reconcile()
    assert ready.status.phase == "Ready"
    ready_cond = find_condition(ready.status.conditions or [], "Ready")
    assert (
        ready_cond is not None
        and "canary TrainingRun iris-b" in ready_cond.message
        and "(25%)" in ready_cond.message
    )


def test_removing_the_canary_deletes_its_deployment_once() -> None:
    world = World(
        {"model": ref("iris-a"), "replicas": 4, "canary": {"model": ref("iris-b"), "weight": 25}},
        runs=[run("iris-a"), run("iris-b")],
    ).ready()
    world.edit(canary=None)
    plan = world.reconcile()
    assert ("Delete", "Deployment", "iris-canary") in kinds(plan)
    assert plan.status.canary is None
    assert [k for k in kinds(world.reconcile()) if k[0] == "Delete"] == []


def test_a_canary_of_weight_zero_is_no_canary() -> None:
    world = World(
        {"model": ref("iris-a"), "replicas": 2, "canary": {"model": ref("missing"), "weight": 0}},
        runs=[run("iris-a")],
    )
    plan = world.reconcile()
    assert ("Apply", "Deployment", "iris-canary") not in kinds(plan)
    assert plan.status.canary is None and plan.status.phase == "Progressing"


# --- which model -------------------------------------------------------------------------------------------


def test_latest_validated_serves_the_newest_run_that_passed_its_gates_and_never_a_failed_one() -> None:
    runs = [
        run("iris-old", "2026-11-01T00:00:00Z", app="iris"),
        run("iris-bad", "2026-11-02T00:00:00Z", passed=False, app="iris"),
        run("iris-unjudged", "2026-11-02T12:00:00Z", passed=None, app="iris"),
        run("wine-new", "2026-11-03T00:00:00Z", app="wine"),
    ]
    spec = {"promotion": {"policy": "LatestValidated", "selector": {"matchLabels": {"app": "iris"}}}}
    world = World(spec, runs=runs).ready()
    assert served(world.status) == "iris-old"

    world.runs.append(run("iris-new", "2026-11-04T00:00:00Z", app="iris"))
    plan = world.reconcile()
    assert kinds(plan) == [
        ("Create", "PersistentVolumeClaim", "gyre-artifacts"),
        ("Apply", "Deployment", "iris"),
    ]
    assert served(plan.status) == "iris-new"
    assert events(plan) == [("Normal", "ModelRollout")]
    assert plan.status.phase == "Progressing", "a just-applied model is not rolled out yet"
    assert condition(plan.status, "Ready") == ("True", "Serving")


def test_latest_validated_falls_back_to_spec_model_until_a_run_validates() -> None:
    spec = {"promotion": {"policy": "LatestValidated"}, "model": {"uri": "s3://bucket/models/seed"}}
    plan = World(spec, runs=[run("iris-bad", passed=False)]).reconcile()
    assert (
        plan.status.model_version is not None and plan.status.model_version.uri == "s3://bucket/models/seed"
    )


def test_the_inference_path_follows_the_runs_onnx_verdict() -> None:
    for onnx, expected in (("verified", "onnx"), ("unavailable", "sklearn"), (None, None)):
        plan = World({"model": ref("iris-a")}, runs=[run("iris-a", onnx=onnx)]).reconcile()
        assert plan.status.inference_path == expected


# --- a model that cannot be served ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "runs", "phase", "reason", "event_type", "progressing"),
    [
        pytest.param(
            {"model": ref("iris-a")},
            [],
            "Pending",
            "TrainingRunNotFound",
            "Normal",
            "True",
            id="a missing run is waited for",
        ),
        pytest.param(
            {"model": ref("iris-a")},
            [run("iris-a", phase="Running", passed=None)],
            "Pending",
            "WaitingForTraining",
            "Normal",
            "True",
            id="a running run is waited for",
        ),
        pytest.param(
            {"promotion": {"policy": "LatestValidated"}},
            [run("iris-bad", passed=False)],
            "Pending",
            "WaitingForValidatedRun",
            "Normal",
            "True",
            id="promotion waits for a run that passes its gates",
        ),
        pytest.param(
            {"model": ref("iris-a")},
            [run("iris-a", phase="Failed", passed=None)],
            "Degraded",
            "TrainingRunFailed",
            "Warning",
            "False",
            id="a failed run is final",
        ),
        pytest.param(
            {"model": ref("iris-a")},
            [run("iris-a", passed=False)],
            "Degraded",
            "GatesFailed",
            "Warning",
            "False",
            id="a run that failed its gates is refused for good",
        ),
        pytest.param(
            {"model": ref("iris-a"), "canary": {"model": ref("nope"), "weight": 10}},
            [run("iris-a")],
            "Pending",
            "TrainingRunNotFound",
            "Normal",
            "True",
            id="an unavailable canary holds the whole rollout",
        ),
    ],
)
def test_with_nothing_served_yet_an_unavailable_model_writes_nothing_and_says_why(
    spec: dict[str, Any],
    runs: list[RunSummary],
    phase: str,
    reason: str,
    event_type: str,
    progressing: str,
) -> None:
    world = World(spec, runs=runs)
    plan = world.reconcile()
    assert plan.actions == []
    assert plan.status.phase == phase
    assert condition(plan.status, "Ready") == ("False", reason)
    assert condition(plan.status, "Progressing") == (progressing, reason)
    assert condition(plan.status, "Degraded") == ("True" if phase == "Degraded" else "False", reason)
    assert events(plan) == [(event_type, reason)]
    assert events(world.reconcile()) == [], "the same reason is reported once"


def test_the_gates_failed_message_names_the_failed_gate() -> None:
    plan = World({"model": ref("iris-a")}, runs=[run("iris-a", passed=False)]).reconcile()
    assert plan.events[0].message == "TrainingRun iris-a may not be served: accuracy 0.41 < 0.9"


@pytest.mark.parametrize(
    ("runs", "phase", "reason", "degraded"),
    [
        pytest.param([run("iris-a")], "Ready", "TrainingRunNotFound", "False", id="waiting keeps the phase"),
        pytest.param(
            [run("iris-a"), run("iris-b", passed=False)],
            "Degraded",
            "GatesFailed",
            "True",
            id="a final refusal degrades but keeps serving",
        ),
    ],
)
def test_while_serving_an_unavailable_new_model_keeps_the_old_one_up(
    runs: list[RunSummary], phase: str, reason: str, degraded: str
) -> None:
    world = World({"model": ref("iris-a")}, runs=runs).ready()
    world.edit(model=ref("iris-b"))
    plan = world.reconcile()
    assert plan.actions == [], "nothing is re-applied: the old model keeps serving"
    assert served(plan.status) == "iris-a"
    assert plan.status.phase == phase
    assert condition(plan.status, "Ready") == ("True", "Serving")
    assert condition(plan.status, "Progressing") == ("False", reason)
    assert (condition(plan.status, "Degraded") or ("", ""))[0] == degraded
    assert len(plan.events) == 1 and plan.events[0].reason == reason


# --- health ------------------------------------------------------------------------------------------------


def stuck_pod(name: str = "iris-7d9-x") -> ServerPod:
    return server_pod(
        {
            "metadata": {"name": name},
            "status": {
                "containerStatuses": [
                    {
                        "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}},
                        "lastState": {},
                    }
                ]
            },
        }
    )


def test_a_stuck_pod_degrades_the_deployment_with_one_warning() -> None:
    world = World({"model": ref("iris-a")}, runs=[run("iris-a")])
    world.reconcile()
    world.pods = {"stable": [stuck_pod()]}
    plan = world.reconcile()
    assert plan.actions == []
    assert plan.status.phase == "Degraded"
    assert condition(plan.status, "Ready") == ("False", "ServerFailing")
    assert condition(plan.status, "Progressing") == ("False", "RolloutStuck")
    assert condition(plan.status, "Degraded") == ("True", "ServerFailing")
    assert events(plan) == [("Warning", "ServerFailing")]
    assert plan.events[0].message == "pod iris-7d9-x: ErrImageNeverPull image not present"
    again = world.reconcile()
    assert again.events == [] and status_patch(plan.status, again.status) == {}


def test_a_stuck_canary_degrades_the_deployment_too() -> None:
    world = World(
        {"model": ref("iris-a"), "replicas": 2, "canary": {"model": ref("iris-b"), "weight": 50}},
        runs=[run("iris-a"), run("iris-b")],
    ).ready()
    world.pods = {"canary": [stuck_pod("iris-canary-1")]}
    plan = world.reconcile()
    assert plan.status.phase == "Degraded" and events(plan) == [("Warning", "ServerFailing")]


def test_a_recovered_server_is_ready_again() -> None:
    world = World({"model": ref("iris-a")}, runs=[run("iris-a")])
    world.reconcile()
    world.pods = {"stable": [stuck_pod()]}
    world.reconcile()
    world.pods = {}
    world.roll_out()
    plan = world.reconcile()
    assert plan.status.phase == "Ready" and events(plan) == [("Normal", "Ready")]
    assert condition(plan.status, "Degraded") == ("False", "Healthy")


def test_a_deployment_whose_template_is_not_yet_observed_is_still_rolling_out() -> None:
    world = World({"model": ref("iris-a"), "replicas": 2}, runs=[run("iris-a")]).ready()
    key = ("Deployment", "iris")
    world.children[key] = replace(world.children[key], generation=world.children[key].generation + 1)
    plan = world.reconcile()
    assert plan.status.phase == "Progressing"
    assert condition(plan.status, "Ready") == ("True", "Serving")


def test_an_unannotated_child_from_an_older_operator_is_adopted_without_a_rollout_flap() -> None:
    world = World({"model": ref("iris-a"), "replicas": 2}, runs=[run("iris-a")]).ready()
    for key, child in list(world.children.items()):
        world.children[key] = replace(child, applied_hash=None)
    plan = world.reconcile()
    assert [k[1] for k in kinds(plan) if k[0] == "Apply"] == ["Service", "NetworkPolicy", "Deployment"]
    assert plan.status.phase == "Ready" and plan.events == []


# --- invalid spec ------------------------------------------------------------------------------------------


def test_an_invalid_spec_degrades_with_one_event_per_generation_and_writes_nothing() -> None:
    world = World({}, spec_error="spec.replicas: Input should be greater than or equal to 0")
    world.status = ModelDeploymentStatus(observed_generation=0)
    plan = world.reconcile()
    assert plan.actions == []
    assert plan.status.phase == "Degraded" and plan.status.observed_generation == 1
    assert condition(plan.status, "Ready") == ("False", "InvalidSpec")
    assert condition(plan.status, "Degraded") == ("True", "InvalidSpec")
    assert events(plan) == [("Warning", "InvalidSpec")]
    assert world.reconcile().events == []


# --- image policy ---------------------------------------------------------------------------------------------


def test_a_server_image_outside_the_policy_is_refused_with_a_warning_and_nothing_is_applied() -> None:
    world = World({"model": ref("iris-a"), "image": "evil.example.com/server:1"}, runs=[run("iris-a")])
    plan = world.reconcile()
    assert kinds(plan) == [] and plan.status.phase == "Degraded"
    assert condition(plan.status, "Ready") == ("False", "ImageNotAllowed")
    assert events(plan) == [("Warning", "ImageNotAllowed")]


def test_a_refused_image_change_leaves_the_running_servers_serving() -> None:
    world = World({"model": ref("iris-a")}, runs=[run("iris-a")]).ready()
    world.edit(image="evil.example.com/server:1")
    plan = world.reconcile()
    assert kinds(plan) == [] and ("Deployment", "iris") in world.children
    assert condition(plan.status, "Degraded") == ("True", "ImageNotAllowed")
    assert events(plan) == [("Warning", "ImageNotAllowed")]
