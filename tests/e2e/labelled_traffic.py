"""Production traffic with ground truth, as a client in the cluster sends it: predictions under ids it chooses, then
their true labels from a rule of its own, through `gyre feedback send` (the feedback endpoint).

`LABELLED_TRAFFIC` runs in a pod of the project image (Kube.run_pod); it prints (and writes to its termination log)
a JSON summary: rows sent, how many answers the labels agree with (the client's own accuracy of the served model),
and what `gyre feedback send` reported. Used by the concept-drift e2e test and the loop benchmark.

Inputs, by DATA:
- `iris`: rows of scikit-learn's iris, drawn with replacement: distributed exactly like the builtin Dataset.
- `gauss`: FEATURES independent standard normals (x0, x1, ...) plus SHIFT, distributed exactly like GAUSS_TABLE's
  table of the same shift.

Labels, by RULE: `iris-shifted` is iris's class plus one, modulo 3 (the relation between inputs and class has
changed, the inputs have not); `iris` the true class; `sum` is x0 + x1 > 0; `diff` is x0 - x1 > 0. FEEDBACK=0
sends no labels.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

__all__ = ["GAUSS_TABLE", "LABELLED_TRAFFIC", "summary", "traffic_env"]

LABELLED_TRAFFIC = textwrap.dedent(
    """
    import csv, json, os, subprocess, sys, urllib.request
    import numpy as np

    BASE, MODEL = os.environ["BASE_URL"], os.environ["MODEL"]
    ROWS, BATCH, SEED = int(os.environ["ROWS"]), int(os.environ["BATCH"]), int(os.environ["SEED"])
    DATA, RULE, PREFIX = os.environ["DATA"], os.environ["RULE"], os.environ["PREFIX"]
    rng = np.random.default_rng(SEED)
    if DATA == "iris":
        from sklearn.datasets import load_iris
        frame = load_iris(as_frame=True).frame
        names = [str(c) for c in frame.columns[:-1]]
        pick = rng.integers(0, len(frame), ROWS)
        X, truth = frame[names].to_numpy()[pick], frame["target"].to_numpy()[pick]
    else:
        width = int(os.environ.get("FEATURES", "4"))
        names = [f"x{i}" for i in range(width)]
        X, truth = rng.standard_normal((ROWS, width)) + float(os.environ.get("SHIFT", "0")), None
    if RULE == "iris-shifted":
        labels = (truth + 1) % 3
    elif RULE == "iris":
        labels = truth
    elif RULE == "sum":
        labels = (X[:, 0] + X[:, 1] > 0).astype(int)
    else:
        labels = (X[:, 0] - X[:, 1] > 0).astype(int)

    agree, ids = 0, []
    for start in range(0, ROWS, BATCH):
        rows = X[start:start + BATCH]
        body = json.dumps({"instances": [dict(zip(names, map(float, r))) for r in rows]}).encode()
        request_id = f"{PREFIX}-{start // BATCH}"
        req = urllib.request.Request(
            f"{BASE}/v1/models/{MODEL}:predict", data=body,
            headers={"content-type": "application/json", "Gyre-Prediction-Id": request_id},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            answered = resp.headers["Gyre-Prediction-Id"]
            predictions = json.loads(resp.read())["predictions"]
        assert answered == request_id, (answered, request_id)
        for i, p in enumerate(predictions):
            ids.append(f"{request_id}.{i}")
            agree += int(p == int(labels[start + i]))
    with open("/tmp/labels.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "label"])
        out.writerows(zip(ids, map(int, labels)))
    code, said = 0, "not sent"
    if os.environ.get("FEEDBACK", "1") == "1":
        sent = subprocess.run(
            ["gyre", "feedback", "send", "--url", BASE, "--model", MODEL, "--file", "/tmp/labels.csv",
             "--batch-size", os.environ.get("FEEDBACK_BATCH", "5000")],
            capture_output=True, text=True,
        )
        code, said = sent.returncode, (sent.stdout + sent.stderr)[-1500:]
    report = {"rows": ROWS, "agree": agree, "accuracy": agree / ROWS, "feedbackExit": code, "feedback": said}
    text = json.dumps(report)
    print(text)
    with open("/dev/termination-log", "w") as fh:
        fh.write(text[:4000])
    sys.exit(0 if code == 0 else 1)
    """
)

# Writes a table of standard normals with a `sum` or `diff` rule's label `y` into the namespace's sources/ area.
GAUSS_TABLE = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import pandas as pd
    rows, width, seed, rule = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, width))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(width)])
    shift = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    frame = frame + shift
    y = frame["x0"] + frame["x1"] > 2 * shift if rule == "sum" else frame["x0"] - frame["x1"] > 0
    frame["y"] = y.astype(int)
    os.makedirs("/var/lib/gyre/artifacts/sources", exist_ok=True)
    name = sys.argv[5]
    tmp = f"/var/lib/gyre/artifacts/sources/.{name}.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, f"/var/lib/gyre/artifacts/sources/{name}")
    print(len(frame))
    """
)


def traffic_env(
    base_url: str,
    model: str,
    *,
    rows: int,
    data: str,
    rule: str,
    prefix: str,
    seed: int = 0,
    batch: int = 100,
    features: int = 4,
) -> dict[str, str]:
    """The environment of one LABELLED_TRAFFIC pod."""
    env: dict[str, Any] = {
        "BASE_URL": base_url,
        "MODEL": model,
        "ROWS": rows,
        "BATCH": batch,
        "SEED": seed,
        "DATA": data,
        "RULE": rule,
        "PREFIX": prefix,
        "FEATURES": features,
    }
    return {k: str(v) for k, v in env.items()}


def summary(message: str) -> dict[str, Any]:
    """The pod's JSON summary."""
    report: dict[str, Any] = json.loads(message)
    return report
