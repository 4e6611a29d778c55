"""The DriftMonitor's guard rails and schedule, and the retrain run it builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gyre.api.driftmonitor import DriftMonitorSpec, RetrainSpec, Schedule, Thresholds
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.drift import build_retrain_run, drift_config, merge_spec
from gyre.builders.meta import Owner
from gyre.drift.check import ColumnOverride, DriftConfig
from gyre.reconcile.driftmonitor import decide_retrain, next_check_time

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RETRAIN = RetrainSpec.model_validate(
    {"enabled": True, "cooldown": "1h", "consecutiveChecks": 2, "maxPerDay": 2}
)


def decide(retrain: RetrainSpec | None = RETRAIN, **kw: object) -> str:
    args: dict[str, object] = {
        "drifted": True,
        "consecutive": 2,
        "last_retrain": None,
        "retrains_today": 0,
        "pending": False,
        "now": NOW,
    }
    args.update(kw)
    return decide_retrain(retrain, **args).reason  # type: ignore[arg-type]


def test_retrains_only_after_the_consecutive_checks_it_asks_for() -> None:
    assert decide(consecutive=1) == "Hysteresis"
    assert decide(consecutive=2) == "DriftPersisted"


def test_cooldown_holds_then_releases() -> None:
    assert decide(last_retrain=NOW - timedelta(minutes=59)) == "Cooldown"
    assert decide(last_retrain=NOW - timedelta(minutes=61)) == "DriftPersisted"


def test_daily_cap_holds() -> None:
    assert decide(retrains_today=2) == "DailyCap"
    assert decide(retrains_today=1) == "DriftPersisted"


def test_dry_run_never_retrains_and_disabled_does_nothing() -> None:
    dry = RetrainSpec.model_validate({"enabled": True, "dryRun": True, "consecutiveChecks": 1})
    assert (
        decide_retrain(
            dry, drifted=True, consecutive=1, last_retrain=None, retrains_today=0, pending=False, now=NOW
        ).action
        == "dry_run"
    )
    assert decide(RetrainSpec(), consecutive=5) == "Disabled"
    assert decide(None) == "Disabled"
    assert decide(drifted=False) == "NoDrift"
    assert decide(pending=True) == "RetrainPending"


def test_schedule_interval_and_cron() -> None:
    assert next_check_time(Schedule(interval="10m"), None, NOW) == NOW
    assert next_check_time(Schedule(interval="10m"), NOW, NOW) == NOW + timedelta(minutes=10)
    cron = Schedule(cron="*/15 * * * *")
    assert next_check_time(cron, NOW + timedelta(minutes=1), NOW) == NOW + timedelta(minutes=15)


SPEC = DriftMonitorSpec.model_validate(
    {
        "deploymentRef": {"name": "iris"},
        "schedule": {"interval": "1m"},
        "thresholds": {
            "driftShare": 0.3,
            "perFeature": {"a": {"method": "psi", "threshold": 0.2}, "b": {"enabled": False}},
        },
        "window": {"minRows": 50},
        "retrain": {
            "enabled": True,
            "template": {"labels": {"tier": "gold"}, "spec": {"estimator": {"params": {"n_estimators": 50}}}},
        },
    }
)


def test_drift_config_compares_only_model_features_and_honours_overrides() -> None:
    config = drift_config(SPEC, ["a", "b", "c"])
    assert config == {
        "preset": "gyre",
        "alpha": 0.05,
        "missingCountsAsDrift": True,
        "driftShare": 0.3,
        "minRows": 50,
        "columns": ["a", "c"],
        "overrides": {"a": {"method": "psi", "threshold": 0.2}},
    }


def test_drift_config_carries_a_features_minimum_effects_into_the_check() -> None:
    thresholds = Thresholds.model_validate(
        {"perFeature": {"a": {"minEffect": 0.2, "minMissingIncrease": 0.1}}}
    )
    config = drift_config(SPEC.model_copy(update={"thresholds": thresholds}), ["a", "c"])
    assert config["overrides"] == {"a": {"minEffect": 0.2, "missingMinIncrease": 0.1}}
    check = DriftConfig.model_validate(config)
    assert check.overrides["a"].min_effect == 0.2 and check.overrides["a"].missing_min_increase == 0.1


def test_a_negative_minimum_effect_or_one_beside_a_method_is_refused() -> None:
    with pytest.raises(ValidationError):
        Thresholds.model_validate({"perFeature": {"a": {"minEffect": -0.1}}})
    with pytest.raises(ValidationError):
        Thresholds.model_validate({"perFeature": {"a": {"minMissingIncrease": 1.5}}})
    with pytest.raises(ValidationError):
        ColumnOverride(method="ks", min_effect=0.1)


def test_retrain_run_unpins_the_dataset_merges_the_template_and_records_lineage() -> None:
    served = {
        "datasetRef": {"name": "iris", "fingerprint": "sha256:" + "a" * 64},
        "target": "target",
        "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 10, "max_depth": 3}},
    }
    owner = Owner(kind="DriftMonitor", name="iris-drift", namespace="ml", uid="u-1")
    run = build_retrain_run(owner, SPEC, check=7, served_run_spec=served, served_run_labels={"app": "iris"})
    assert run["metadata"]["name"] == "iris-drift-retrain-7"
    assert run["metadata"]["annotations"]["gyre.dev/trigger"] == "drift:ml/iris-drift#7"
    assert run["metadata"]["labels"]["app"] == "iris" and run["metadata"]["labels"]["tier"] == "gold"
    assert "ownerReferences" not in run["metadata"], (
        "deleting the monitor must not delete served models' runs"
    )
    assert run["spec"]["datasetRef"] == {"name": "iris"}
    assert run["spec"]["estimator"]["params"] == {"n_estimators": 50, "max_depth": 3}
    TrainingRunSpec.model_validate(run["spec"])  # what the API server would admit


@pytest.mark.parametrize(
    ("base", "over", "want"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}, {"a": {"b": 3, "c": 2}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ],
)
def test_merge_spec(base: dict[str, object], over: dict[str, object], want: dict[str, object]) -> None:
    assert merge_spec(base, over) == want
