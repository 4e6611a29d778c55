"""The clients KServe and Triton users already have work unchanged: tritonclient[http] and the KServe SDK's REST
client, in their default modes (binary tensors included), against the real `gyre serve` process.

The clients live in their own venv (.venv-clients, made by hack/clients-venv.sh on first use and reused while
their pinned requirements are unchanged), because their dependencies are not the project's.
"""

from __future__ import annotations

import json
import re
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from serving_helpers import Trained, gyre_serve

ROOT = Path(__file__).resolve().parents[4]
CLIENTS = Path(__file__).with_name("clients.py")
# (fixture model, --inference): the ONNX and scikit-learn paths, an all-numeric and a categorical model.
SERVED = [("iris", "auto"), ("iris", "sklearn"), ("mixed", "auto")]


def _spec(name: str, rows: pd.DataFrame) -> dict[str, Any]:
    all_numeric = all(rows[c].dtype.kind == "f" for c in rows.columns)
    return {
        "model": name,
        "matrix": rows.to_numpy().tolist() if all_numeric else None,
        "columns": {c: rows[c].tolist() for c in rows.columns},
    }


def test_tritonclient_and_kserve_sdk_get_scikit_learns_answers(trained: dict[str, Trained]) -> None:
    made = subprocess.run(
        [str(ROOT / "hack" / "clients-venv.sh")], capture_output=True, text=True, check=False, timeout=600
    )
    assert made.returncode == 0, made.stderr
    specs = []
    with ExitStack() as stack:
        for name, inference in SERVED:
            server = stack.enter_context(gyre_serve(trained[name].directory, "--inference", inference))
            specs.append({**_spec(name, trained[name].rows.head(12)), "url": server.url})
        done = subprocess.run(
            [made.stdout.strip(), str(CLIENTS)],
            input=json.dumps(specs),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr
    for (name, inference), result in zip(SERVED, json.loads(done.stdout), strict=True):
        rows = trained[name].rows.head(12)
        pipeline = trained[name].result.pipeline
        expected = pipeline.predict(rows).tolist()
        triton, kserve = result["triton"], result["kserve"]
        where = f"{name} ({inference})"
        assert (triton["live"], triton["ready"], triton["model_ready"]) == (True, True, True), where
        assert triton["metadata"]["name"] == name
        assert triton["server"]["name"] == "gyre"
        assert [m["name"] for m in triton["index"]] == [name]
        for call in ("default", "named_predict", "json", "gzip", "fp32"):
            if call in triton:
                assert triton[call] == expected, (where, call)
        np.testing.assert_allclose(triton["named_proba"], pipeline.predict_proba(rows), atol=1e-5)
        # Prediction ids: the client's request id round-trips; without one the server generates a uuid4 hex.
        assert triton["request_id"] == "triton-request-7", where
        assert re.fullmatch(r"[0-9a-f]{32}", triton["generated_id"] or ""), where
        assert kserve["v2_request_id"] == "kserve-request-7", where
        assert (kserve["v2_live"], kserve["v2_ready"], kserve["v2_model_ready"]) == (True, True, True), where
        assert (kserve["v1_live"], kserve["v1_model_ready"]) == (True, True), where
        assert kserve["v2_model_name"] == name
        for call in ("v2", "v2_binary_output", "v1"):
            assert kserve[call] == expected, (where, call)
