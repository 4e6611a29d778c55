"""`gyre runs compare`: TrainingRuns side by side, for people without an experiment tracker.

Pure: each run arrives as `RunFacts` (its status, its spec's estimator, and its manifest.json when the store had
it); `compare` lines them up field by field and marks the fields whose values differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gyre.api.common import find_condition
from gyre.api.reasons import ConditionType
from gyre.api.trainingrun import TrainingRunStatus
from gyre.html_page import fmt_number

__all__ = ["CompareRow", "RunFacts", "compare", "format_json", "format_table"]


@dataclass(frozen=True)
class RunFacts:
    """What is known about one run."""

    ref: str
    """namespace/name"""
    status: TrainingRunStatus
    estimator: str | None = None
    """spec.estimator.kind"""
    manifest: Mapping[str, Any] | None = None
    """manifest.json of the (best) model, as a document (camelCase keys)."""
    note: str | None = None
    """Why the manifest is missing, when it is."""


@dataclass(frozen=True)
class CompareRow:
    field: str
    values: list[str]
    differs: bool


def _metric(facts: RunFacts, name: str) -> str:
    value = (facts.status.metrics or {}).get(name)
    if value is None:
        return "-"
    interval = ((facts.manifest or {}).get("evaluation") or {}).get("intervals", {}).get(name)
    if interval:
        return f"{fmt_number(value)} [{fmt_number(interval['low'])}, {fmt_number(interval['high'])}]"
    return fmt_number(value)


def _validated(status: TrainingRunStatus) -> str:
    condition = find_condition(status.conditions or [], ConditionType.VALIDATED)
    return "-" if condition is None else f"{condition.status} ({condition.reason})"


def _param(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def compare(runs: Sequence[RunFacts]) -> list[CompareRow]:
    """One row per field: identity, data, training, trigger, then every parameter and metric any run has."""
    manifests = [r.manifest or {} for r in runs]

    def row(field: str, values: list[str]) -> CompareRow:
        return CompareRow(field, values, len(set(values)) > 1)

    lineages = [r.status.lineage for r in runs]
    rows = [
        row("phase", [r.status.phase or "-" for r in runs]),
        row(
            "estimator",
            [r.estimator or m.get("estimator") or "-" for r, m in zip(runs, manifests, strict=True)],
        ),
        row("task", [r.status.task or "-" for r in runs]),
        row("dataset", [(lin.dataset if lin else None) or "-" for lin in lineages]),
        row(
            "dataset version",
            [str(r.status.dataset_version) if r.status.dataset_version is not None else "-" for r in runs],
        ),
        row("dataset fingerprint", [r.status.dataset_fingerprint or "-" for r in runs]),
        row("trigger", [(lin.trigger if lin else None) or "-" for lin in lineages]),
        row("image", [(lin.image if lin else None) or "-" for lin in lineages]),
        row("seed", [str(m["seed"]) if "seed" in m else "-" for m in manifests]),
        row("validated", [_validated(r.status) for r in runs]),
        row("model digest", [r.status.model_sha256 or "-" for r in runs]),
    ]
    params = list(dict.fromkeys(k for r in runs for k in sorted(r.status.params or {})))
    for name in params:
        rows.append(
            row(
                f"param {name}",
                [
                    _param((r.status.params or {})[name]) if name in (r.status.params or {}) else "-"
                    for r in runs
                ],
            )
        )
    metrics = list(dict.fromkeys(k for r in runs for k in (r.status.metrics or {})))
    for name in metrics:
        rows.append(row(f"metric {name}", [_metric(r, name) for r in runs]))
    return rows


def format_table(runs: Sequence[RunFacts], rows: Sequence[CompareRow], *, color: bool = False) -> str:
    """Fixed-width columns, one per run; a `*` (bold yellow with `color`) marks each row whose values differ."""
    header = ["", "field", *(r.ref for r in runs)]
    body = [["*" if row.differs else "", row.field, *row.values] for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for i, line in enumerate([header, *body]):
        text = "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        if color and i > 0 and rows[i - 1].differs:
            text = f"\x1b[1;33m{text}\x1b[0m"
        lines.append(text)
    notes = [f"{r.ref}: {r.note}" for r in runs if r.note]
    return "\n".join([*lines, *(["", *notes] if notes else []), "", "* the runs differ"]) + "\n"


def format_json(runs: Sequence[RunFacts], rows: Sequence[CompareRow]) -> str:
    """{"runs": [ref...], "rows": [{"field", "values", "differs"}...], "notes": {ref: note}}"""
    doc = {
        "runs": [r.ref for r in runs],
        "rows": [{"field": row.field, "values": row.values, "differs": row.differs} for row in rows],
        "notes": {r.ref: r.note for r in runs if r.note},
    }
    return json.dumps(doc, indent=2) + "\n"
