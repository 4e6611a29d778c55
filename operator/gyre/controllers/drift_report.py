"""`gyre drift report NAMESPACE/MONITOR`: the HTML report a DriftMonitor's status links, fetched through the store."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gyre.api.common import API_VERSION
from gyre.api.driftmonitor import DriftMonitorStatus
from gyre.api.env import ARTIFACT_STORE
from gyre.store.store import ArtifactStore, StoreError

__all__ = [
    "ReportUnavailable",
    "add_store_argument",
    "fetch_or_explain",
    "fetch_report_html",
    "parse_ref",
    "read_linked",
    "read_object",
    "register",
    "run_report",
    "store_relative",
    "write_output",
]

S = TypeVar("S", bound=BaseModel)


class ReportUnavailable(Exception):
    """No report to fetch: no such monitor, no check yet, or the store does not have it."""


def store_relative(uri: str, prefix: str = "drift/") -> str:
    """The store-relative path of a URI a status links, from the last `/<prefix>` on
    (`.../drift/NS/MONITOR/N.html` -> `drift/NS/MONITOR/N.html`)."""
    at = uri.rfind("/" + prefix)
    if at < 0:
        raise ReportUnavailable(f"{uri} is not under {prefix}")
    return uri[at + 1 :]


def read_linked(uri: str, prefix: str, *, store_url: str | None = None) -> bytes:
    """The bytes of an artifact a status links by URI, `prefix` being where its store-relative path starts.

    Read through `store_url` (default GYRE_ARTIFACT_STORE) when given, so a pvc:// or in-cluster path becomes the
    same file seen from here; otherwise straight from the URI (s3://, gs://, file://).
    """
    relative = store_relative(uri, prefix)
    url = store_url or os.environ.get(ARTIFACT_STORE)
    try:
        return ArtifactStore(url or uri.removesuffix("/" + relative)).read_bytes(relative)
    except StoreError as exc:
        raise ReportUnavailable(str(exc)) from exc


def parse_ref(text: str) -> tuple[str, str] | None:
    """`NAMESPACE/NAME` -> (namespace, name); None when either part is missing."""
    namespace, sep, name = text.partition("/")
    return (namespace, name) if sep and namespace and name and "/" not in name else None


def read_object(kind: str, status_model: type[S], namespace: str, name: str) -> tuple[dict[str, Any], S]:
    """A Gyre object (current kube context) and its status, validated; ReportUnavailable when either is not."""
    from gyre.controllers import kube

    obj = kube.get(API_VERSION, kind, namespace, name)
    if obj is None:
        raise ReportUnavailable(f"{kind} {namespace}/{name} not found")
    try:
        return obj, status_model.model_validate(obj.get("status") or {})
    except ValidationError as exc:
        raise ReportUnavailable(f"{kind} {namespace}/{name} has an unreadable status: {exc}") from exc


def fetch_report_html(namespace: str, name: str, *, store_url: str | None = None) -> bytes:
    """The bytes of the monitor's latest HTML report (`read_linked`)."""
    _obj, status = read_object("DriftMonitor", DriftMonitorStatus, namespace, name)
    if not status.html_report_uri:
        raise ReportUnavailable(
            f"DriftMonitor {namespace}/{name} has no HTML report yet (status.htmlReportUri)"
        )
    return read_linked(status.html_report_uri, "drift/", store_url=store_url)


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
    add_store_argument(rep)
    rep.set_defaults(func=run_report)


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """`--store URL`: where `read_linked` reads from."""
    parser.add_argument(
        "--store",
        metavar="URL",
        help="read through this store URL (default GYRE_ARTIFACT_STORE, else the URI as is)",
    )


def fetch_or_explain(
    command: str, ref_text: str, expected: str, fetch: Callable[[str, str], bytes]
) -> bytes | None:
    """`fetch(namespace, name)` for a `NAMESPACE/NAME` argument; None after a one-line error on stderr (the
    argument is malformed, or there is nothing to fetch)."""
    ref = parse_ref(ref_text)
    if ref is None:
        print(f"gyre {command}: error: expected {expected}", file=sys.stderr)
        return None
    try:
        return fetch(*ref)
    except ReportUnavailable as exc:
        print(f"gyre {command}: error: {exc}", file=sys.stderr)
        return None


def write_output(data: bytes, output: str | None, what: str) -> None:
    """`data` into the file `output`, saying so on stderr, or onto stdout."""
    if output:
        Path(output).write_bytes(data)
        print(f"{what} written to {output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)


def run_report(args: argparse.Namespace) -> int:
    """Run `gyre drift report`: 0 when the page was written, 2 when there is none to fetch."""
    page = fetch_or_explain(
        "drift report",
        args.monitor,
        "NAMESPACE/MONITOR",
        lambda namespace, name: fetch_report_html(namespace, name, store_url=args.store),
    )
    if page is None:
        return 2
    write_output(page, args.output, f"report of {args.monitor}")
    return 0
