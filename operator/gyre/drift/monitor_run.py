"""`gyre drift run`: one scheduled DriftMonitor check, inside a Job in the monitored namespace.

It reads the stored reference profile and a window of the prediction log, writes the full report to the store and
reports a compact summary through the termination message. Running checks as Jobs keeps the operator's event loop
and memory out of it, and lets a check read a pvc:// store that only pods in that namespace can mount.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gyre.api import env
from gyre.api.driftmonitor import MetricPerformance
from gyre.store.termination import TERMINATION_MESSAGE_LIMIT, write_termination_message

__all__ = [
    "CheckFeature",
    "CheckPerformance",
    "CheckReport",
    "check_html_path",
    "check_report_path",
    "performance_report_path",
    "run",
]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class CheckFeature(_Model):
    """One feature's outcome, in the compact form the controller copies into status."""

    name: str
    method: str | None = None
    score: float | None = None
    threshold: float | None = None
    effect: float | None = None
    drifted: bool
    status: str | None = None


class CheckPerformance(_Model):
    """The performance check's outcome, compact (at most six metrics: it always fits the message)."""

    verdict: str | None = None
    """degraded, ok or insufficient_data; None when the performance check failed (`error`)."""
    message: str | None = None
    model_version: str | None = None
    labelled_rows: int = 0
    prediction_rows: int = 0
    baseline_test_rows: int | None = None
    label_delay_seconds: float | None = None
    label_delay_p90_seconds: float | None = None
    unknown_ids: int = 0
    duplicate_labels: int = 0
    wrong_type_labels: int = 0
    metrics: list[MetricPerformance] = Field(default_factory=list)
    """Each metric as status.performance.metrics shows it."""
    report_uri: str | None = None
    error: str | None = None


class CheckReport(_Model):
    """What a check Job reports through its termination message (at most 4 KiB)."""

    check: int
    verdict: str | None = None
    """drift, no_drift or insufficient_data; None when the check failed."""
    drift_share: float | None = None
    current_rows: int = 0
    features: list[CheckFeature] = Field(default_factory=list)
    features_truncated: bool = False
    report_uri: str | None = None
    html_report_uri: str | None = None
    error: str | None = None
    performance: CheckPerformance | None = None
    """The performance check, when spec.performance asked for one."""

    def to_termination_message(self) -> str:
        """JSON within the termination-message limit: features are dropped from the end before anything else (the
        full report is in the store), then long messages are shortened."""
        report = self.model_copy(deep=True)
        while True:
            text = report.model_dump_json(by_alias=True, exclude_none=True)
            if len(text.encode()) <= TERMINATION_MESSAGE_LIMIT:
                return text
            if report.features:
                report.features = report.features[:-1]
                report.features_truncated = True
                continue
            perf = report.performance
            texts = [report.error, *((perf.message, perf.error) if perf is not None else ())]
            if not any(t is not None and len(t) > _SHORT for t in texts):
                return text[:TERMINATION_MESSAGE_LIMIT]
            report.error = _shorten(report.error)
            if perf is not None:
                perf.message, perf.error = _shorten(perf.message), _shorten(perf.error)


_SHORT = 200
"""Characters a message keeps when the termination message must shrink (the full text is in the stored report)."""


def _shorten(text: str | None) -> str | None:
    return text[:_SHORT] + "..." if text is not None and len(text) > _SHORT else text


def check_report_path(namespace: str, monitor: str, check: int) -> str:
    """`drift/{ns}/{monitor}/{check}.json` under the store root."""
    return f"drift/{namespace}/{monitor}/{check:08d}.json"


def check_html_path(namespace: str, monitor: str, check: int) -> str:
    """`drift/{ns}/{monitor}/{check}.html`: the report as a page, beside its JSON."""
    return check_report_path(namespace, monitor, check).removesuffix(".json") + ".html"


def performance_report_path(namespace: str, monitor: str, check: int) -> str:
    """`drift/{ns}/{monitor}/{check}.performance.json`: the performance report, beside the drift report."""
    return check_report_path(namespace, monitor, check).removesuffix(".json") + ".performance.json"


def _performance(args: argparse.Namespace, store: Any) -> CheckPerformance:
    """The performance check of this Job; a failure is reported in `error`, never raised (the drift verdict
    stands on its own)."""
    from gyre.performance.check import Baseline, PerformanceConfig, check_feedback
    from gyre.store.store import ArtifactStore
    from gyre.training.manifest import MANIFEST_FILE, ModelManifest

    try:
        ref = args.performance_baseline
        raw = (
            ArtifactStore(ref).read_bytes(MANIFEST_FILE)
            if "://" in ref
            else store.read_bytes(f"{ref.rstrip('/')}/{MANIFEST_FILE}")
        )
        manifest = ModelManifest.model_validate_json(raw)
        baseline = Baseline.from_manifest(manifest, source=args.model_version or args.performance_baseline)
        config = PerformanceConfig.model_validate(json.loads(os.environ.get(env.PERFORMANCE_CONFIG) or "{}"))
        report, _ = check_feedback(
            store,
            args.namespace,
            args.deployment,
            baseline,
            config=config,
            max_age=args.performance_max_age_seconds,
            max_rows=args.performance_max_rows,
            model_version=args.model_version,
        )
        path = performance_report_path(args.namespace, args.monitor, args.check)
        store.write_bytes(path, report.to_json().encode())
    except Exception as exc:  # shown in status.performance.message and an Event; the drift check still counts
        return CheckPerformance(model_version=args.model_version, error=f"{type(exc).__name__}: {exc}")
    join = report.join
    return CheckPerformance(
        verdict=report.verdict,
        message=report.message,
        model_version=args.model_version,
        labelled_rows=report.labelled_rows,
        prediction_rows=join["predictionRows"],
        baseline_test_rows=report.baseline_test_rows,
        label_delay_seconds=join["labelDelayP50Seconds"],
        label_delay_p90_seconds=join["labelDelayP90Seconds"],
        unknown_ids=join["unknownIds"],
        duplicate_labels=join["duplicateLabels"],
        wrong_type_labels=join["wrongTypeLabels"],
        metrics=[MetricPerformance.model_validate(m) for m in report.metrics],
        report_uri=store.uri(path),
    )


def run(args: argparse.Namespace) -> int:
    """Run one check; the exit code is 0 whenever a report (whatever its verdict) was produced."""
    from gyre.drift.check import DriftConfig
    from gyre.drift.html import render_html
    from gyre.drift.profile import ReferenceProfile
    from gyre.drift.window import check_window
    from gyre.store.store import ArtifactStore

    try:
        store = ArtifactStore(args.store)
        profile = ReferenceProfile.from_json(store.read_bytes(args.profile))
        config = DriftConfig.model_validate(json.loads(os.environ.get(env.DRIFT_CONFIG) or "{}"))
        report = check_window(
            profile,
            store,
            args.namespace,
            args.deployment,
            max_rows=args.max_rows,
            max_age=args.max_age_seconds,
            config=config,
        )
        path = check_report_path(args.namespace, args.monitor, args.check)
        store.write_bytes(path, report.to_json().encode())
        html_path = check_html_path(args.namespace, args.monitor, args.check)
        title = f"Drift: {args.namespace}/{args.monitor}, check {args.check}"
        store.write_bytes(html_path, render_html(report, title=title).encode())
    except Exception as exc:  # the controller shows this message in a condition and an Event
        failed = CheckReport(check=args.check, error=f"{type(exc).__name__}: {exc}")
        write_termination_message(failed.to_termination_message())
        return 1
    summary = CheckReport(
        check=args.check,
        verdict=report.verdict,
        drift_share=round(report.drift_share, 4),
        current_rows=report.current_rows,
        features=[
            CheckFeature(
                name=c.column,
                method=c.method,
                score=None if c.score is None else round(c.score, 6),
                threshold=c.threshold,
                effect=None if c.effect is None else round(c.effect, 6),
                drifted=c.drifted,
                status=c.status,
            )
            for c in report.columns
        ],
        report_uri=store.uri(path),
        html_report_uri=store.uri(html_path),
        performance=_performance(args, store) if args.performance_baseline else None,
    )
    write_termination_message(summary.to_termination_message())
    return 0
