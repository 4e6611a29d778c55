"""Manifests as the training pod writes them, with known values, for the card tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gyre.api.dataset import ColumnKind
from gyre.training.manifest import (
    ArtifactRef,
    ClassMetrics,
    ColumnSummary,
    DatasetRef,
    DataSummary,
    Evaluation,
    FeatureSpec,
    Lineage,
    MetricInterval,
    ModelManifest,
    OnnxInfo,
    TargetSpec,
)

IMPORTANCES = {
    "method": "permutation",
    "metric": "accuracy",
    "repeats": 5,
    "seed": 42,
    "rows": 30,
    "features": [
        {"name": "sepal width", "mean": 0.0123, "std": 0.004},
        {"name": "petal length", "mean": 0.3456, "std": 0.021},
    ],
}
SLICES = {
    "columns": ["region"],
    "metric": "accuracy",
    "slices": [
        {"column": "region", "value": "north", "count": 17, "metrics": {"accuracy": 0.9412}},
        {"column": "region", "value": "south", "count": 13, "metrics": {"accuracy": 0.8462}},
    ],
    "gaps": {"accuracy": 0.095},
}


def classifier_manifest(trigger: str = "manual") -> ModelManifest:
    """An iris-like classifier with three classes and a known confusion matrix."""
    return ModelManifest(
        name="iris",
        task="classification",
        estimator="RandomForestClassifier",
        params={"n_estimators": 50, "max_depth": 4},
        features=[
            FeatureSpec(name="petal length", kind=ColumnKind.NUMERIC),
            FeatureSpec(name="sepal width", kind=ColumnKind.NUMERIC),
        ],
        target=TargetSpec(name="species", classes=["setosa", "versicolor", "virginica"]),
        metrics={"accuracy": 0.9, "f1_macro": 0.8997},
        dataset=DatasetRef(
            uri="s3://bucket/datasets/ml/iris/ab/data.parquet",
            fingerprint="sha256:" + "ab" * 32,
            version=3,
            name="iris",
        ),
        artifact=ArtifactRef(sha256="cd" * 32),
        onnx=OnnxInfo(status="verified"),
        seed=7,
        image="registry.example/gyre:1.2.3",
        libraries={"scikit-learn": "1.9.1", "python": "3.11.7"},
        created_at=datetime(2026, 12, 1, 10, 30, tzinfo=UTC),
        lineage=Lineage(training_run="ml/iris-rf", trigger=trigger),
        evaluation=Evaluation(
            rows_train=120,
            rows_test=30,
            resamples=200,
            seed=7,
            intervals={
                "accuracy": MetricInterval(low=0.7667, high=1.0),
                "f1_macro": MetricInterval(low=0.7757, high=1.0),
            },
            classes=["setosa", "versicolor", "virginica"],
            per_class=[
                ClassMetrics(label="setosa", precision=1.0, recall=1.0, f1=1.0, support=10),
                ClassMetrics(label="versicolor", precision=0.8182, recall=0.9, f1=0.8571, support=10),
                ClassMetrics(label="virginica", precision=0.8889, recall=0.8, f1=0.8421, support=10),
            ],
            confusion_matrix=[[10, 0, 0], [0, 9, 1], [0, 2, 8]],
        ),
        data_summary=DataSummary(
            rows=150,
            columns=[
                ColumnSummary(
                    name="petal length", kind=ColumnKind.NUMERIC, missing_rate=0.0, distinct=43, mean=3.758
                ),
                ColumnSummary(
                    name="sepal width", kind=ColumnKind.NUMERIC, missing_rate=0.02, distinct=23, mean=3.0573
                ),
                ColumnSummary(
                    name="species",
                    kind=ColumnKind.CATEGORICAL,
                    missing_rate=0.0,
                    distinct=3,
                    top=["setosa", "versicolor", "virginica"],
                ),
            ],
        ),
    )


def manifest_bytes(manifest: ModelManifest, **extra: Any) -> bytes:
    """manifest.json as written, plus keys other parts of Gyre add (importances, slices)."""
    doc = json.loads(manifest.to_json())
    doc.update(extra)
    return json.dumps(doc, indent=2).encode()
