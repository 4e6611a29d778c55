"""Drift benchmark: Gyre's profile + check against Evidently's default data-drift report, same tables, same machine.

    .venv/bin/python benchmarks/drift/run.py [--ref-rows 1000000] [--cur-rows 100000] [--quick]

Generates a mixed table (10 numeric, 6 categorical, 4 binary columns; 6 of them drifted in the current table),
writes both as Parquet, then runs three child processes, one at a time:

- gyre-profile: read the reference, build the profile, write profile.json (done once per Dataset version);
- gyre-check: read profile.json and the current table, run the check (what a DriftMonitor does on schedule);
- gyre-cli-raw: `gyre drift check --reference reference.parquet --current current.parquet --output ...`, the whole
  process from raw tables to the report (profile built on the fly);
- gyre-cli-profile: the same command with `--reference profile.json` (the scheduled check as one process);
- evidently: read both tables, run `Report([DataDriftPreset()])` (Evidently's default), in its own venv under
  ${GYRE_CACHE:-~/.cache/gyre}/bench/evidently-venv, created here on first use (Evidently's pins conflict with ours).

Both venvs get their bytecode compiled first (as pip does in the image; PYTHONDONTWRITEBYTECODE would otherwise
make every child recompile what it imports). Wall time is measured around each child; peak memory is the child's own ru_maxrss from os.wait4 (tracemalloc misses
numpy's allocations). Both sides pay for interpreter start, imports and Parquet reads; the in-process compute time
is reported too. Prints a table of ratios and per-column verdict agreement, and writes WORKDIR/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas>=2.2,<3", "pyarrow"]
"""Evidently 0.7.23 imports a pandas internal that pandas 3 removed, hence the cap."""

# Evidently's method names -> Gyre's. Evidently's chi-squared is a goodness-of-fit test against the reference
# frequencies, Gyre's the two-sample homogeneity test: a different method under the same name, so not "the same".
METHOD_NAMES = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare-gof",
    "Z-test p_value": "z",
    "PSI": "psi",
}


def cache_dir() -> Path:
    """${GYRE_CACHE:-~/.cache/gyre}/bench."""
    return Path(os.environ.get("GYRE_CACHE") or Path.home() / ".cache" / "gyre") / "bench"


def ensure_evidently_venv() -> Path:
    """Create (once) a venv with Evidently and return its python."""
    venv = cache_dir() / "evidently-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".gyre-requirements"
    wanted = "\n".join(EVIDENTLY_REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"creating {venv} with {' '.join(EVIDENTLY_REQUIREMENTS)} (once)...", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    env = dict(os.environ)
    ca = "/etc/ssl/certs/ca-certificates.crt"
    if Path(ca).exists():
        env.setdefault("PIP_CERT", ca)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *EVIDENTLY_REQUIREMENTS],
        check=True,
        env=env,
    )
    stamp.write_text(wanted)
    return python


# --- data -----------------------------------------------------------------------------------------------------------


def schema() -> dict[str, str]:
    """Column -> kind of the benchmark table."""
    kinds = {f"n{i}": "numeric" for i in range(10)}
    kinds.update({f"c{i}": "categorical" for i in range(6)})
    kinds.update({f"b{i}": "binary" for i in range(4)})
    return kinds


EXPECTED_DRIFT = {"n0", "n3", "n8", "c1", "c3", "b1"}


def generate(n: int, *, current: bool, seed: int) -> Any:
    """One table; `current=True` applies the drifts listed in EXPECTED_DRIFT."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)

    def cats(k: int, probs: Any = None, prefix: str = "v") -> Any:
        labels = np.array([f"{prefix}{i}" for i in range(k)], dtype=object)
        return labels[rng.choice(k, n, p=probs)]

    zipf = 1.0 / np.arange(1, 201) ** 1.1
    zipf /= zipf.sum()
    c1_ref = np.full(10, 0.1)
    c1_cur = np.array([0.25, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05, 0.04, 0.03, 0.03])
    c4_ref = np.array([0.4, 0.3, 0.2, 0.1])
    c4_cur = np.array([0.39, 0.31, 0.2, 0.1])
    cols: dict[str, Any] = {
        "n0": rng.normal(0.5 if current else 0.0, 1.0, n),  # drift: mean shift 0.5 sd
        "n1": rng.normal(100.3 if current else 100.0, 15.0, n),  # 0.02 sd: no drift
        "n2": rng.lognormal(0.0, 0.7, n),
        "n3": rng.normal(0.0, 2.0 if current else 1.0, n),  # drift: variance x4
        "n4": rng.uniform(0.0, 1.0, n),
        "n5": rng.normal(5.0, 2.0, n),
        "n6": rng.poisson(3.0, n).astype(np.int64),
        "n7": rng.exponential(1.03 if current else 1.0, n),  # 0.03 sd: no drift
        "n8": rng.normal(0.15 if current else 0.0, 1.0, n),  # drift: 0.15 sd, above the 0.1 threshold
        "n9": rng.standard_t(5, n),
        "c0": cats(3, [0.5, 0.3, 0.2]),
        "c1": cats(10, c1_cur if current else c1_ref),  # drift: frequencies
        "c2": cats(50),
        "c3": cats(5),
        "c4": cats(4, c4_cur if current else c4_ref),  # mild change: no drift
        "c5": cats(200, zipf),
        "b0": (rng.random(n) < 0.3).astype(np.int64),
        "b1": np.where(rng.random(n) < (0.75 if current else 0.5), "yes", "no").astype(object),  # drift
        "b2": rng.random(n) < 0.6,
        "b3": (rng.random(n) < 0.1).astype(np.int64),
    }
    frame = pd.DataFrame(cols)
    frame.loc[rng.random(n) < 0.05, "n5"] = np.nan  # 5% missing on both sides
    if current:
        frame.loc[rng.random(n) < 0.25, "c3"] = "unseen"  # drift: a new category
    return frame


# --- children ---------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One child process."""

    wall_s: float
    cpu_s: float
    maxrss_mib: float
    result: dict[str, Any]

    def best(self, other: Run | None) -> Run:
        """The faster of two repeats (min wall, min CPU, max memory): noise on a shared machine only adds time."""
        if other is None:
            return self
        result = self.result if self.result["compute_s"] <= other.result["compute_s"] else other.result
        return Run(
            min(self.wall_s, other.wall_s),
            min(self.cpu_s, other.cpu_s),
            max(self.maxrss_mib, other.maxrss_mib),
            result,
        )


def compile_bytecode(python: Path) -> None:
    """Compile a venv's site-packages (and Gyre's sources) once, so children import from .pyc as in the image."""
    code = "import site, sys; print('\\n'.join(site.getsitepackages()))"
    dirs = subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", *dirs, str(ROOT / "operator" / "gyre")],
        check=False,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def run_cli(argv: list[str], report_file: Path) -> Run:
    """Run `gyre drift check` as its own process; the result is the report it wrote."""
    report_file.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed: {' '.join(argv)}")
    report = json.loads(report_file.read_text())
    result = {
        "compute_s": wall,
        "columns": {
            c["column"]: {
                "method": c["method"],
                "score": c["score"],
                "threshold": c["threshold"],
                "drifted": c["drifted"],
            }
            for c in report["columns"]
        },
        "drift_share": report["driftShare"],
        "verdict": report["verdict"],
    }
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, result)


def run_child(argv: list[str], result_file: Path) -> Run:
    """Run a child to completion; wall time, CPU time (user + sys) and the child's peak RSS (os.wait4)."""
    result_file.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(argv)}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, usage.ru_maxrss / 1024, json.loads(result_file.read_text()))


def vmhwm_mib() -> float:
    """This process's own peak RSS (VmHWM, per address space: unaffected by the parent's memory at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_generate(workdir: Path, ref_rows: int, cur_rows: int, seed: int) -> None:
    """Child: write the tables (in a child so that the parent stays small: a child's ru_maxrss starts at the
    parent's RSS at fork)."""
    (workdir / "schema.json").write_text(json.dumps(schema()))
    generate(ref_rows, current=False, seed=seed).to_parquet(workdir / "reference.parquet")
    generate(cur_rows, current=True, seed=seed + 1).to_parquet(workdir / "current.parquet")
    (workdir / "generate.json").write_text(json.dumps({"vmhwm_mib": vmhwm_mib()}))


def child_profile(workdir: Path) -> None:
    """Child: build and store the reference profile."""
    t0 = time.perf_counter()
    import pandas as pd

    from gyre.drift.profile import build_profile

    t_import = time.perf_counter()
    kinds = json.loads((workdir / "schema.json").read_text())
    reference = pd.read_parquet(workdir / "reference.parquet")
    t_read = time.perf_counter()
    profile = build_profile(reference, kinds)
    text = profile.to_json()
    t_done = time.perf_counter()
    (workdir / "profile.json").write_text(text)
    out = {
        "import_s": t_import - t0,
        "read_s": t_read - t_import,
        "compute_s": t_done - t_read,
        "bytes": len(text),
        "vmhwm_mib": vmhwm_mib(),
    }
    (workdir / "gyre-profile.json").write_text(json.dumps(out))


def child_check(workdir: Path) -> None:
    """Child: the scheduled check, from the stored profile."""
    t0 = time.perf_counter()
    import pandas as pd

    from gyre.drift.check import DriftConfig, check_frame
    from gyre.drift.profile import ReferenceProfile

    t_import = time.perf_counter()
    profile = ReferenceProfile.from_json((workdir / "profile.json").read_bytes())
    current = pd.read_parquet(workdir / "current.parquet")
    t_read = time.perf_counter()
    report = check_frame(
        profile, current, DriftConfig(preset=os.environ.get("GYRE_BENCH_PRESET", "evidently"))
    )  # type: ignore[arg-type]
    t_done = time.perf_counter()
    out = {
        "import_s": t_import - t0,
        "read_s": t_read - t_import,
        "compute_s": t_done - t_read,
        "columns": {
            c.column: {"method": c.method, "score": c.score, "threshold": c.threshold, "drifted": c.drifted}
            for c in report.columns
        },
        "drift_share": report.drift_share,
        "verdict": report.verdict,
        "vmhwm_mib": vmhwm_mib(),
    }
    (workdir / "gyre-check.json").write_text(json.dumps(out))


# --- report -----------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """nproc, CPU model and RAM of this machine."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024**2, 1),
        "python": platform.python_version(),
    }


def compare(gyre: dict[str, Any], evidently: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-column verdicts side by side."""
    rows = []
    for column, g in gyre["columns"].items():
        e = evidently["columns"].get(column)
        if e is None:
            continue
        e_method = METHOD_NAMES.get(e["method"], e["method"])
        same_method = e_method == g["method"]
        rows.append(
            {
                "column": column,
                "gyre_method": g["method"],
                "gyre_score": g["score"],
                "gyre_drifted": g["drifted"],
                "evidently_method": e_method,
                "evidently_score": e["score"],
                "evidently_drifted": e["drifted"],
                "same_method": same_method,
                "score_diff": abs(g["score"] - e["score"])
                if same_method and g["score"] is not None
                else None,
                "agree": g["drifted"] == e["drifted"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one child, with --child)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref-rows", type=int, default=1_000_000)
    parser.add_argument("--cur-rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="20k/5k rows: a smoke run")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--regenerate", action="store_true", help="write the tables even when they exist")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each side, interleaved; the best is kept"
    )
    parser.add_argument(
        "--preset", choices=["gyre", "evidently"], default="evidently", help="Gyre's preset in the timed runs"
    )
    parser.add_argument("--child", choices=["generate", "profile", "check"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.ref_rows, args.cur_rows = 20_000, 5_000
    workdir = args.workdir or cache_dir() / "drift" / f"{args.ref_rows}x{args.cur_rows}"
    if args.child == "generate":
        child_generate(workdir, args.ref_rows, args.cur_rows, args.seed)
        return 0
    if args.child == "profile":
        child_profile(workdir)
        return 0
    if args.child == "check":
        child_check(workdir)
        return 0

    workdir.mkdir(parents=True, exist_ok=True)
    evidently_python = ensure_evidently_venv()
    print(
        f"generating {args.ref_rows:,} reference and {args.cur_rows:,} current rows x 20 columns in {workdir}"
    )
    me = [sys.executable, str(Path(__file__).resolve()), "--workdir", str(workdir)]
    sizes = ["--ref-rows", str(args.ref_rows), "--cur-rows", str(args.cur_rows), "--seed", str(args.seed)]
    if not (workdir / "current.parquet").exists() or args.regenerate:
        run_child([*me, *sizes, "--child", "generate"], workdir / "generate.json")
    me.append("--child")
    os.environ["GYRE_BENCH_PRESET"] = args.preset
    compile_bytecode(Path(sys.executable))
    compile_bytecode(evidently_python)
    evidently_argv = [str(evidently_python), str(HERE / "evidently_child.py"), str(workdir)]
    gyre_cli = [sys.executable, "-m", "gyre", "drift", "check", "--preset", args.preset, "--current"]
    raw_argv = [
        *gyre_cli,
        str(workdir / "current.parquet"),
        "--reference",
        str(workdir / "reference.parquet"),
    ]
    prof_argv = [*gyre_cli, str(workdir / "current.parquet"), "--reference", str(workdir / "profile.json")]
    out = workdir / "gyre-cli-report.json"
    profile = check = evidently = raw = cli_prof = None
    for i in range(max(args.repeat, 1)):
        print(
            f"run {i + 1}/{args.repeat}: gyre profile, check, CLI raw, CLI profile; evidently...", flush=True
        )
        profile = run_child([*me, "profile"], workdir / "gyre-profile.json").best(profile)
        check = run_child([*me, "check"], workdir / "gyre-check.json").best(check)
        raw = run_cli([*raw_argv, "--output", str(out)], out).best(raw)
        cli_prof = run_cli([*prof_argv, "--output", str(out)], out).best(cli_prof)
        evidently = run_child(evidently_argv, workdir / "evidently.json").best(evidently)
    assert profile and check and evidently and raw and cli_prof
    report(args, workdir, profile, check, evidently, raw, cli_prof)
    return 0


def report(
    args: argparse.Namespace, workdir: Path, profile: Run, check: Run, ev: Run, raw: Run, cli_prof: Run
) -> None:
    """Print the tables and write results.json."""
    rows = compare(check.result, ev.result)
    both = Run(
        profile.wall_s + check.wall_s,
        profile.cpu_s + check.cpu_s,
        max(profile.maxrss_mib, check.maxrss_mib),
        {"compute_s": profile.result["compute_s"] + check.result["compute_s"]},
    )
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "ref_rows": args.ref_rows,
        "cur_rows": args.cur_rows,
        "columns": 20,
        "repeat": args.repeat,
        "evidently_version": ev.result["version"],
        "gyre_profile": {"wall_s": profile.wall_s, "cpu_s": profile.cpu_s, "maxrss_mib": profile.maxrss_mib}
        | profile.result,
        "gyre_check": {"wall_s": check.wall_s, "cpu_s": check.cpu_s, "maxrss_mib": check.maxrss_mib}
        | check.result,
        "preset": args.preset,
        "gyre_cli_raw": {"wall_s": raw.wall_s, "cpu_s": raw.cpu_s, "maxrss_mib": raw.maxrss_mib},
        "gyre_cli_profile": {
            "wall_s": cli_prof.wall_s,
            "cpu_s": cli_prof.cpu_s,
            "maxrss_mib": cli_prof.maxrss_mib,
        },
        "evidently": {"wall_s": ev.wall_s, "cpu_s": ev.cpu_s, "maxrss_mib": ev.maxrss_mib} | ev.result,
        "agreement": rows,
    }
    (workdir / "results.json").write_text(json.dumps(results, indent=1))

    print()
    print(
        f"{args.ref_rows:,} reference x {args.cur_rows:,} current rows, 20 columns; "
        f"Evidently {ev.result['version']}; best of {args.repeat}"
    )
    head = f"{'':32}{'wall s':>8}{'CPU s':>8}{'compute s':>10}{'peak MiB':>9}"
    labels = " ".join(f"{label:>7}" for label in ("wall", "CPU", "compute", "memory"))
    print(f"{head}   Evidently / Gyre: {labels}")

    def line(name: str, run: Run) -> None:
        ratios = [
            ev.wall_s / run.wall_s,
            ev.cpu_s / run.cpu_s,
            ev.result["compute_s"] / run.result["compute_s"],
            ev.maxrss_mib / run.maxrss_mib,
        ]
        cells = f"{run.wall_s:8.2f}{run.cpu_s:8.2f}{run.result['compute_s']:10.3f}{run.maxrss_mib:9.0f}"
        print(f"{name:32}{cells}   {' ' * 18}" + " ".join(f"{r:6.1f}x" for r in ratios))

    line("gyre check (scheduled)", check)
    line("gyre profile (once per version)", profile)
    line("gyre profile + check", both)
    line("gyre drift check RAW RAW", raw)
    line("gyre drift check PROFILE RAW", cli_prof)
    print(
        f"{'evidently DataDriftPreset':32}{ev.wall_s:8.2f}{ev.cpu_s:8.2f}{ev.result['compute_s']:10.3f}"
        f"{ev.maxrss_mib:9.0f}"
    )
    print(
        f"(peak MiB = the child's ru_maxrss; its own VmHWM: profile {profile.result['vmhwm_mib']:.0f}, "
        f"check {check.result['vmhwm_mib']:.0f}, evidently {ev.result['vmhwm_mib']:.0f}; compute = in-process "
        "time after imports and Parquet reads)"
    )
    print()
    print(
        f"{'column':8}{'gyre method':>15}{'score':>11}{'drift':>7}  {'evidently method':>16}{'score':>11}{'drift':>7}"
    )
    for r in rows:
        print(
            f"{r['column']:8}{r['gyre_method']:>15}{r['gyre_score']:11.4f}{r['gyre_drifted']!s:>7}  "
            f"{r['evidently_method']:>16}{r['evidently_score']:11.4f}{r['evidently_drifted']!s:>7}  "
            f"{'agree' if r['agree'] else 'DIFFER'}"
        )
    same = [r for r in rows if r["same_method"]]
    agree_same = sum(r["agree"] for r in same)
    max_diff = max((r["score_diff"] for r in same if r["score_diff"] is not None), default=0.0)
    print()
    print(
        f"verdicts agree on {sum(r['agree'] for r in rows)}/{len(rows)} columns "
        f"({agree_same}/{len(same)} where the methods coincide; max score difference there {max_diff:.2e})"
    )
    print(
        f"dataset: gyre share {check.result['drift_share']:.2f} ({check.result['verdict']}), "
        f"evidently share {ev.result['drifted_columns_count']['share']:.2f}"
    )
    print(f"expected drifted columns: {sorted(EXPECTED_DRIFT)}")
    print(f"results: {workdir / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
