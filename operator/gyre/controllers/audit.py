"""`gyre history NAMESPACE/DEPLOYMENT`: what a ModelDeployment served, from when to when, and why.

Built from three sources, each optional but the first: the deployment's status.history (kept by the operator, the
last 20 models per track), its TrainingRuns (lineage trigger and Validated condition, for entries written before a
field existed), the runs' manifest.json in the artifact store (when a store URL is given: the trigger recorded with
the model, and whether the store still holds the digest that was served), and the Events the API server still keeps
(approvals and rollouts; they expire, an hour by default). The assembling and formatting are pure functions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from gyre.api.common import API_VERSION, find_condition
from gyre.api.env import ARTIFACT_STORE
from gyre.api.modeldeployment import HistoryEntry, ModelDeploymentStatus
from gyre.api.reasons import ConditionType
from gyre.api.trainingrun import TrainingRunStatus
from gyre.reconcile.approval import bare_digest

__all__ = [
    "HistoryRow",
    "HistoryUnavailable",
    "ManifestFacts",
    "RunFacts",
    "TimelineEvent",
    "format_history",
    "history_rows",
    "manifest_facts",
    "register",
    "run_facts",
    "run_history",
    "timeline_events",
]


class HistoryUnavailable(Exception):
    """No such ModelDeployment, or its status cannot be read."""


@dataclass(frozen=True)
class RunFacts:
    """What a TrainingRun says about its model now."""

    sha256: str | None
    trigger: str | None
    gates: str | None


@dataclass(frozen=True)
class ManifestFacts:
    """What the model directory in the store holds now."""

    sha256: str
    """sha256 of the manifest.json bytes read."""
    trigger: str | None


@dataclass(frozen=True)
class HistoryRow:
    """One served model, completed from the runs and manifests where the status entry lacks a field."""

    served_from: str
    served_until: str | None
    track: str
    training_run: str | None
    uri: str | None
    sha256: str | None
    source: str
    trigger: str | None
    gates: str | None
    approved_by: str | None
    approved_at: str | None
    note: str | None
    """Where the run or the store no longer holds the digest that was served."""


@dataclass(frozen=True)
class TimelineEvent:
    """An Event about the deployment."""

    time: str
    type: str
    reason: str
    message: str


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def run_facts(status: TrainingRunStatus) -> RunFacts:
    """A TrainingRun's digest, lineage trigger and gates outcome."""
    validated = find_condition(status.conditions or [], ConditionType.VALIDATED)
    return RunFacts(
        sha256=status.model_sha256,
        trigger=status.lineage.trigger if status.lineage else None,
        gates=f"{validated.reason}: {validated.message}".rstrip(": ") if validated else None,
    )


def manifest_facts(raw: bytes) -> ManifestFacts:
    """The digest of manifest.json's bytes (the model's digest) and the trigger it records."""
    try:
        lineage = json.loads(raw).get("lineage") or {}
    except (ValueError, AttributeError):
        lineage = {}
    trigger = lineage.get("trigger") if isinstance(lineage, dict) else None
    return ManifestFacts(sha256=hashlib.sha256(raw).hexdigest(), trigger=str(trigger) if trigger else None)


def _row(entry: HistoryEntry, run: RunFacts | None, manifest: ManifestFacts | None) -> HistoryRow:
    served = bare_digest(entry.sha256)
    same_run = run is not None and bool(served) and bare_digest(run.sha256) == served
    same_manifest = manifest is not None and bool(served) and manifest.sha256 == served
    notes: list[str] = []
    if entry.training_run and run is None:
        notes.append(f"TrainingRun {entry.training_run} no longer exists")
    elif run is not None and not same_run:
        notes.append(
            f"TrainingRun {entry.training_run} now has another model (sha256 {bare_digest(run.sha256)[:12]})"
        )
    if manifest is not None and not same_manifest:
        notes.append(f"the store now holds another manifest (sha256 {manifest.sha256[:12]})")
    elif same_manifest:
        notes.append("manifest in the store matches")
    trigger = entry.trigger or (run.trigger if same_run and run else None)
    trigger = trigger or (manifest.trigger if same_manifest and manifest else None)
    return HistoryRow(
        served_from=_time(entry.served_from) or "",
        served_until=_time(entry.served_until),
        track=entry.track,
        training_run=entry.training_run,
        uri=entry.uri,
        sha256=entry.sha256,
        source=entry.source,
        trigger=trigger,
        gates=entry.gates or (run.gates if same_run and run else None),
        approved_by=entry.approved_by,
        approved_at=_time(entry.approved_at),
        note="; ".join(notes) or None,
    )


def history_rows(
    status: ModelDeploymentStatus,
    runs: Mapping[str, RunFacts],
    manifests: Mapping[str, ManifestFacts] | None = None,
) -> list[HistoryRow]:
    """status.history newest first, completed from the runs (by name) and manifests (by run name) given."""
    manifests = manifests or {}
    entries = sorted(status.history or [], key=lambda e: e.served_from, reverse=True)
    return [_row(e, runs.get(e.training_run or ""), manifests.get(e.training_run or "")) for e in entries]


def timeline_events(items: Sequence[Mapping[str, Any]]) -> list[TimelineEvent]:
    """Events (core/v1 dicts, client-library or API field names) oldest first."""
    out: list[TimelineEvent] = []
    for item in items:
        when = (
            item.get("lastTimestamp")
            or item.get("last_timestamp")
            or item.get("eventTime")
            or item.get("event_time")
            or (item.get("metadata") or {}).get("creationTimestamp")
            or (item.get("metadata") or {}).get("creation_timestamp")
        )
        stamp = (_time(when) or "") if isinstance(when, datetime) else str(when or "")
        out.append(
            TimelineEvent(
                stamp,
                str(item.get("type") or ""),
                str(item.get("reason") or ""),
                str(item.get("message") or ""),
            )
        )
    return sorted(out, key=lambda e: e.time)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]
    ]


def format_history(name: str, rows: Sequence[HistoryRow], events: Sequence[TimelineEvent]) -> str:
    """The printed report: one line per served model, newest first, then the Events."""
    lines = [f"ModelDeployment {name}: {len(rows)} model(s) served (status.history, newest first)", ""]
    if rows:
        table = [
            [
                r.served_from,
                r.served_until or "serving",
                r.track,
                r.training_run or r.uri or "-",
                bare_digest(r.sha256)[:12] or "-",
                r.source,
                r.trigger or "-",
                r.gates or "-",
                f"{r.approved_by} at {r.approved_at}"
                if r.approved_by and r.approved_at
                else r.approved_by or "-",
            ]
            for r in rows
        ]
        headers = ["FROM", "UNTIL", "TRACK", "MODEL", "SHA256", "SOURCE", "TRIGGER", "GATES", "APPROVED BY"]
        lines += _table(headers, table)
        notes = [f"  {r.served_from} {r.training_run or r.uri}: {r.note}" for r in rows if r.note]
        if notes:
            lines += ["", "Notes:", *notes]
    else:
        lines.append("nothing served yet")
    lines += ["", "Events (the API server keeps them for a limited time, an hour by default):"]
    lines += [f"  {e.time}  {e.type:<7}  {e.reason:<17}  {e.message}" for e in events] or ["  none kept"]
    return "\n".join(lines) + "\n"


def _read_manifests(store_url: str, namespace: str, runs: Sequence[str]) -> dict[str, ManifestFacts]:
    from gyre.store.layout import model_dir
    from gyre.store.store import ArtifactStore, StoreError
    from gyre.training.manifest import MANIFEST_FILE

    store = ArtifactStore(store_url)
    out: dict[str, ManifestFacts] = {}
    for run in runs:
        try:
            out[run] = manifest_facts(store.read_bytes(f"{model_dir(namespace, run)}/{MANIFEST_FILE}"))
        except StoreError:
            continue
    return out


def collect(namespace: str, name: str, store_url: str | None) -> tuple[list[HistoryRow], list[TimelineEvent]]:
    """Read the deployment, its runs, their manifests (with a store URL) and its Events from the cluster."""
    from gyre.controllers import kube

    obj = kube.get(API_VERSION, "ModelDeployment", namespace, name)
    if obj is None:
        raise HistoryUnavailable(f"ModelDeployment {namespace}/{name} not found")
    try:
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError as exc:
        raise HistoryUnavailable(
            f"ModelDeployment {namespace}/{name} has an unreadable status: {exc}"
        ) from exc
    names = sorted({e.training_run for e in status.history or [] if e.training_run})
    runs: dict[str, RunFacts] = {}
    for run in names:
        body = kube.get(API_VERSION, "TrainingRun", namespace, run)
        if body is None:
            continue
        try:
            runs[run] = run_facts(TrainingRunStatus.model_validate(body.get("status") or {}))
        except ValidationError:
            continue
    manifests = _read_manifests(store_url, namespace, names) if store_url else {}
    events = timeline_events(kube.list_events(namespace, "ModelDeployment", name))
    return history_rows(status, runs, manifests), events


def register(subparsers: Any) -> None:
    """Add the `history` subcommand."""
    cmd: argparse.ArgumentParser = subparsers.add_parser(
        "history",
        help="what a ModelDeployment served, when and why",
        description="Print NAMESPACE/DEPLOYMENT's served models (status.history, newest first) with each model's "
        "run, digest, trigger, gates and approver, completed from its TrainingRuns and, with a store URL, their "
        "manifest.json; then the Events the API server still keeps. Uses the current kube context.",
    )
    cmd.add_argument("deployment", metavar="NAMESPACE/DEPLOYMENT")
    cmd.add_argument(
        "--output", "-o", choices=["table", "json"], default="table", help="table (default) or json"
    )
    cmd.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="read the runs' manifest.json through this store URL (default GYRE_ARTIFACT_STORE; none: skip)",
    )
    cmd.set_defaults(func=run_history)


def run_history(args: argparse.Namespace) -> int:
    """Run `gyre history`: 0 when printed, 2 when there is no such deployment."""
    from gyre.controllers.drift_report import parse_ref

    ref = parse_ref(args.deployment)
    if ref is None:
        print("gyre history: error: expected NAMESPACE/DEPLOYMENT", file=sys.stderr)
        return 2
    namespace, name = ref
    try:
        rows, events = collect(namespace, name, args.store or os.environ.get(ARTIFACT_STORE))
    except HistoryUnavailable as exc:
        print(f"gyre history: error: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        doc = {"history": [asdict(r) for r in rows], "events": [asdict(e) for e in events]}
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(format_history(f"{namespace}/{name}", rows, events))
    return 0
