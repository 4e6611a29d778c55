"""`gyre perf check`: the DriftMonitor's performance check, on local files.

    gyre perf check --predictions DIR --labels FILE --baseline MANIFEST [--max-age 24h] [--min-labelled-rows 100]

DIR holds prediction-log batches (`*.jsonl.gz`, any depth: a copy of `predictions/{ns}/{deployment}`); FILE is a
label file (`.csv`, `.csv.gz`, `.parquet` or a feedback `.jsonl.gz`: id, label[, ts]) or a directory of them;
MANIFEST is the served model's manifest.json (task, classes, test metrics, test rows). Exit code 0 means the check
ran, whatever the verdict; bad input exits with 2 and a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run_check"]


class _InputError(Exception):
    pass


def register(subparsers: Any) -> None:
    """Add `gyre perf check` to the `gyre` command line."""
    perf = subparsers.add_parser("perf", help="Model performance on labelled predictions")
    perf_sub = perf.add_subparsers(dest="perf_command", required=True, metavar="SUBCOMMAND")
    chk = perf_sub.add_parser(
        "check",
        help="Join logged predictions with labels and compare the metrics with the model's test metrics",
        description="Join DIR's logged predictions with FILE's labels by prediction id, compute the task's "
        "metrics with bootstrap intervals and compare them with MANIFEST's test metrics (same rule and defaults "
        "as DriftMonitor spec.performance). Prints a JSON report. Exit code 0 whatever the verdict; 2 on bad "
        "input.",
    )
    chk.add_argument(
        "--predictions", required=True, metavar="DIR", help="directory of prediction-log batches"
    )
    chk.add_argument(
        "--labels", required=True, metavar="FILE", help="CSV, Parquet or .jsonl.gz labels, or a dir"
    )
    chk.add_argument("--baseline", required=True, metavar="MANIFEST", help="the served model's manifest.json")
    chk.add_argument("--output", metavar="OUT.json", help="write the report here instead of stdout")
    chk.add_argument("--max-age", metavar="DURATION", help="ignore predictions older than this (e.g. 24h)")
    chk.add_argument("--now", type=float, metavar="UNIX_S", help="the window's end (default: now)")
    chk.add_argument(
        "--min-labelled-rows",
        type=int,
        default=200,
        help="below this, insufficient_data (200, as the monitor)",
    )
    chk.add_argument("--model-version", help="only predictions logged by this model version")
    chk.add_argument(
        "--metric", action="append", default=[], help="metric to check; repeatable (default: all)"
    )
    chk.add_argument(
        "--relative-drop", type=float, default=0.05, help="tolerated drop, fraction of |baseline| (0.05)"
    )
    chk.add_argument(
        "--max-drop",
        action="append",
        default=[],
        metavar="METRIC=DROP",
        help="tolerated drop of one metric in its own units; repeatable",
    )
    chk.add_argument("--confidence", type=float, default=0.95, help="interval confidence (0.95)")
    chk.add_argument("--seed", type=int, default=0, help="bootstrap seed (0)")
    chk.set_defaults(func=run_check)


def _prediction_rows(directory: Path) -> list[dict[str, Any]]:
    import gzip
    import zlib

    import orjson

    if not directory.is_dir():
        raise _InputError(f"{directory}: not a directory")
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.rglob("*.jsonl.gz")):
        try:
            raw = gzip.decompress(path.read_bytes())
            rows.extend(
                r
                for r in (orjson.loads(line) for line in raw.splitlines() if line.strip())
                if isinstance(r, dict)
            )
        except (OSError, EOFError, zlib.error, orjson.JSONDecodeError) as exc:
            print(f"gyre perf check: skipping {path}: {type(exc).__name__}", file=sys.stderr)
    return rows


def _labels(path: Path) -> Any:
    from gyre.performance.labels import LABEL_SUFFIXES, LabelRead, parse_label_file

    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not path.exists():
        raise _InputError(f"{path}: no such file")
    out = LabelRead()
    for file in files:
        if not file.name.lower().endswith(LABEL_SUFFIXES):
            if not path.is_dir():
                raise _InputError(f"{file}: unsupported file type (expected {', '.join(LABEL_SUFFIXES)})")
            continue
        parse_label_file(
            file.name, file.read_bytes(), default_ts=file.stat().st_mtime, source=str(file), out=out
        )
    return out


def _config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from gyre.performance.check import PerformanceConfig

    drops: dict[str, float] = {}
    for item in args.max_drop:
        name, sep, value = item.partition("=")
        try:
            drops[name] = float(value)
        except ValueError:
            raise _InputError(f"--max-drop {item!r}: expected METRIC=NUMBER") from None
        if not sep or not name:
            raise _InputError(f"--max-drop {item!r}: expected METRIC=NUMBER")
    try:
        return PerformanceConfig(
            metrics=args.metric or None,
            relative_drop=args.relative_drop,
            max_drop=drops,
            min_labelled_rows=args.min_labelled_rows,
            confidence=args.confidence,
            seed=args.seed,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _InputError(f"invalid option {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc


def _baseline(path: Path) -> Any:
    from pydantic import ValidationError

    from gyre.performance.check import Baseline
    from gyre.training.manifest import ModelManifest

    if not path.is_file():
        raise _InputError(f"{path}: no such file")
    try:
        manifest = ModelManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise _InputError(f"{path}: not a Gyre model manifest: {exc.errors()[0]['msg']}") from exc
    return Baseline.from_manifest(manifest, source=str(path))


def _window(rows: list[dict[str, Any]], max_age: str | None, now: float | None) -> list[dict[str, Any]]:
    import time

    from gyre.api.common import parse_duration

    if max_age is None:
        return rows
    try:
        seconds = parse_duration(max_age).total_seconds()
    except ValueError as exc:
        raise _InputError(f"--max-age {max_age!r}: {exc}") from exc
    end = time.time() if now is None else now
    return [r for r in rows if isinstance(r.get("ts"), int | float) and end - seconds <= r["ts"] <= end]


def run_check(args: argparse.Namespace) -> int:
    """Run `gyre perf check`; 0 when the check ran, 2 on bad input."""
    from gyre.performance.check import PerformanceConfigError, check_joined
    from gyre.performance.join import join_rows

    try:
        config = _config(args)
        baseline = _baseline(Path(args.baseline))
        config.resolve_metrics(baseline.task)
        rows = _window(_prediction_rows(Path(args.predictions)), args.max_age, args.now)
        labels = _labels(Path(args.labels))
        joined = join_rows(
            rows, labels.records, task=baseline.task, classes=baseline.classes, label_read=labels
        )
        report = check_joined(joined, baseline, config)
    except (_InputError, PerformanceConfigError) as exc:
        print(f"gyre perf check: error: {exc}", file=sys.stderr)
        return 2
    text = report.to_json()
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as exc:
            print(f"gyre perf check: error: cannot write {args.output}: {exc}", file=sys.stderr)
            return 2
        print(f"{report.verdict}: {report.message}; report in {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0
