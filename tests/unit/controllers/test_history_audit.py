"""`gyre history`: status.history newest first, completed from the runs and their manifests only where they still hold
the digest that was served, and the Events in time order."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from gyre.api.modeldeployment import ModelDeploymentStatus
from gyre.api.trainingrun import TrainingRunStatus
from gyre.cli import build_parser
from gyre.controllers.audit import (
    ManifestFacts,
    RunFacts,
    format_history,
    history_rows,
    manifest_facts,
    run_facts,
    timeline_events,
)

A, B = "a" * 64, "b" * 64
STATUS = ModelDeploymentStatus.model_validate(
    {
        "history": [
            {
                "track": "stable",
                "trainingRun": "iris-a",
                "sha256": A,
                "servedFrom": "2026-12-01T10:00:00Z",
                "servedUntil": "2026-12-02T09:00:00Z",
                "source": "LatestValidated",
            },
            {
                "track": "stable",
                "trainingRun": "iris-b",
                "sha256": B,
                "servedFrom": "2026-12-02T09:00:00Z",
                "source": "LatestValidated",
                "trigger": "drift:ml/iris",
                "gates": "GatesPassed: accuracy 0.97 >= 0.9",
                "approvedBy": "alice",
                "approvedAt": "2026-12-02T08:59:00Z",
            },
        ]
    }
)


def test_rows_are_newest_first_and_an_old_entry_is_completed_from_its_run_when_the_run_still_has_that_digest() -> (
    None
):
    run_a = run_facts(
        TrainingRunStatus.model_validate(
            {
                "modelSha256": A,
                "lineage": {"trigger": "manual"},
                "conditions": [
                    {
                        "type": "Validated",
                        "status": "True",
                        "reason": "GatesPassed",
                        "message": "accuracy 0.95 >= 0.9",
                        "lastTransitionTime": "2026-12-01T09:00:00Z",
                    }
                ],
            }
        )
    )
    newest, oldest = history_rows(STATUS, {"iris-a": run_a})
    assert (newest.training_run, newest.served_until, newest.approved_by) == ("iris-b", None, "alice")
    assert newest.note == "TrainingRun iris-b no longer exists"
    assert (oldest.trigger, oldest.gates) == ("manual", "GatesPassed: accuracy 0.95 >= 0.9")


def test_a_run_or_store_that_now_holds_another_model_completes_nothing_and_says_so() -> None:
    other = RunFacts(sha256="c" * 64, trigger="manual", gates="GatesPassed: x")
    manifest = ManifestFacts(sha256="d" * 64, trigger="manual")
    _, oldest = history_rows(STATUS, {"iris-a": other}, {"iris-a": manifest})
    assert oldest.trigger is None and oldest.gates is None
    assert oldest.note == (
        "TrainingRun iris-a now has another model (sha256 cccccccccccc); "
        "the store now holds another manifest (sha256 dddddddddddd)"
    )


def test_the_manifest_in_the_store_gives_the_trigger_when_its_digest_is_the_one_served() -> None:
    raw = json.dumps({"lineage": {"trainingRun": "ml/iris-a", "trigger": "drift:ml/mon"}}).encode()
    facts = manifest_facts(raw)
    assert facts.sha256 == hashlib.sha256(raw).hexdigest()
    status = STATUS.model_copy(deep=True)
    assert status.history is not None
    status.history[0].sha256 = facts.sha256
    _, oldest = history_rows(status, {}, {"iris-a": facts})
    assert oldest.trigger == "drift:ml/mon" and oldest.note is not None
    assert "manifest in the store matches" in oldest.note


def test_the_report_prints_each_served_model_with_its_approver_and_the_events_in_time_order() -> None:
    events = timeline_events(
        [
            {
                "type": "Normal",
                "reason": "Approved",
                "message": "promoting iris-b",
                "lastTimestamp": "2026-12-02T09:00:01Z",
            },
            {
                "type": "Normal",
                "reason": "AwaitingApproval",
                "message": "TrainingRun iris-b awaits approval",
                "last_timestamp": datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
            },
        ]
    )
    assert [e.reason for e in events] == ["AwaitingApproval", "Approved"]
    text = format_history("ml/iris", history_rows(STATUS, {}), events)
    lines = text.splitlines()
    assert lines[0] == "ModelDeployment ml/iris: 2 model(s) served (status.history, newest first)"
    header, newest, oldest = lines[2:5]
    assert header.split() == [
        "FROM",
        "UNTIL",
        "TRACK",
        "MODEL",
        "SHA256",
        "SOURCE",
        "TRIGGER",
        "GATES",
        "APPROVED",
        "BY",
    ]
    assert "iris-b" in newest and "serving" in newest and "drift:ml/iris" in newest
    assert "alice at 2026-12-02T08:59:00Z" in newest
    assert "iris-a" in oldest and "2026-12-02T09:00:00Z" in oldest
    assert "  2026-12-02T08:00:00Z  Normal   AwaitingApproval   TrainingRun iris-b awaits approval" in lines


def test_gyre_history_is_a_subcommand_taking_namespace_slash_deployment() -> None:
    args = build_parser().parse_args(["history", "ml/iris", "-o", "json"])
    assert (args.deployment, args.output, args.store) == ("ml/iris", "json", None)
