"""Golden files for the Job builders: tests/data/builders/input/*.yaml in, output/*.yaml out.

Regenerate after an intended change with `GYRE_UPDATE_GOLDEN=1 pytest tests/unit/builders` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gyre.api.dataset import DatasetSpec
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.job import DatasetInput, FeedbackRead, build_profile_job, build_training_job
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.builders.tracking import resolve_tracking

DATA = Path(__file__).resolve().parents[2] / "data/builders"
CASES = sorted(p.stem for p in (DATA / "input").glob("*.yaml"))
UPDATE = os.environ.get("GYRE_UPDATE_GOLDEN") == "1"


def build(case: dict[str, Any]) -> dict[str, Any]:
    meta = case["metadata"]
    owner = Owner(
        kind=case["kind"],
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=meta.get("generation", 1),
    )
    settings = OperatorSettings.model_validate(case.get("settings", {}))
    if case["kind"] == "Dataset":
        previous = case.get("previous")
        feedback = case.get("feedback")
        return build_profile_job(
            owner,
            DatasetSpec.model_validate(case["spec"]),
            settings,
            revision=case["revision"],
            previous=(previous["fingerprint"], previous["watermark"]) if previous else None,
            feedback=FeedbackRead(**feedback) if feedback else None,
        )
    raw = dict(case["dataset"])
    columns = tuple((c["name"], c["kind"]) for c in raw.pop("columns", []))
    dataset = DatasetInput(**raw, columns=columns)
    spec = TrainingRunSpec.model_validate(case["spec"])
    tracking = resolve_tracking(owner, spec, settings)
    return build_training_job(
        owner, spec, settings, dataset, trigger=case.get("trigger", "manual"), tracking=tracking
    )


def test_there_are_cases() -> None:
    assert len(CASES) >= 4


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    case = yaml.safe_load((DATA / "input" / f"{name}.yaml").read_text())
    got = build(case)
    out = DATA / "output" / f"{name}.yaml"
    if UPDATE:
        out.write_text(yaml.safe_dump(got, sort_keys=False, width=120))
    assert out.exists(), f"no golden output for {name}: run with GYRE_UPDATE_GOLDEN=1"
    assert got == yaml.safe_load(out.read_text())
