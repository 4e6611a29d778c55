"""`gyre card NAMESPACE/RUN` and `gyre runs compare NAMESPACE/RUN...`: a TrainingRun's status read from the
cluster (current kube context), its model card and manifest from the artifact store (as `gyre drift report`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.controllers.drift_report import (
    ReportUnavailable,
    add_store_argument,
    fetch_or_explain,
    parse_ref,
    read_linked,
    read_object,
    write_output,
)
from gyre.governance.compare import RunFacts, compare, format_json, format_table
from gyre.store.layout import model_dir
from gyre.training.manifest import MANIFEST_FILE

__all__ = ["fetch_card", "read_run", "register", "run_card", "run_compare"]


def read_run(namespace: str, name: str) -> tuple[TrainingRunSpec | None, TrainingRunStatus]:
    """The TrainingRun's spec (None when it no longer validates) and status; ReportUnavailable when absent."""
    obj, status = read_object("TrainingRun", TrainingRunStatus, namespace, name)
    try:
        spec: TrainingRunSpec | None = TrainingRunSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        spec = None
    return spec, status


def fetch_card(namespace: str, name: str, *, html: bool = False, store_url: str | None = None) -> bytes:
    """The run's model card (Markdown, or the HTML page), from the URI its status links."""
    _spec, status = read_run(namespace, name)
    card = status.card
    uri = (card.html_uri if html else card.markdown_uri) if card else None
    if not uri:
        phase = status.phase or "Pending"
        raise ReportUnavailable(
            f"TrainingRun {namespace}/{name} links no model card (status.card; it is {phase})"
        )
    return read_linked(uri, model_dir(namespace, name) + "/", store_url=store_url)


def _facts(ref: str, namespace: str, name: str, store_url: str | None) -> RunFacts:
    spec, status = read_run(namespace, name)
    estimator = spec.estimator.kind if spec else None
    if not status.model_uri:
        return RunFacts(ref, status, estimator, note="no model yet (status.modelUri)")
    uri = status.model_uri.rstrip("/") + "/" + MANIFEST_FILE
    try:
        manifest = json.loads(read_linked(uri, model_dir(namespace, name) + "/", store_url=store_url))
    except (ReportUnavailable, ValueError) as exc:
        return RunFacts(ref, status, estimator, note=f"manifest not read: {exc}")
    return RunFacts(ref, status, estimator, manifest=manifest)


def register(subparsers: Any) -> None:
    """Add `gyre card` and `gyre runs compare`."""
    card = subparsers.add_parser(
        "card",
        help="print (or write, or open) the model card of a TrainingRun",
        description="Read NAMESPACE/RUN's status (current kube context) and fetch the model card it links from "
        "the artifact store: Markdown on stdout, or the self-contained HTML page with --html.",
    )
    card.add_argument("run", metavar="NAMESPACE/RUN")
    card.add_argument("--html", action="store_true", help="the HTML page instead of Markdown")
    card.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    card.add_argument("--open", action="store_true", help="open the HTML card in a browser (implies --html)")
    card.add_argument(
        "--store",
        metavar="URL",
        help="read through this store URL (default GYRE_ARTIFACT_STORE, else the URI)",
    )
    card.set_defaults(func=run_card)

    runs = subparsers.add_parser("runs", help="TrainingRun tools")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    cmp = runs_sub.add_parser(
        "compare",
        help="show TrainingRuns side by side",
        description="Params, metrics (with their confidence intervals), data version and fingerprint, trigger "
        "and estimator of each run, from its status and its model's manifest.json; rows that differ are marked.",
    )
    cmp.add_argument("runs", nargs="+", metavar="NAMESPACE/RUN")
    cmp.add_argument("--format", choices=("table", "json"), default="table")
    add_store_argument(cmp)
    cmp.set_defaults(func=run_compare)


def run_card(args: argparse.Namespace) -> int:
    """Run `gyre card`: 0 when the card was printed or written, 2 when there is none to fetch."""
    html = args.html or args.open
    data = fetch_or_explain(
        "card",
        args.run,
        "NAMESPACE/RUN",
        lambda namespace, name: fetch_card(namespace, name, html=html, store_url=args.store),
    )
    if data is None:
        return 2
    output = args.output
    if args.open and not output:
        output = str(Path(tempfile.mkdtemp(prefix="gyre-card-")) / "card.html")
    write_output(data, output, f"model card of {args.run}")
    if args.open:
        import webbrowser

        webbrowser.open(Path(output).resolve().as_uri())
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Run `gyre runs compare`: 0 when every run was read, 2 when one cannot be."""
    refs = [(ref, parse_ref(ref)) for ref in args.runs]
    bad = [ref for ref, parsed in refs if parsed is None]
    if bad:
        print(f"gyre runs compare: error: expected NAMESPACE/RUN, got {', '.join(bad)}", file=sys.stderr)
        return 2
    try:
        facts = [_facts(ref, *parsed, args.store) for ref, parsed in refs if parsed is not None]
    except ReportUnavailable as exc:
        print(f"gyre runs compare: error: {exc}", file=sys.stderr)
        return 2
    rows = compare(facts)
    if args.format == "json":
        sys.stdout.write(format_json(facts, rows))
    else:
        sys.stdout.write(format_table(facts, rows, color=sys.stdout.isatty()))
    return 0
