"""`gyre drift report NAMESPACE/MONITOR`: the HTML report a DriftMonitor's status links, fetched through the store."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gyre.api.common import API_VERSION
from gyre.api.driftmonitor import DriftMonitorStatus
from gyre.api.env import ARTIFACT_STORE
from gyre.store.store import ArtifactStore, StoreError

__all__ = ["ReportUnavailable", "fetch_report_html", "register", "run_report", "store_relative"]


class ReportUnavailable(Exception):
    """No report to fetch: no such monitor, no check yet, or the store does not have it."""


def store_relative(uri: str) -> str:
    """The store-relative path of a report URI (`.../drift/NS/MONITOR/N.html` -> `drift/NS/MONITOR/N.html`)."""
    _head, sep, tail = uri.rpartition("/drift/")
    if not sep:
        raise ReportUnavailable(f"{uri} is not a drift report path")
    return "drift/" + tail


def fetch_report_html(namespace: str, name: str, *, store_url: str | None = None) -> bytes:
    """The bytes of the monitor's latest HTML report.

    Read through `store_url` (default GYRE_ARTIFACT_STORE) when given, so a pvc:// or in-cluster path becomes the
    same file seen from here; otherwise straight from the URI in the status (s3://, gs://, file://).
    """
    from gyre.controllers import kube

    obj = kube.get(API_VERSION, "DriftMonitor", namespace, name)
    if obj is None:
        raise ReportUnavailable(f"DriftMonitor {namespace}/{name} not found")
    try:
        status = DriftMonitorStatus.model_validate(obj.get("status") or {})
    except ValidationError as exc:
        raise ReportUnavailable(f"DriftMonitor {namespace}/{name} has an unreadable status: {exc}") from exc
    if not status.html_report_uri:
        raise ReportUnavailable(
            f"DriftMonitor {namespace}/{name} has no HTML report yet (status.htmlReportUri)"
        )
    url = store_url or os.environ.get(ARTIFACT_STORE)
    try:
        if url:
            return ArtifactStore(url).read_bytes(store_relative(status.html_report_uri))
        root, _, rel = status.html_report_uri.rpartition("/drift/")
        return ArtifactStore(root).read_bytes("drift/" + rel)
    except StoreError as exc:
        raise ReportUnavailable(str(exc)) from exc


def register(subparsers: Any) -> None:
    """Add `gyre drift report` to the `gyre drift` group (registered before, by gyre.drift.cli)."""
    drift = subparsers.choices.get("drift")
    if drift is None:
        return
    rep = drift.get_default("subcommands").add_parser(
        "report",
        help="Fetch the HTML report of a DriftMonitor's latest check",
        description="Read NAMESPACE/MONITOR's status (current kube context) and copy the HTML report it links "
        "from the artifact store to OUT (or stdout).",
    )
    rep.add_argument("monitor", metavar="NAMESPACE/MONITOR")
    rep.add_argument("--output", "-o", metavar="OUT.html", help="write here instead of stdout")
    rep.add_argument(
        "--store",
        metavar="URL",
        help="read through this store URL (default GYRE_ARTIFACT_STORE, else the URI as is)",
    )
    rep.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Run `gyre drift report`: 0 when the page was written, 2 when there is none to fetch."""
    namespace, sep, name = args.monitor.partition("/")
    if not sep or not namespace or not name:
        print("gyre drift report: error: expected NAMESPACE/MONITOR", file=sys.stderr)
        return 2
    try:
        page = fetch_report_html(namespace, name, store_url=args.store)
    except ReportUnavailable as exc:
        print(f"gyre drift report: error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_bytes(page)
        print(f"report of {namespace}/{name} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(page)
    return 0
