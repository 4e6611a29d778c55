"""The API models: defaults a user relies on, and the errors invalid specs get."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from gyre.api.common import Condition, ResourceRequirements, find_condition, parse_duration, set_condition
from gyre.api.dataset import DatasetSpec
from gyre.api.driftmonitor import DriftMonitorSpec
from gyre.api.modeldeployment import ModelDeploymentSpec
from gyre.api.trainingrun import SearchSpec, TrainingRunSpec, default_goal, task_of

FP = "sha256:" + "ab" * 32


def tr(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
    body.update(overrides)
    return body


def test_dataset_defaults_and_camel_case_round_trip() -> None:
    spec = DatasetSpec.model_validate(
        {
            "source": {"uri": "builtin://iris"},
            "refreshInterval": "1h",
            "schema": {"kinds": {"zip": "categorical"}},
        }
    )
    assert spec.source.format == "auto"
    assert spec.history_limit == 10
    assert spec.schema_ is not None and spec.schema_.kinds == {"zip": "categorical"}
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped["refreshInterval"] == "1h"
    assert "schema" in dumped and "schema_" not in dumped
    assert DatasetSpec.model_validate(dumped) == spec


@pytest.mark.parametrize("uri", ["ftp://x/y.csv", "builtin://Iris", "/data/x.csv", "s3://bucket-only"])
def test_dataset_rejects_unknown_sources(uri: str) -> None:
    with pytest.raises(ValidationError, match="uri"):
        DatasetSpec.model_validate({"source": {"uri": uri}})


def test_unknown_fields_are_rejected_with_their_name() -> None:
    with pytest.raises(ValidationError, match="estimatr"):
        TrainingRunSpec.model_validate(tr(estimatr={}))


def test_estimator_allowlist() -> None:
    with pytest.raises(ValidationError, match="RandomForestClassifier"):
        TrainingRunSpec.model_validate(tr(estimator={"kind": "os.system"}))
    assert task_of("SVC") == "classification"
    assert task_of("Ridge") == "regression"
    assert default_goal("rmse") == "minimize"
    assert default_goal("accuracy") == "maximize"


def test_fingerprint_pin_must_be_sha256() -> None:
    TrainingRunSpec.model_validate(tr(datasetRef={"name": "iris", "fingerprint": FP}))
    with pytest.raises(ValidationError, match="fingerprint"):
        TrainingRunSpec.model_validate(tr(datasetRef={"name": "iris", "fingerprint": "md5:abc"}))


def test_split_bounds() -> None:
    with pytest.raises(ValidationError, match=r"test_size|testSize"):
        TrainingRunSpec.model_validate(tr(split={"testSize": 1.0}))


def test_resources_accept_yaml_integers_as_quantities() -> None:
    res = ResourceRequirements.model_validate({"requests": {"cpu": 1, "memory": "512Mi"}})
    assert res.requests == {"cpu": "1", "memory": "512Mi"}
    with pytest.raises(ValidationError):
        ResourceRequirements.model_validate({"limits": {"memory": "lots"}})


def test_search_trial_count() -> None:
    grid = SearchSpec.model_validate(
        {
            "strategy": "grid",
            "space": {"n_estimators": {"values": [10, 50, 100]}, "max_depth": {"values": [2, None]}},
        }
    )
    assert grid.trial_count() == 6
    rand = SearchSpec.model_validate(
        {"strategy": "random", "trials": 7, "space": {"C": {"low": 0.01, "high": 10}}}
    )
    assert rand.trial_count() == 7


def test_modeldeployment_defaults() -> None:
    spec = ModelDeploymentSpec.model_validate({"model": {"trainingRunRef": {"name": "iris-rf"}}})
    assert spec.port == 8080
    assert spec.max_body_bytes == 1 << 20
    with pytest.raises(ValidationError):
        ModelDeploymentSpec.model_validate({"model": {"uri": "http://example.com/model"}})


def test_server_settings_default_to_the_servers_own_and_refuse_values_out_of_range() -> None:
    base = {"model": {"trainingRunRef": {"name": "iris-rf"}}}
    assert ModelDeploymentSpec.model_validate(base).server is None
    server = ModelDeploymentSpec.model_validate({**base, "server": {"maxConnections": 64}}).server
    assert server is not None
    assert (server.header_timeout_seconds, server.body_timeout_seconds) == (15, 30)
    assert (server.max_connections, server.shutdown_timeout_seconds) == (64, 30)
    for field, value in [
        ("headerTimeoutSeconds", 0),
        ("bodyTimeoutSeconds", 3601),
        ("maxConnections", 1),
        ("shutdownTimeoutSeconds", -5),
        ("idleTimeoutSeconds", 5),
    ]:
        with pytest.raises(ValidationError, match=field):
            ModelDeploymentSpec.model_validate({**base, "server": {field: value}})


def test_driftmonitor_defaults_and_durations() -> None:
    spec = DriftMonitorSpec.model_validate(
        {"deploymentRef": {"name": "iris"}, "schedule": {"interval": "10m"}, "retrain": {"enabled": True}}
    )
    assert spec.retrain is not None
    assert spec.retrain.consecutive_checks == 2
    assert parse_duration(spec.retrain.cooldown) == timedelta(hours=1)
    with pytest.raises(ValidationError, match="interval"):
        DriftMonitorSpec.model_validate(
            {"deploymentRef": {"name": "iris"}, "schedule": {"interval": "10 minutes"}}
        )


def test_parse_duration() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 days")


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=5)
    conds = set_condition([], "Ready", "False", "Profiling", "reading source", generation=1, now=t0)
    conds = set_condition(conds, "Ready", "False", "Profiling", "still reading", generation=2, now=t1)
    ready = find_condition(conds, "Ready")
    assert ready is not None
    assert ready.last_transition_time == t0
    assert (ready.message, ready.observed_generation) == ("still reading", 2)
    conds = set_condition(conds, "Ready", "True", "Profiled", generation=2, now=t1)
    conds = set_condition(conds, "Other", "Unknown", "Waiting", now=t1)
    assert [c.type for c in conds] == ["Ready", "Other"]
    ready = find_condition(conds, "Ready")
    assert ready is not None and ready.last_transition_time == t1


def test_condition_wire_shape() -> None:
    cond = Condition(
        type="Ready", status="True", reason="Profiled", last_transition_time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert cond.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "type": "Ready",
        "status": "True",
        "reason": "Profiled",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def test_param_space_needs_values_or_a_range_not_both() -> None:
    # Not expressible in CEL (values are untyped), so the model is what rejects it (as InvalidSpec).
    with pytest.raises(ValidationError, match="give either values, or both low and high"):
        SearchSpec.model_validate(
            {"strategy": "random", "trials": 2, "space": {"C": {"values": [1], "low": 0.1}}}
        )
    with pytest.raises(ValidationError, match="give either values, or both low and high"):
        SearchSpec.model_validate({"strategy": "random", "trials": 2, "space": {"C": {}}})
