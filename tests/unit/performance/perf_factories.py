"""Test objects shared by the performance unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gyre.training.manifest import ArtifactRef, FeatureSpec, ModelManifest, OnnxInfo, TargetSpec

__all__ = ["model_manifest"]


def model_manifest(classes: list[Any], metrics: dict[str, float], *, test_rows: int | None) -> ModelManifest:
    """The manifest.json of a one-feature (`x`) classifier of `classes` that scored `metrics` on `test_rows`."""
    return ModelManifest(
        name="churn",
        task="classification",
        estimator="LogisticRegression",
        features=[FeatureSpec(name="x", kind="numeric")],
        target=TargetSpec(name="churned", classes=classes),
        metrics=metrics,
        test_rows=test_rows,
        artifact=ArtifactRef(sha256="0" * 64),
        onnx=OnnxInfo(status="unavailable"),
        seed=0,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
