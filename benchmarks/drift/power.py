"""Power and false-positive tables for drift verdicts: Gyre (both presets), plain scipy and Evidently, same data.

    .venv/bin/python benchmarks/drift/power.py power [--seeds 20] [--ref-rows 100000] [--cur-rows 10000]
    .venv/bin/python benchmarks/drift/power.py null [--seeds 20] [--sizes 1000:1000,10000:1000,...]

`power`: 20 columns, 10 with a planted change (the list in PLANTED) and 10 stable ones, per seed. Prints, per side,
the share of planted changes caught and the false alarms per 20 stable columns. `null`: the same 20 columns with no
change at all, at several sizes; prints the per-column false-positive rate. Results are cached as JSON under
${GYRE_CACHE:-~/.cache/gyre}/bench/drift-power/ (per side, size and seed), so a rerun only computes what is new.
Evidently runs in its own venv (benchmarks/drift/run.py creates it) through evidently_child.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import cache_dir, ensure_evidently_venv

__all__ = ["PLANTED", "STABLE", "generate", "main"]

HERE = Path(__file__).resolve().parent

PLANTED = {
    "shift05": "numeric, mean shift 0.05 sd (normal)",
    "shift20": "numeric, mean shift 0.2 sd (lognormal)",
    "shift50": "numeric, mean shift 0.5 sd (Student t5)",
    "scale12": "numeric, scale x1.2 (normal)",
    "scale15": "numeric, scale x1.5 (exponential)",
    "share3": "categorical, one share +3 points (5 categories)",
    "reshuffle50": "categorical, one share of 50 categories 2% -> 4%",
    "newcat5": "categorical, a new category on 5% of rows",
    "missing5": "numeric, missing rate 0% -> 5%",
    "missing10": "categorical, missing rate 2% -> 12%",
}
STABLE = [
    "normal",
    "lognormal",
    "poisson",
    "uniform",
    "cat3",
    "zipf200",
    "ids1000",
    "bool",
    "binary01",
    "missing5both",
]
KINDS = {
    **{c: "numeric" for c in ("shift05", "shift20", "shift50", "scale12", "scale15", "missing5")},
    **{c: "categorical" for c in ("share3", "reshuffle50", "newcat5", "missing10")},
    **{c: "numeric" for c in ("normal", "lognormal", "poisson", "uniform", "missing5both")},
    **{c: "categorical" for c in ("cat3", "zipf200", "ids1000")},
    "bool": "binary",
    "binary01": "binary",
}


def generate(n: int, *, drift: bool, seed: int) -> pd.DataFrame:
    """One table of the 20 columns; `drift=True` applies the PLANTED changes."""
    rng = np.random.default_rng(seed)
    d = 1.0 if drift else 0.0

    def cats(k: int, probs: Any = None, prefix: str = "v") -> Any:
        labels = np.array([f"{prefix}{i}" for i in range(k)], dtype=object)
        return labels[rng.choice(k, n, p=probs)]

    share = np.array([0.30, 0.25, 0.2, 0.15, 0.10])
    if drift:
        share = np.array([0.33, 0.24, 0.19, 0.14, 0.10])
    reshuffle = np.full(50, 0.02)
    if drift:
        reshuffle = np.r_[0.04, np.full(49, 0.96 / 49)]
    zipf = 1.0 / np.arange(1, 201) ** 1.1
    zipf /= zipf.sum()
    lognormal_sd = float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)))
    cols: dict[str, Any] = {
        "shift05": rng.normal(0.05 * d, 1.0, n),
        "shift20": rng.lognormal(0.0, 0.5, n) + 0.2 * d * lognormal_sd,
        "shift50": rng.standard_t(5, n) + 0.5 * d * np.sqrt(5 / 3),
        "scale12": rng.normal(0.0, 1.2 if drift else 1.0, n),
        "scale15": rng.exponential(1.5 if drift else 1.0, n),
        "share3": cats(5, share),
        "reshuffle50": cats(50, reshuffle),
        "newcat5": cats(10),
        "missing5": rng.normal(10.0, 2.0, n),
        "missing10": cats(4, [0.4, 0.3, 0.2, 0.1]),
        "normal": rng.normal(100.0, 15.0, n),
        "lognormal": rng.lognormal(0.0, 0.7, n),
        "poisson": rng.poisson(3.0, n).astype(np.int64),
        "uniform": rng.uniform(0.0, 1.0, n),
        "cat3": cats(3, [0.5, 0.3, 0.2]),
        "zipf200": cats(200, zipf),
        "ids1000": cats(1000, prefix="id"),
        "bool": rng.random(n) < 0.6,
        "binary01": (rng.random(n) < 0.1).astype(np.int64),
        "missing5both": rng.normal(5.0, 2.0, n),
    }
    frame = pd.DataFrame(cols)
    if drift:
        frame.loc[rng.random(n) < 0.05, "newcat5"] = "new"
        frame.loc[rng.random(n) < 0.05, "missing5"] = np.nan
    frame.loc[rng.random(n) < (0.12 if drift else 0.02), "missing10"] = None
    frame.loc[rng.random(n) < 0.05, "missing5both"] = np.nan
    return frame


# --- the sides ------------------------------------------------------------------------------------------------------


def gyre_verdicts(ref: pd.DataFrame, cur: pd.DataFrame, preset: str) -> dict[str, bool]:
    """Column -> drifted, by Gyre's check from a profile of `ref`."""
    from gyre.drift.check import DriftConfig, check_frame
    from gyre.drift.profile import build_profile

    report = check_frame(build_profile(ref, KINDS), cur, DriftConfig(preset=preset))  # type: ignore[arg-type]
    return {c.column: c.drifted for c in report.columns}


def scipy_verdicts(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, bool]:
    """Plain scipy at alpha 0.05, no correction: ks_2samp (numeric), chi2_contingency (the others), on the
    non-missing values, as a user would write it."""
    from scipy import stats

    out = {}
    for name, kind in KINDS.items():
        r, c = ref[name].dropna(), cur[name].dropna()
        if kind == "numeric":
            p = stats.ks_2samp(r.to_numpy(float), c.to_numpy(float)).pvalue
        else:
            rv, cv = r.astype(str).value_counts(), c.astype(str).value_counts()
            table = pd.concat([rv, cv], axis=1).fillna(0).to_numpy().T
            p = stats.chi2_contingency(table, correction=False).pvalue if table.shape[1] > 1 else 1.0
        out[name] = bool(p < 0.05)
    return out


def evidently_verdicts(ref: pd.DataFrame, cur: pd.DataFrame, python: Path) -> dict[str, bool]:
    """Evidently's DataDriftPreset with its defaults (its own venv, evidently_child.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "schema.json").write_text(json.dumps(KINDS))
        ref.to_parquet(work / "reference.parquet")
        cur.to_parquet(work / "current.parquet")
        subprocess.run([str(python), str(HERE / "evidently_child.py"), str(work)], check=True)
        result = json.loads((work / "evidently.json").read_text())
    return {c: bool(v["drifted"]) for c, v in result["columns"].items()}


SIDES = ("gyre", "gyre-evidently-preset", "scipy", "evidently")


def verdicts(side: str, ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, bool]:
    """One side's column verdicts."""
    if side == "gyre":
        return gyre_verdicts(ref, cur, "gyre")
    if side == "gyre-evidently-preset":
        return gyre_verdicts(ref, cur, "evidently")
    if side == "scipy":
        return scipy_verdicts(ref, cur)
    return evidently_verdicts(ref, cur, ensure_evidently_venv())


def cached(mode: str, side: str, ref_rows: int, cur_rows: int, seed: int) -> dict[str, bool]:
    """Verdicts of one side on one seed, from the cache when already computed."""
    path = cache_dir() / "drift-power" / f"{mode}-{side}-{ref_rows}x{cur_rows}-{seed}.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    ref = generate(ref_rows, drift=False, seed=seed * 2)
    cur = generate(cur_rows, drift=mode == "power", seed=seed * 2 + 1)
    out = verdicts(side, ref, cur)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def gyre_columns(mode: str, ref_rows: int, cur_rows: int, seed: int) -> dict[str, dict[str, float]]:
    """The gyre preset's adjusted p-values and effects per column (cached), to replay other minimum effects."""
    path = cache_dir() / "drift-power" / f"cols-{mode}-{ref_rows}x{cur_rows}-{seed}.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    from gyre.drift.check import check_frame
    from gyre.drift.profile import build_profile

    ref = generate(ref_rows, drift=False, seed=seed * 2)
    cur = generate(cur_rows, drift=mode == "power", seed=seed * 2 + 1)
    report = check_frame(build_profile(ref, KINDS), cur)
    out = {
        c.column: {
            "q": c.pvalue_adjusted if c.pvalue_adjusted is not None else 1.0,
            "effect": c.effect or 0.0,
            "measure": c.effect_measure or "",
            "missing": bool(c.missing_drifted),
        }
        for c in report.columns
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def sweep(seeds: int, ref_rows: int, cur_rows: int) -> int:
    """Planted changes caught and stable columns flagged for other minimum effects (alpha 0.05, same tests)."""
    runs = {m: [gyre_columns(m, ref_rows, cur_rows, s) for s in range(seeds)] for m in ("power", "null")}
    print(
        f"{ref_rows:,} x {cur_rows:,}, {seeds} seeds: planted caught / false alarms per 20 stable (power tables)"
    )
    print(f"{'min effect (sd, tvd)':24}{'caught':>10}{'alarms':>10}{'null FP rate':>14}")
    for sd, tvd in ((0.0, 0.0), (0.01, 0.005), (0.02, 0.01), (0.03, 0.02), (0.05, 0.03), (0.1, 0.05)):

        def drifted(col: dict[str, Any], sd: float = sd, tvd: float = tvd) -> bool:
            floor = sd if col["measure"] == "wasserstein_sd" else tvd
            return bool(col["missing"] or (col["q"] < 0.05 and col["effect"] >= floor))

        caught = np.mean([drifted(r[c]) for r in runs["power"] for c in PLANTED])
        alarms = 20 * np.mean([drifted(r[c]) for r in runs["power"] for c in STABLE])
        null = np.mean([drifted(v) for r in runs["null"] for v in r.values()])
        print(f"{f'{sd}, {tvd}':24}{caught:>10.1%}{alarms:>10.2f}{null:>14.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print the power table or the false-positive table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["power", "null", "sweep"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--ref-rows", type=int, default=100_000)
    parser.add_argument("--cur-rows", type=int, default=10_000)
    parser.add_argument("--sizes", default="1000:1000,10000:1000,100000:10000,1000000:100000")
    parser.add_argument("--sides", default=",".join(SIDES))
    args = parser.parse_args(argv)
    sides = args.sides.split(",")
    if args.mode == "sweep":
        return sweep(args.seeds, args.ref_rows, args.cur_rows)
    if args.mode == "power":
        print(f"{args.ref_rows:,} reference x {args.cur_rows:,} current rows, {args.seeds} seeds")
        print(f"{'':24}" + "".join(f"{s:>23}" for s in sides))
        per: dict[str, dict[str, list[bool]]] = {s: {} for s in sides}
        for side in sides:
            for seed in range(args.seeds):
                for col, v in cached("power", side, args.ref_rows, args.cur_rows, seed).items():
                    per[side].setdefault(col, []).append(v)
        for col in [*PLANTED, *STABLE]:
            print(f"{col:24}" + "".join(f"{np.mean(per[s].get(col, [np.nan])):>23.2f}" for s in sides))
        caught = {s: np.mean([np.mean(per[s][c]) for c in PLANTED if c in per[s]]) for s in sides}
        alarms = {s: 20 * np.mean([np.mean(per[s][c]) for c in STABLE if c in per[s]]) for s in sides}
        print(f"{'planted caught':24}" + "".join(f"{caught[s]:>23.1%}" for s in sides))
        print(f"{'false alarms / 20 stable':24}" + "".join(f"{alarms[s]:>23.2f}" for s in sides))
        return 0
    sizes = [tuple(int(x) for x in item.split(":")) for item in args.sizes.split(",")]
    print(f"per-column false-positive rate, no drift, {args.seeds} seeds x 20 columns")
    print(f"{'ref x cur':20}" + "".join(f"{s:>23}" for s in sides))
    for ref_rows, cur_rows in sizes:
        cells = []
        for side in sides:
            hits = [
                v
                for seed in range(args.seeds)
                for v in cached("null", side, ref_rows, cur_rows, seed).values()
            ]
            cells.append(f"{np.mean(hits):>23.3f}")
        print(f"{f'{ref_rows:,} x {cur_rows:,}':20}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
