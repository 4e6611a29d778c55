"""One definition of the features: raw rows sent to the server get the answers of the training pipeline itself.

The transforms of spec.features are fitted at training and saved inside the model; the server applies those fitted
objects (or their verified ONNX twin), so there is no second implementation to drift from the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serving_helpers import serve, write_model_dir

from gyre.api.features import FeaturesSpec
from gyre.serving.app import INFERENCE_HEADER
from gyre.serving.model import load_served_model
from gyre.training.features import coerce_features
from gyre.training.trainer import TrainingResult, TrainOptions, train_model

CONVERTIBLE = [
    {
        "columns": ["income"],
        "steps": [{"impute": {}}, {"clip": {"min": 0}}, {"log": {}}, {"standardize": {}}],
    },
    {"columns": ["age"], "steps": [{"bucketize": {"bins": 4}}]},
    {"columns": ["hour"], "steps": [{"cyclic": {"period": 24}}]},
    {"columns": ["city"], "steps": [{"oneHot": {"maxCategories": 8}}]},
    {"columns": ["shop"], "steps": [{"targetEncode": {}}]},
    {"columns": ["note"], "steps": [{"tfidf": {}}]},
]
SKLEARN_ONLY = [
    {"columns": ["city"], "steps": [{"hash": {"nFeatures": 32}}]},
    {"columns": ["signup"], "steps": [{"dateParts": {"cyclic": True}}]},
    {"columns": ["income"], "steps": [{"impute": {"strategy": "constant", "value": 0}}, {"log": {}}]},
]


def raw_table() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 400
    frame = pd.DataFrame(
        {
            "income": np.round(np.exp(rng.normal(10, 1, n)), 2),
            "age": rng.integers(18, 90, n).astype(float),
            "hour": rng.integers(0, 24, n).astype(float),
            "city": rng.choice([f"c{i}" for i in range(40)], n),
            "shop": rng.choice([f"s{i}" for i in range(30)], n),
            "signup": pd.date_range("2021-03-01", periods=n, freq="29h").strftime("%Y-%m-%dT%H:%M:%S"),
            "note": rng.choice(["great product", "bad service", "ok fine", "would buy again"], n),
        }
    )
    frame.loc[::9, "income"] = None
    score = np.log(frame["income"].fillna(2e4)) + (frame["note"] == "great product") * 1.0
    frame["label"] = np.where(score > 10.2, "yes", "no")
    return frame


def trained(tmp_path: Path, transforms: list[dict[str, Any]]) -> tuple[TrainingResult, Path]:
    spec = FeaturesSpec.model_validate({"transforms": transforms})
    result = train_model(
        raw_table(),
        TrainOptions(target="label", estimator="LogisticRegression", transforms=tuple(spec.transforms or ())),
    )
    return result, write_model_dir(result, tmp_path / "model", name="feat")


def raw_rows() -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON values, a missing income, an unseen city and shop, an unparseable date."""
    rows = raw_table().drop(columns="label").iloc[::7].copy()
    records: list[dict[str, Any]] = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    records.append(
        {
            "income": None,
            "age": 200.0,
            "hour": 23.5,
            "city": "never-seen",
            "shop": "new-shop",
            "signup": "not a date",
            "note": "brand new words",
        }
    )
    return records


@pytest.mark.parametrize(
    ("transforms", "inference", "path"),
    [(CONVERTIBLE, "auto", "onnx"), (CONVERTIBLE, "sklearn", "sklearn"), (SKLEARN_ONLY, "auto", "sklearn")],
)
async def test_raw_rows_served_get_the_training_pipelines_answers(
    tmp_path: Path, transforms: list[dict[str, Any]], inference: str, path: str
) -> None:
    result, directory = trained(tmp_path, transforms)
    records = raw_rows()
    x = coerce_features(pd.DataFrame.from_records(records), result.features)
    expected = result.pipeline.predict(x).tolist()
    expected_proba = result.pipeline.predict_proba(x)
    model = load_served_model(str(directory), inference=inference)  # type: ignore[arg-type]
    async with serve(model) as (client, _server):
        answer = await client.post("/v1/models/feat:predict", json={"instances": records})
        assert answer.status == 200, await answer.text()
        assert answer.headers[INFERENCE_HEADER] == path
        assert (await answer.json())["predictions"] == expected
        proba = await client.post("/v1/models/feat:predict?predict_proba=true", json={"instances": records})
        np.testing.assert_allclose((await proba.json())["probabilities"], expected_proba, atol=1e-5)
