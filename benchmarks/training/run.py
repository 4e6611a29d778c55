#!/usr/bin/env python
"""Training benchmark: `gyre train --local` against the bare library fit, XGBoost and LightGBM, same data and split.

What runs, each as a whole process (interpreter start, imports and the Parquet read included on both sides):
- gyre: `gyre train --local --dataset file://TABLE --estimator XGBClassifier|LGBMClassifier ...`: fingerprint,
  schema inference, split, preprocessing (median imputation), fit, every default metric, the booster in its own
  format, the preprocessing in skops, manifest and report; once with `--no-onnx` and once with the ONNX twin
  (conversion plus verification on the held-out rows).
- bare: this script's `bare` command, what a notebook does: read the Parquet table with pandas, the same
  `train_test_split` (test 0.2, seed 42, stratified), the library's scikit-learn class with the same parameters and
  threads, predict_proba and accuracy on the test rows, `save_model` / `model_to_string` to a file.

The commands run in turn (gyre, bare, gyre, bare, ...) so that drift in the machine's speed hits both; wall time is
taken around each child, CPU time (user + sys) and peak RSS from `os.wait4`. Medians are printed with the overhead
(gyre - bare) and the target of issue 16: overhead <= 5% of bare + 1 s.

`onnx` mode times the served predictors of one model directory in-process: Gyre's onnxruntime predictor against
the native Pipeline (library predict_proba), batches of 1 and 1,000 rows.

Usage: .venv/bin/python benchmarks/training/run.py [--rows 200000] [--repeat 5] [--only xgboost,lightgbm]
    [--modes no-onnx,onnx] [--gyre PATH[,PATH...]]

`--gyre` times other checkouts' `gyre` (their venvs' entry points), e.g. main's tree and a branch: every round runs
each of them, then the bare peer, so that all meet the same machine; one result line per entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GYRE = Path(sys.executable).with_name("gyre")
FEATURES = 20
PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1},
    "lightgbm": {"n_estimators": 200, "num_leaves": 63, "learning_rate": 0.1},
}
KINDS = {"xgboost": "XGBClassifier", "lightgbm": "LGBMClassifier"}


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """A numeric table with a non-linear binary target (interactions and thresholds trees must find)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    logit = (
        x[:, 0] * x[:, 1]
        + np.sin(2 * x[:, 2])
        + (x[:, 3] > 0.5) * 1.5
        - np.abs(x[:, 4])
        + 0.3 * x[:, 5:10].sum(1)
    )
    y = (logit + rng.normal(0, 0.5, size=rows) > 0).astype(np.int64)
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(FEATURES)])
    frame["y"] = y
    frame.to_parquet(path, index=False)


def bare(library: str, data: str, out: str, threads: int) -> None:
    """The library on its own: read, split as Gyre does, fit, score, save."""
    import pandas as pd
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    frame = pd.read_parquet(data)
    x, y = frame.drop(columns=["y"]), frame["y"].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42, stratify=y)
    params = {**PARAMS[library], "n_jobs": threads, "random_state": 42}
    if library == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(**params).fit(x_train, y_train)
        model.save_model(out)
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(**params, verbose=-1).fit(x_train, y_train)
        Path(out).write_text(model.booster_.model_to_string())
    proba = model.predict_proba(x_test)
    print(json.dumps({"accuracy": accuracy_score(y_test, proba.argmax(1))}))


def _timed(cmd: list[str]) -> dict[str, Any]:
    """Run `cmd` as a child; wall clock around it, CPU and peak RSS from wait4."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}: {output[-500:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mib": usage.ru_maxrss / 1024,
        "output": output,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _gyre_cmd(entry: Path, library: str, data: Path, out: Path, onnx: bool) -> list[str]:
    cmd = [
        str(entry),
        "train",
        "--local",
        "--dataset",
        f"file://{data}",
        "--format",
        "parquet",
        "--target",
        "y",
    ]
    cmd += ["--estimator", KINDS[library], "--out", str(out)]
    cmd += [arg for k, v in PARAMS[library].items() for arg in ("--param", f"{k}={json.dumps(v)}")]
    return cmd if onnx else [*cmd, "--no-onnx"]


def compare(
    library: str,
    data: Path,
    work: Path,
    repeat: int,
    threads: int,
    onnx: bool,
    warm_up: bool,
    entries: tuple[Path, ...] = (GYRE,),
) -> list[dict[str, Any]]:
    """One result per gyre entry point; each round runs every entry, then the bare peer, so that they all meet the
    same machine."""
    gyres = [
        _gyre_cmd(entry, library, data, work / (f"gyre{i}-{library}" if i else f"gyre-{library}"), onnx)
        for i, entry in enumerate(entries)
    ]
    bare_cmd = [sys.executable, __file__, "bare", "--library", library, "--data", str(data)]
    bare_cmd += ["--out", str(work / f"bare-{library}.model"), "--threads", str(threads)]
    a_runs: list[list[dict[str, Any]]] = [[] for _ in gyres]
    b_runs = []
    if warm_up:  # page cache and bytecode, once per library
        for cmd in gyres:
            _timed(cmd)
        _timed(bare_cmd)
    for _ in range(repeat):
        for runs, cmd in zip(a_runs, gyres, strict=True):
            runs.append(_timed(cmd))
        b_runs.append(_timed(bare_cmd))
    bare_acc = json.loads(b_runs[-1]["output"].strip().splitlines()[-1])["accuracy"]
    b_wall = _median(b_runs, "wall")
    results = []
    for entry, runs in zip(entries, a_runs, strict=True):
        report = json.loads(runs[-1]["output"].strip().splitlines()[-1])
        a_wall = _median(runs, "wall")
        pairs = list(zip(runs, b_runs, strict=True))
        results.append(
            {
                "library": library,
                "onnx": onnx,
                "gyre": str(entry),
                "gyre_wall": a_wall,
                "bare_wall": b_wall,
                "gyre_walls": [round(r["wall"], 2) for r in runs],
                "bare_walls": [round(r["wall"], 2) for r in b_runs],
                "gyre_cpu": _median(runs, "cpu"),
                "bare_cpu": _median(b_runs, "cpu"),
                "gyre_peak_mib": _median(runs, "peak_mib"),
                "bare_peak_mib": _median(b_runs, "peak_mib"),
                "ratio_median": statistics.median(a["wall"] / b["wall"] for a, b in pairs),
                "overhead_s": a_wall - b_wall,
                "overhead_paired_s": statistics.median(a["wall"] - b["wall"] for a, b in pairs),
                "target_s": 0.05 * b_wall + 1.0,
                "gyre_accuracy": report["metrics"]["accuracy"],
                "bare_accuracy": bare_acc,
                "gyre_onnx": report.get("onnx"),
            }
        )
    return results


def onnx_speed(directory: Path, data: Path, batches: tuple[int, ...] = (1, 1000)) -> list[dict[str, Any]]:
    """Per-batch median latency of Gyre's ONNX predictor and the native Pipeline, same rows."""
    import pandas as pd

    from gyre.serving.model import load_served_model
    from gyre.training.features import coerce_features

    onnx = load_served_model(str(directory), inference="onnx")
    native = load_served_model(str(directory), inference="sklearn")
    frame = pd.read_parquet(data).head(max(batches) * 4)
    rows = coerce_features(frame, onnx.manifest.features).to_numpy(dtype=object)
    out = []
    for batch in batches:
        calls = 300 if batch == 1 else 30
        times: dict[str, list[float]] = {"onnx": [], "native": []}
        for i in range(calls):
            chunk = rows[(i * batch) % (len(rows) - batch) :][:batch]
            for name, served in (("onnx", onnx), ("native", native)):
                start = time.perf_counter()
                served.predictor.predict(chunk, want_proba=True)
                times[name].append(time.perf_counter() - start)
        onnx_ms = statistics.median(times["onnx"]) * 1000
        native_ms = statistics.median(times["native"]) * 1000
        out.append(
            {"batch": batch, "onnx_ms": onnx_ms, "native_ms": native_ms, "speedup": native_ms / onnx_ms}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("bare")
    b.add_argument("--library", choices=sorted(PARAMS), required=True)
    b.add_argument("--data", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--threads", type=int, required=True)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="xgboost,lightgbm")
    parser.add_argument("--modes", default="no-onnx,onnx", help="gyre train modes to time: no-onnx, onnx")
    parser.add_argument(
        "--gyre", default=None, help="gyre entry points, comma-separated (default: this venv's)"
    )
    parser.add_argument(
        "--work", default=None, help="directory for the table and models (default: a temp dir)"
    )
    args = parser.parse_args()
    if args.command == "bare":
        bare(args.library, args.data, args.out, args.threads)
        return

    from gyre.training.boosting import available_cpus

    threads = available_cpus()  # what Gyre gives the library (n_jobs capped at the pod's CPUs)
    work = Path(args.work or tempfile.mkdtemp(prefix="gyre-bench-training-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"table-{args.rows}.parquet"
    if not data.exists():
        generate(data, args.rows)
    load = os.getloadavg()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, threads {threads}, load {load[0]:.1f}/{load[1]:.1f}, {args.rows} rows x {FEATURES}"
    )
    results = []
    modes = [m == "onnx" for m in args.modes.split(",")]
    entries = tuple(Path(p) for p in args.gyre.split(",")) if args.gyre else (GYRE,)
    for library in args.only.split(","):
        for i, onnx in enumerate(modes):
            for result in compare(library, data, work, args.repeat, threads, onnx, i == 0, entries):
                results.append(result)
                print(json.dumps(result), flush=True)
    for library in args.only.split(","):
        if not modes[-1]:
            continue  # no model with an ONNX twin to time
        for row in onnx_speed(work / f"gyre-{library}", data):
            print(json.dumps({"library": library, **row}))
    print(f"# load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
