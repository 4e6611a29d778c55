"""The pure decisions of the ModelDeployment controller: which run gets promoted, and when a rollout is healthy."""

from __future__ import annotations

from typing import Any

from gyre.api.common import LabelSelector
from gyre.controllers.modeldeployment import choose_latest_validated, selector_matches, track_health


def run(
    name: str, completed: str, *, validated: str | None = "True", phase: str = "Succeeded", **labels: str
) -> dict[str, Any]:
    conditions = (
        []
        if validated is None
        else [{"type": "Validated", "status": validated, "reason": "R", "message": ""}]
    )
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": "2026-11-01T00:00:00Z"},
        "status": {
            "phase": phase,
            "completionTime": completed,
            "modelUri": f"pvc://a/models/ns/{name}",
            "conditions": conditions,
        },
    }


def test_newest_validated_run_wins() -> None:
    runs = [
        run("a", "2026-11-20T10:00:00Z"),
        run("b", "2026-11-21T10:00:00Z"),
        run("c", "2026-11-19T10:00:00Z"),
    ]
    assert choose_latest_validated(runs, None)["metadata"]["name"] == "b"  # type: ignore[index]


def test_a_run_that_failed_its_gates_is_never_promoted_even_if_newest() -> None:
    runs = [run("good", "2026-11-20T10:00:00Z"), run("bad", "2026-11-22T10:00:00Z", validated="False")]
    assert choose_latest_validated(runs, None)["metadata"]["name"] == "good"  # type: ignore[index]
    assert choose_latest_validated([run("unvalidated", "2026-11-22T10:00:00Z", validated=None)], None) is None
    assert choose_latest_validated([run("running", "", phase="Running")], None) is None


def test_selector_limits_the_candidates() -> None:
    runs = [
        run("iris-1", "2026-11-20T10:00:00Z", app="iris"),
        run("wine-1", "2026-11-21T10:00:00Z", app="wine"),
    ]
    chosen = choose_latest_validated(runs, LabelSelector.model_validate({"matchLabels": {"app": "iris"}}))
    assert chosen is not None and chosen["metadata"]["name"] == "iris-1"


def test_selector_expressions() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["gold", "silver"]},
                {"key": "experimental", "operator": "DoesNotExist"},
            ]
        }
    )
    assert selector_matches(sel, {"tier": "gold"})
    assert not selector_matches(sel, {"tier": "bronze"})
    assert not selector_matches(sel, {"tier": "gold", "experimental": "yes"})
    assert selector_matches(None, {})


def deployment(generation: int, observed: int, replicas: int, ready: int, updated: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
        },
    }


def pod(reason: str | None, last_message: str = "") -> dict[str, Any]:
    state = {"waiting": {"reason": reason, "message": "back-off"}} if reason else {"running": {}}
    return {
        "metadata": {"name": "iris-abc"},
        "status": {
            "containerStatuses": [{"state": state, "lastState": {"terminated": {"message": last_message}}}]
        },
    }


def test_rolled_out_only_when_every_desired_replica_is_updated_and_ready() -> None:
    assert track_health(deployment(2, 2, 2, 2, 2), [pod(None)], 2).rolled_out
    assert not track_health(deployment(3, 2, 2, 2, 2), [], 2).rolled_out, "template change not yet observed"
    assert not track_health(deployment(2, 2, 3, 2, 1), [], 2).rolled_out, (
        "surge pod of the new version not ready"
    )
    assert not track_health(None, [], 1).rolled_out


def test_a_crash_looping_server_is_reported_with_its_error() -> None:
    health = track_health(
        deployment(2, 2, 2, 1, 1), [pod("CrashLoopBackOff", "sha256 mismatch: refusing to load")], 2
    )
    assert not health.rolled_out
    assert (
        health.stuck is not None and "CrashLoopBackOff" in health.stuck and "sha256 mismatch" in health.stuck
    )
