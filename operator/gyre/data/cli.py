"""`gyre profile`: the Dataset profiling job's entrypoint."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from gyre.api import env

if TYPE_CHECKING:
    from gyre.data.sql import SqlCredentials

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `profile` subcommand."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "profile",
        help="profile a dataset version (runs in the Dataset's Job)",
        description="Load a source, fingerprint it, store a content-addressed parquet copy and its reference "
        "profile, and write a compact report to the termination log. Reads the optional Dataset spec from "
        f"${env.DATASET_SPEC} for csv options and schema overrides, and the source policy from "
        f"${env.SOURCE_POLICY} (JSON; unset: the defaults).",
    )
    parser.add_argument("--store", required=True, help="artifact store URL (pvc://, file://, s3://, gs://)")
    parser.add_argument("--namespace", required=True, help="namespace of the Dataset")
    parser.add_argument("--name", required=True, help="name of the Dataset")
    parser.add_argument(
        "--source", required=True, help="source URI (builtin://iris, s3://bucket/key.csv, ...)"
    )
    parser.add_argument("--format", choices=("auto", "csv", "parquet"), default="auto")
    parser.add_argument("--target", default=None, help="target column; must exist in the data")
    parser.add_argument(
        "--previous-fingerprint",
        default=None,
        help="incremental refresh of a sql source: the version to append new rows to",
    )
    parser.add_argument(
        "--after",
        default=None,
        help="incremental refresh: read only rows whose watermark is above this value",
    )
    parser.add_argument("--model-uri", default=None, help="feedback source: the served model's directory")
    parser.add_argument("--model-sha256", default=None, help="feedback source: the served model's digest")
    parser.add_argument("--merge-dataset", default=None, help="feedback source: the mergeWith Dataset")
    parser.add_argument(
        "--merge-fingerprint", default=None, help="feedback source: its version's fingerprint"
    )
    parser.set_defaults(func=_profile)


def _sql_credentials() -> SqlCredentials:
    """The sql source's user and password from the Secret-backed env; removed from the environment once read,
    so nothing the read starts inherits them."""
    from gyre.data.sql import SqlCredentials

    user = os.environ.pop(env.SQL_USER, "")
    password = os.environ.pop(env.SQL_PASSWORD, None) or None
    return SqlCredentials(user=user, password=password)


def _profile(args: argparse.Namespace) -> int:
    from gyre.data.profiling import ProfileRequest, run_profile
    from gyre.data.report import ProfileReport
    from gyre.data.sources import CsvReadOptions
    from gyre.policy.sources import SourcePolicy
    from gyre.store import write_termination_message

    kinds: dict[str, Any] = {}
    drop: list[str] = []
    csv = None
    sql = None
    feedback = None
    expectations = None
    raw = os.environ.get(env.DATASET_SPEC)
    if raw:
        from pydantic import ValidationError

        from gyre.api.dataset import DatasetSpec

        try:
            spec = DatasetSpec.model_validate_json(raw)
        except ValidationError as exc:
            report = ProfileReport(
                phase="Failed", reason="InvalidSpec", error=f"${env.DATASET_SPEC} is invalid: {exc}"
            )
            write_termination_message(report.to_termination_message())
            return 1
        if spec.source.csv is not None:
            opts = spec.source.csv
            csv = CsvReadOptions(
                delimiter=opts.delimiter,
                header=opts.header,
                encoding=opts.encoding,
                na_values=opts.na_values or (),
            )
        if spec.schema_ is not None:
            kinds = dict(spec.schema_.kinds or {})
            drop = list(spec.schema_.drop or [])
        sql, feedback, expectations = spec.source.sql, spec.source.feedback, spec.expectations
    try:
        policy = SourcePolicy.from_json(os.environ.get(env.SOURCE_POLICY))
    except ValueError as exc:
        report = ProfileReport(
            phase="Failed", reason="InvalidSourcePolicy", error=f"${env.SOURCE_POLICY} is invalid: {exc}"
        )
        write_termination_message(report.to_termination_message())
        return 1
    request = ProfileRequest(
        store_url=args.store,
        namespace=args.namespace,
        name=args.name,
        source=args.source,
        format=args.format,
        target=args.target,
        csv=csv,
        kinds=kinds,
        drop=drop,
        source_policy=policy,
        sql=sql,
        credentials=_sql_credentials() if sql is not None else None,
        previous_fingerprint=args.previous_fingerprint,
        after=args.after,
        expectations=expectations,
        feedback=feedback,
        model_uri=args.model_uri,
        model_sha256=args.model_sha256,
        merge_dataset=args.merge_dataset,
        merge_fingerprint=args.merge_fingerprint,
    )
    report = run_profile(request)
    write_termination_message(report.to_termination_message())
    return 0 if report.phase == "Succeeded" else 1
