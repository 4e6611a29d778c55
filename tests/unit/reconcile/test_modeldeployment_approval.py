"""Approval before production, on plain data: an unapproved validated run waits and is never served (stable or canary),
an approval counts only for the digest it names, and status.history records what was served, why and who approved it.

Reuses the in-memory World of test_modeldeployment_plan (plans applied as the API server would).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from test_modeldeployment_plan import T0, World, condition, events, ref, run, served

from gyre.api.common import find_condition
from gyre.api.modeldeployment import HISTORY_LIMIT, ModelDeploymentSpec
from gyre.api.trainingrun import Lineage
from gyre.controllers.indexes import RunSummary
from gyre.reconcile.approval import RunApproval, approval_command, run_approval
from gyre.reconcile.plan import Apply, status_patch

AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
LATEST = {"promotion": {"policy": "LatestValidated", "approval": "Required"}}


def approved(summary: RunSummary, by: str = "alice", sha256: str | None = None) -> RunSummary:
    """The run with approval annotations for `sha256` (default: its own current digest)."""
    digest = sha256 if sha256 is not None else summary.status.model_sha256 or ""
    return replace(summary, approval=RunApproval(by=by, sha256=digest, at=AT))


def retrained(summary: RunSummary, digest: str, finished: str) -> RunSummary:
    """The same run name with another model (deleted and recreated, trained again), keeping its annotations."""
    status = summary.status.model_copy(
        update={"model_sha256": digest, "completion_time": datetime.fromisoformat(finished)}
    )
    return replace(summary, status=status)


def message(world: World, type_: str) -> str:
    cond = find_condition(world.status.conditions or [], type_)
    assert cond is not None, type_
    return cond.message


def test_an_unapproved_validated_run_waits_with_the_command_that_approves_it_and_nothing_is_written() -> None:
    world = World(dict(LATEST), runs=[run("iris-a", app="iris")])
    plan = world.reconcile()
    assert plan.actions == []
    assert plan.status.model_version is None and plan.status.phase == "Pending"
    assert condition(plan.status, "Approved") == ("False", "AwaitingApproval")
    assert condition(plan.status, "Ready") == ("False", "AwaitingApproval")
    text = message(world, "Approved")
    assert "TrainingRun iris-a (sha256 iris-airis-a) awaits approval" in text
    assert approval_command("ml", "iris-a", "iris-a" * 8) in text
    # One Event per run and digest, not one per reconcile.
    assert events(plan) == [("Normal", "AwaitingApproval")]
    assert "kubectl annotate trainingrun -n ml iris-a" in plan.events[0].message
    # Waiting is a steady state: nothing written, no Event, the same status.
    before = world.status
    again = world.reconcile()
    assert again.actions == [] and again.events == [] and status_patch(before, again.status) == {}


def test_approval_of_the_runs_digest_rolls_it_out_and_records_who_approved_it_and_when() -> None:
    world = World(dict(LATEST), runs=[run("iris-a")])
    world.reconcile()
    world.runs = [approved(run("iris-a"))]
    plan = world.reconcile()
    assert served(plan.status) == "iris-a"
    assert any(isinstance(a, Apply) and a.body["kind"] == "Deployment" for a in plan.actions)
    version = plan.status.model_version
    assert version is not None and (version.approved_by, version.approved_at) == ("alice", AT)
    assert condition(plan.status, "Approved") == ("True", "Approved")
    assert "approved by alice at 2026-12-02T08:00:00+00:00" in message(world, "Approved")
    assert ("Normal", "Approved") in events(plan) and ("Normal", "ModelRollout") in events(plan)
    approved_event = next(e for e in plan.events if e.reason == "Approved")
    assert "TrainingRun iris-a (sha256 iris-airis-a) approved by alice" in approved_event.message


def test_an_approval_for_another_digest_does_not_approve_the_run() -> None:
    world = World(dict(LATEST), runs=[approved(run("iris-a"), sha256="f" * 64)])
    plan = world.reconcile()
    assert plan.actions == [] and plan.status.model_version is None
    assert condition(plan.status, "Approved") == ("False", "AwaitingApproval")
    assert "the approval by alice is for sha256 ffffffffffff, another model than the run has now" in message(
        world, "Approved"
    )


def test_a_newer_unapproved_run_waits_while_the_approved_one_keeps_serving() -> None:
    world = World(dict(LATEST), runs=[approved(run("iris-a", "2026-11-01T00:00:00Z"))]).ready()
    world.runs.append(run("iris-b", "2026-11-02T00:00:00Z"))
    plan = world.reconcile()
    assert plan.actions == [] and served(plan.status) == "iris-a"
    assert condition(plan.status, "Ready") == ("True", "Serving")
    assert condition(plan.status, "Approved") == ("False", "AwaitingApproval")
    assert "TrainingRun iris-b" in message(world, "Approved")
    assert events(plan) == [("Normal", "AwaitingApproval")]
    # Approving it promotes it.
    world.runs[1] = approved(world.runs[1], by="bob")
    plan = world.reconcile()
    assert served(plan.status) == "iris-b"
    assert condition(plan.status, "Approved") == ("True", "Approved")


def test_an_approved_run_replaced_under_the_same_name_is_not_served_and_the_older_approved_one_is() -> None:
    world = World(
        dict(LATEST),
        runs=[
            approved(run("iris-a", "2026-11-01T00:00:00Z")),
            approved(run("iris-b", "2026-11-02T00:00:00Z")),
        ],
    ).ready()
    assert served(world.status) == "iris-b"
    # iris-b is deleted and created again (same name, same annotations copied along), trained to another model.
    world.runs[1] = retrained(world.runs[1], "e" * 64, "2026-11-03T00:00:00+00:00")
    plan = world.reconcile()
    assert served(plan.status) == "iris-a"
    assert plan.status.model_version is not None and plan.status.model_version.sha256 == "iris-a" * 8
    assert condition(plan.status, "Approved") == ("False", "AwaitingApproval")
    assert "TrainingRun iris-b (sha256 eeeeeeeeeeee) awaits approval" in message(world, "Approved")
    assert "is for sha256 iris-biris-b" in message(world, "Approved")


def test_a_run_named_by_spec_waits_for_approval_and_the_served_model_stays() -> None:
    spec = {"model": ref("iris-a"), "promotion": {"approval": "Required"}}
    world = World(spec, runs=[approved(run("iris-a")), run("iris-b")]).ready()
    world.edit(model=ref("iris-b"))
    plan = world.reconcile()
    assert plan.actions == [] and served(plan.status) == "iris-a"
    assert condition(plan.status, "Progressing") == ("False", "AwaitingApproval")
    assert condition(plan.status, "Approved") == ("False", "AwaitingApproval")
    # The waiting Event is posted once, not by both conditions.
    assert events(plan) == [("Normal", "AwaitingApproval")]


def test_an_unapproved_canary_is_never_served() -> None:
    spec: dict[str, Any] = {
        "model": ref("iris-a"),
        "promotion": {"approval": "Required"},
        "canary": {"model": ref("iris-b"), "weight": 20},
    }
    world = World(spec, runs=[approved(run("iris-a")), run("iris-b")])
    plan = world.reconcile()
    assert plan.actions == [] and plan.status.canary is None
    assert condition(plan.status, "Approved") == ("False", "AwaitingApproval")
    assert "TrainingRun iris-b" in message(world, "Approved")
    world.runs[1] = approved(world.runs[1])
    plan = world.reconcile()
    assert plan.status.canary is not None and plan.status.canary.model is not None
    assert plan.status.canary.model.approved_by == "alice"
    assert [e.track for e in plan.status.history or []] == ["stable", "canary"]


def test_a_withdrawn_approval_keeps_what_serves_and_waits_and_dropping_the_requirement_clears_the_condition() -> (
    None
):
    world = World(dict(LATEST), runs=[approved(run("iris-a"))]).ready()
    world.runs = [run("iris-a")]  # both annotations removed by a member of the group
    plan = world.reconcile()
    assert plan.actions == [] and served(plan.status) == "iris-a"
    assert condition(plan.status, "Approved") == ("False", "AwaitingApproval")
    world.edit(promotion={"policy": "LatestValidated"})
    plan = world.reconcile()
    assert condition(plan.status, "Approved") is None and served(plan.status) == "iris-a"


def test_without_required_approval_runs_are_promoted_as_before_and_no_approved_condition_is_set() -> None:
    world = World({"promotion": {"policy": "LatestValidated"}}, runs=[run("iris-a")]).ready()
    assert served(world.status) == "iris-a"
    assert condition(world.status, "Approved") is None
    assert world.status.model_version is not None and world.status.model_version.approved_by is None


def test_approval_required_refuses_a_uri_model_in_the_crd_rule() -> None:
    # The rule is CEL in the CRD (checked on the API server in tests/integration); its text names both fields.
    rules = ModelDeploymentSpec.model_json_schema()["x-kubernetes-validations"]
    assert any("approval" in r["rule"] and "trainingRunRef" in r["message"] for r in rules)


def test_history_records_each_model_once_with_its_trigger_gates_and_approval_and_closes_the_replaced_one() -> (
    None
):
    first = run("iris-a", "2026-11-01T00:00:00Z")
    first = replace(
        first, status=first.status.model_copy(update={"lineage": Lineage(trigger="drift:ml/iris")})
    )
    world = World(dict(LATEST), runs=[approved(first)]).ready()
    world.reconcile()
    (entry,) = world.status.history or []
    assert (entry.track, entry.training_run, entry.source) == ("stable", "iris-a", "LatestValidated")
    assert (entry.served_from, entry.trigger) == (T0, "drift:ml/iris")
    assert entry.gates == "GatesPassed: accuracy 0.97 >= 0.9"
    assert (entry.approved_by, entry.approved_at, entry.served_until) == ("alice", AT, None)
    world.runs.append(approved(run("iris-b", "2026-11-02T00:00:00Z"), by="bob"))
    world.reconcile()
    old, new = world.status.history or []
    assert old.served_until == T0 and new.training_run == "iris-b" and new.approved_by == "bob"


def test_history_keeps_only_the_newest_entries() -> None:
    world = World({"model": ref("r0")}, runs=[run(f"r{i}") for i in range(HISTORY_LIMIT + 5)])
    for i in range(HISTORY_LIMIT + 5):
        world.edit(model=ref(f"r{i}"))
        world.reconcile()
    history = world.status.history or []
    assert len(history) == HISTORY_LIMIT
    assert history[-1].training_run == f"r{HISTORY_LIMIT + 4}" and history[0].training_run == "r5"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, None),
        ({"annotations": {"gyre.dev/approved-sha256": "ab" * 32}}, None),
        (
            {
                "annotations": {
                    "gyre.dev/approved-by": "alice",
                    "gyre.dev/approved-sha256": "sha256:" + "ab" * 32,
                }
            },
            RunApproval("alice", "ab" * 32, None),
        ),
        (
            {
                "annotations": {"gyre.dev/approved-by": "alice"},
                "managedFields": [
                    {"manager": "kopf", "time": "2026-12-02T09:00:00Z", "fieldsV1": {"f:status": {}}},
                    {
                        "manager": "kubectl-annotate",
                        "time": "2026-12-02T08:00:00Z",
                        "fieldsV1": {"f:metadata": {"f:annotations": {"f:gyre.dev/approved-by": {}}}},
                    },
                ],
            },
            RunApproval("alice", "", AT),
        ),
    ],
)
def test_run_approval_reads_the_annotations_and_the_time_they_were_written(
    metadata: dict[str, Any], expected: RunApproval | None
) -> None:
    assert run_approval(metadata) == expected


def test_an_approval_without_a_digest_approves_nothing() -> None:
    assert not RunApproval("alice", "", AT).covers("ab" * 32)
    assert RunApproval("alice", "ab" * 32, AT).covers("sha256:" + "ab" * 32)
    assert not RunApproval("alice", "ab" * 32, AT).covers("cd" * 32)
