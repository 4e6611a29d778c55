"""`gyre drift check`: the DriftMonitor's check, on local files.

    gyre drift check --reference ref.parquet --current cur.csv [--output report.json] [--html report.html]
    gyre drift report NAMESPACE/MONITOR [--output report.html]

REF is a CSV or Parquet table (profiled on the fly, column kinds inferred) or a stored `profile.json`; CUR is a
CSV or Parquet table with the reference's columns. Exit code 0 means the check ran, whatever the verdict; bad input
exits with 2 and a one-line reason on stderr. `gyre drift report` fetches the HTML report of a DriftMonitor's
latest check through the artifact store (`status.htmlReportUri`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gyre.api import env

if TYPE_CHECKING:
    import pandas as pd

    from gyre.drift.check import CurrentData, DriftConfig
    from gyre.drift.profile import ReferenceProfile

__all__ = ["load_reference", "register", "run_check"]

_TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


class _InputError(Exception):
    pass


def register(subparsers: Any) -> None:
    """Add `gyre drift check` to the `gyre` command line."""
    drift = subparsers.add_parser("drift", help="Data drift checks")
    drift_sub = drift.add_subparsers(dest="drift_command", required=True, metavar="SUBCOMMAND")
    # `gyre drift report` talks to the cluster, so gyre.controllers.drift_report adds it to this group.
    drift.set_defaults(subcommands=drift_sub)
    chk = drift_sub.add_parser(
        "check",
        help="Compare a current table with a reference table or profile.json",
        description="Compare CUR with REF column by column (same tests and defaults as DriftMonitor) and print "
        "a JSON report. Exit code 0 whatever the verdict; 2 on bad input.",
    )
    chk.add_argument("--reference", required=True, metavar="REF", help="CSV, Parquet or profile.json")
    chk.add_argument("--current", required=True, metavar="CUR", help="CSV or Parquet")
    chk.add_argument("--output", metavar="OUT.json", help="write the report here instead of stdout")
    chk.add_argument("--html", metavar="OUT.html", help="also write the report as a self-contained HTML page")
    chk.add_argument(
        "--preset",
        choices=["gyre", "evidently"],
        default="gyre",
        help="gyre: significance (corrected across columns) and a minimum effect; evidently: Evidently's defaults",
    )
    chk.add_argument(
        "--alpha", type=float, default=0.05, help="false discovery rate of the gyre preset (0.05)"
    )
    chk.add_argument("--drift-share", type=float, default=0.5, help="dataset drift share threshold (0.5)")
    chk.add_argument("--min-rows", type=int, default=30, help="minimum current values per column (30)")
    chk.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="COLUMN=METHOD[:THRESHOLD]",
        help="override a column's test (ks, chisquare, z, jensenshannon, wasserstein, psi); repeatable",
    )
    chk.set_defaults(func=run_check)

    _add_run_parser(drift_sub)


def _add_run_parser(drift_subparsers: Any) -> None:
    """Register `gyre drift run` (gyre.drift.monitor_run, imported only when it runs: its models and the store
    cost a check from a file about a second of imports)."""
    parser = drift_subparsers.add_parser(
        "run", help="One DriftMonitor check against the prediction log (in a Job)"
    )
    parser.add_argument("--store", required=True, help="artifact store URL")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--deployment", required=True, help="ModelDeployment whose prediction log is read")
    parser.add_argument("--monitor", required=True, help="DriftMonitor name (for the report path)")
    parser.add_argument("--check", type=int, required=True, help="check number")
    parser.add_argument("--profile", required=True, help="reference profile.json, relative to the store root")
    parser.add_argument("--max-rows", type=int, default=10000)
    parser.add_argument("--max-age-seconds", type=float, default=None)
    parser.add_argument(
        "--performance-baseline",
        metavar="MODEL_URI",
        help="also check performance against this model directory's manifest.json: a path relative to --store or a "
        f"URL (config in ${env.PERFORMANCE_CONFIG})",
    )
    parser.add_argument("--model-version", help="only predictions logged by this model version (TrainingRun)")
    parser.add_argument("--performance-max-rows", type=int, default=100_000)
    parser.add_argument("--performance-max-age-seconds", type=float, default=None)
    parser.set_defaults(func=_run_monitor_check)


def _run_monitor_check(args: argparse.Namespace) -> int:
    from gyre.drift.monitor_run import run

    return run(args)


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    name = path.name.lower()
    if not path.is_file():
        raise _InputError(f"{path}: no such file")
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files; all mean bad input here
        raise _InputError(f"{path}: cannot read: {exc}") from exc
    raise _InputError(
        f"{path}: unsupported file type (expected {', '.join(_TABLE_SUFFIXES)} or profile .json)"
    )


def load_reference(path: Path) -> ReferenceProfile:
    """A stored profile.json, or the profile of a CSV or Parquet table (Parquet one column at a time)."""
    from pydantic import ValidationError

    from gyre.drift.profile import ReferenceProfile, build_profile

    if path.name.lower().endswith(".json"):
        if not path.is_file():
            raise _InputError(f"{path}: no such file")
        try:
            return ReferenceProfile.from_json(path.read_bytes())
        except ValidationError as exc:
            raise _InputError(f"{path}: not a Gyre reference profile: {exc.errors()[0]['msg']}") from exc
    if path.name.lower().endswith((".parquet", ".pq")) and path.is_file():
        return _profile_parquet(path)
    return build_profile(_read_table(path))


def _profile_parquet(path: Path) -> ReferenceProfile:
    """Profile a Parquet reference one column at a time: peak memory is one column, not the whole table (the
    profile of each column depends on that column alone)."""
    import pyarrow.parquet as pq

    from gyre.drift.profile import ReferenceProfile, arrow_column_profile, build_profile

    try:
        parquet = pq.ParquetFile(path)
        columns = {}
        pandas_types = _pandas_types(parquet.schema_arrow)
        index = set((parquet.schema_arrow.pandas_metadata or {}).get("index_columns", []))
        for name in parquet.schema_arrow.names:
            if name in index:
                continue  # a pandas index stored as a column: pandas reads it as the index, not as data
            # In Arrow and numpy for the usual types (no pandas import, no Python string objects); else pandas.
            table = parquet.read(columns=[name])
            categorical = pandas_types.get(name) == "categorical"
            profiled = arrow_column_profile(table.column(0), categorical=categorical)
            if profiled is not None:
                columns[name] = profiled
            else:
                columns.update(build_profile(table.to_pandas()).columns)
            del table
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise _InputError(f"{path}: cannot read: {exc}") from exc
    return ReferenceProfile(row_count=parquet.metadata.num_rows, columns=columns)


def _read_current(path: Path, profile: ReferenceProfile, columns: list[str]) -> CurrentData:
    """The current table's profiled columns. Parquet is read with pyarrow alone (only those columns, no pandas:
    its import is a large share of a small check's CPU); CSV through pandas."""
    from gyre.drift.check import CurrentData

    current = CurrentData(profile, columns)
    if path.name.lower().endswith((".parquet", ".pq")) and path.is_file():
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            names = set(parquet.schema_arrow.names)
            absent = [name for name in profile.columns if name not in names]
            if absent:
                raise _InputError(f"{path}: missing reference columns {absent}")
            current.add_table(parquet.read(columns=columns))
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise _InputError(f"{path}: cannot read: {exc}") from exc
        return current
    frame = _read_table(path)
    absent = [name for name in profile.columns if name not in frame.columns]
    if absent:
        raise _InputError(f"{path}: missing reference columns {absent}")
    current.add_frame(frame)
    return current


def _pandas_types(schema: Any) -> dict[str, str]:
    """Column -> the pandas type recorded in a Parquet file written by pandas (none for other writers)."""
    metadata = schema.pandas_metadata or {}
    return {
        str(c["name"]): str(c.get("pandas_type"))
        for c in metadata.get("columns", [])
        if c.get("name") is not None
    }


def _parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        column, sep, spec = item.partition("=")
        if not sep or not column or not spec:
            raise _InputError(f"--method {item!r}: expected COLUMN=METHOD[:THRESHOLD]")
        method, _, threshold = spec.partition(":")
        entry: dict[str, Any] = {"method": method}
        if threshold:
            try:
                entry["threshold"] = float(threshold)
            except ValueError:
                raise _InputError(f"--method {item!r}: threshold {threshold!r} is not a number") from None
        overrides[column] = entry
    return overrides


def _config(args: argparse.Namespace) -> DriftConfig:
    from pydantic import ValidationError

    from gyre.drift.check import DriftConfig

    try:
        return DriftConfig.model_validate(
            {
                "drift_share": args.drift_share,
                "min_rows": args.min_rows,
                "preset": args.preset,
                "alpha": args.alpha,
                "overrides": _parse_overrides(args.method),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _InputError(f"invalid option {where}: {first['msg']}") from exc


def run_check(args: argparse.Namespace) -> int:
    """Run `gyre drift check`; 0 when the check ran, 2 on bad input."""
    from gyre.drift.check import DriftConfigError, check, resolve_columns
    from gyre.drift.profile import ProfileError

    try:
        config = _config(args)
        profile = load_reference(Path(args.reference))
        current = _read_current(Path(args.current), profile, resolve_columns(profile, config))
        report = check(profile, current, config)
    except (_InputError, ProfileError, DriftConfigError) as exc:
        print(f"gyre drift check: error: {exc}", file=sys.stderr)
        return 2
    text = report.to_json()
    if args.html:
        from gyre.drift.html import render_html

        try:
            Path(args.html).write_text(render_html(report, title=f"Drift: {Path(args.current).name}"))
        except OSError as exc:
            print(f"gyre drift check: error: cannot write {args.html}: {exc}", file=sys.stderr)
            return 2
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as exc:
            print(f"gyre drift check: error: cannot write {args.output}: {exc}", file=sys.stderr)
            return 2
        print(
            f"{report.verdict}: {report.number_of_drifted_columns}/{report.number_of_columns} columns drifted "
            f"(share {report.drift_share:.3f}, threshold {report.drift_share_threshold}); report in {args.output}",
            file=sys.stderr,
        )
    else:
        print(text)
    return 0
