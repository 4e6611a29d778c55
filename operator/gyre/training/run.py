"""The training job: spec + dataset in, model directory + report out. Shared by the pod and `--local` mode."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from gyre.api.dataset import ColumnKind
from gyre.api.gates import GatesVerdict, combine_verdicts, evaluate_slice_gates
from gyre.api.trainingrun import Preprocessing, SplitSpec, TrainingRunSpec, primary_metric
from gyre.data.errors import DataError
from gyre.data.fingerprint import fingerprint_frame
from gyre.data.sources import SourceFormat, load_source
from gyre.governance.card import CardInputs, parse_trigger, trigger_report_path, write_card
from gyre.governance.evaluation import evaluate, summarise_data
from gyre.store import ArtifactStore, StoreError, model_dir, trial_dir
from gyre.tracking.mlflow import TrackingTarget, log_training
from gyre.tracking.records import ARTIFACT_FILES, build_record
from gyre.training.artifact import UntrustedModelError, write_manifest, write_model_files
from gyre.training.forked import Forked
from gyre.training.gates import evaluate_gates
from gyre.training.importance import summary
from gyre.training.manifest import MANIFEST_FILE, DatasetRef, DataSummary, Evaluation, Lineage, ModelManifest
from gyre.training.report import GateOutcome, TrackingOutcome, TrainReport
from gyre.training.search import SearchError, trial_params
from gyre.training.trainer import TRAINER_ERRORS, TrainOptions, train_model

__all__ = ["REPORT_FILE", "TrainJob", "run_training"]

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
"""The full (untruncated) TrainReport, written beside the manifest."""

_CARD_FIGURES = TypeAdapter(tuple[Evaluation, DataSummary])


@dataclass(frozen=True)
class TrainJob:
    """One training (or one search trial) to run."""

    spec: TrainingRunSpec
    dataset_uri: str
    namespace: str
    name: str
    target: str | None = None
    """Overrides spec.target (the controller resolves the Dataset's default target)."""
    dataset_fingerprint: str | None = None
    """When set, the loaded data must have exactly this fingerprint."""
    dataset_format: SourceFormat = "auto"
    dataset_version: int | None = None
    trial_index: int | None = None
    store_url: str | None = None
    """Write to models/{ns}/{name}[/trials/{i}] under this store..."""
    out_dir: str | None = None
    """...or directly into this local directory (local mode)."""
    kinds: Mapping[str, ColumnKind] = field(default_factory=dict)
    trigger: str = "manual"
    image: str | None = None
    onnx: bool = True
    tracking: TrackingTarget | None = None
    """Log the run to this MLflow server (gyre.tracking); its failure never fails the run."""
    parallel: bool = True
    """Compute the card's figures in a forked child while the model files are written (gyre.training.forked)."""


def _failed(job: TrainJob, reason: str, error: str) -> TrainReport:
    return TrainReport(
        phase="Failed",
        reason=reason,
        error=error,
        trial_index=job.trial_index,
        estimator=job.spec.estimator.kind,
        dataset_fingerprint=job.dataset_fingerprint,
    )


def run_training(job: TrainJob) -> TrainReport:
    """Load, verify the fingerprint, train, write the model directory, evaluate gates, log the run to MLflow when
    a tracking server is set; never raises."""
    report = _train(job)
    if job.tracking is not None:
        report.tracking = _track(job, job.tracking, report)
    return report


def _train(job: TrainJob) -> TrainReport:
    try:
        return _run(job)
    except DataError as exc:
        return _failed(job, exc.reason, str(exc))
    except SearchError as exc:
        return _failed(job, "InvalidSearch", str(exc))
    except TRAINER_ERRORS as exc:
        return _failed(job, getattr(exc, "reason", "TrainingFailed"), str(exc))
    except UntrustedModelError as exc:
        return _failed(job, "UntrustedModel", str(exc))
    except StoreError as exc:
        return _failed(job, exc.reason, str(exc))
    except Exception as exc:
        log.exception("training failed")
        return _failed(job, "TrainingFailed", f"{type(exc).__name__}: {exc}")


def _model_rel(job: TrainJob) -> str:
    """The model directory under the store root: the run's, or its trial's for a search."""
    if job.spec.search is not None and job.trial_index is not None:
        return trial_dir(job.namespace, job.name, job.trial_index)
    return model_dir(job.namespace, job.name)


def _model_files(job: TrainJob, report: TrainReport) -> dict[str, bytes]:
    """The model directory's files that tracking logs (those present)."""
    if report.model_uri is None:
        return {}
    found: dict[str, bytes] = {}
    if job.out_dir is not None:
        for name in ARTIFACT_FILES:
            path = os.path.join(job.out_dir, name)
            if os.path.isfile(path):
                with open(path, "rb") as fh:
                    found[name] = fh.read()
        return found
    store = ArtifactStore(job.store_url or "")
    rel = _model_rel(job)
    for name in ARTIFACT_FILES:
        if store.exists(f"{rel}/{name}"):
            found[name] = store.read_bytes(f"{rel}/{name}")
    return found


def _track(job: TrainJob, target: TrackingTarget, report: TrainReport) -> TrackingOutcome:
    """Log the run to MLflow; any failure (reading the model files included) becomes the outcome, never raised."""
    try:
        files = _model_files(job, report)
        manifest = ModelManifest.model_validate_json(files[MANIFEST_FILE]) if MANIFEST_FILE in files else None
        record = build_record(
            job.spec,
            report,
            namespace=job.namespace,
            name=job.name,
            uid=target.run_uid,
            trial=job.trial_index,
            trigger=job.trigger,
            target=job.target or job.spec.target,
            dataset_uri=job.dataset_uri,
            dataset_version=job.dataset_version,
            image=job.image or target.image,
            manifest=manifest,
            files=files,
        )
    except Exception as exc:
        log.exception("tracking could not read the run")
        return TrackingOutcome(logged=False, message=f"{type(exc).__name__}: {exc}"[:1000])
    return log_training(target, record)


def _write_card(
    directory: str, spec: TrainingRunSpec, store: ArtifactStore | None, verdict: GatesVerdict
) -> None:
    """card.md and card.html beside the manifest, linking the check report behind a retrain when the store has it."""
    with open(os.path.join(directory, MANIFEST_FILE), "rb") as fh:
        manifest_bytes = fh.read()
    report_uri = None
    if store is not None:
        trigger = parse_trigger(json.loads(manifest_bytes).get("lineage", {}).get("trigger"))
        path = trigger_report_path(trigger)
        if path is not None and store.exists(path):
            report_uri = store.uri(path)
    write_card(
        directory,
        CardInputs.from_manifest_json(
            manifest_bytes, spec=spec, trigger_report_uri=report_uri, gates_verdict=verdict
        ),
    )


def _run(job: TrainJob) -> TrainReport:
    spec = job.spec
    split = spec.split or SplitSpec()
    prep = spec.preprocessing or Preprocessing()
    params = dict(spec.estimator.params or {})
    if spec.search is not None:
        if job.trial_index is None:
            raise SearchError(
                "spec.search is set but no trial index was given (--trial-index or JOB_COMPLETION_INDEX)"
            )
        params = trial_params(spec.search, job.trial_index, seed=split.seed, base=params)
    target = job.target or spec.target
    if not target:
        raise DataError("no target column: set spec.target or the Dataset's target", reason="TargetMissing")

    frame = load_source(job.dataset_uri, job.dataset_format)
    fingerprint = fingerprint_frame(frame)
    if job.dataset_fingerprint and fingerprint != job.dataset_fingerprint:
        raise DataError(
            f"the data at {job.dataset_uri} has fingerprint {fingerprint}, expected {job.dataset_fingerprint}",
            reason="DatasetMismatch",
        )
    options = TrainOptions(
        target=target,
        estimator=spec.estimator.kind,
        params=params,
        features=spec.features.input_columns() if spec.features else None,
        kinds=job.kinds,
        numeric=prep.numeric,
        categorical=prep.categorical,
        impute=prep.impute,
        max_categories=prep.max_categories,
        min_frequency=prep.min_frequency,
        transforms=tuple((spec.features.transforms or []) if spec.features else ()),
        test_size=split.test_size,
        stratify=split.stratify,
        seed=split.seed,
        metrics=spec.metrics,
        early_stopping=spec.estimator.early_stopping,
        slices=spec.slices,
        primary_metric=primary_metric(spec)[0],
    )
    result = train_model(frame, options)
    verdict = evaluate_gates(spec.gates, result.metrics)
    if spec.slices is not None and result.slices is not None:
        verdict = combine_verdicts(verdict, evaluate_slice_gates(spec.slices, result.slices.status()))
    dataset = DatasetRef(
        uri=job.dataset_uri, fingerprint=fingerprint, version=job.dataset_version, name=spec.dataset_ref.name
    )
    lineage = Lineage(
        training_run=f"{job.namespace}/{job.name}",
        trial=job.trial_index if spec.search is not None else None,
        trigger=job.trigger,
    )

    def card_figures() -> bytes:
        figures = (evaluate(result), summarise_data(frame, result.features, target, result.task, job.kinds))
        return _CARD_FIGURES.dump_json(figures, by_alias=True)

    def write(directory: str, store: ArtifactStore | None = None) -> Any:
        # The figures need only numpy and the test predictions: a child computes them while this process writes
        # the model files (skops, the ONNX conversion and its check), each single-threaded.
        # Without the predictions the child would call the model, whose OpenMP pool does not survive a fork.
        fork = job.parallel and result.test_predictions is not None
        with Forked(card_figures, fork=fork) as figures:
            files = write_model_files(directory, result, onnx=job.onnx)
            evaluation, data_summary = _CARD_FIGURES.validate_json(figures.result())
        manifest = write_manifest(
            directory,
            result,
            files,
            name=job.name,
            dataset=dataset,
            lineage=lineage,
            image=job.image,
            evaluation=evaluation,
            data_summary=data_summary,
        )
        _write_card(directory, spec, store, verdict)
        return manifest

    report_kwargs: dict[str, Any] = {}
    if job.out_dir is not None:
        manifest = write(job.out_dir)
        model_uri = "file://" + os.path.abspath(job.out_dir)
    else:
        if job.store_url is None:
            raise StoreError("neither a store nor an output directory was given")
        store = ArtifactStore(job.store_url)
        rel = _model_rel(job)
        with tempfile.TemporaryDirectory(prefix="gyre-model-") as tmp:
            manifest = write(tmp, store)
            model_uri = store.put_dir(tmp, rel, last=("manifest.json",))
        report_kwargs["store"] = (store, rel)
    report = TrainReport(
        phase="Succeeded",
        task=result.task,
        estimator=result.estimator,
        trial_index=job.trial_index,
        metrics=result.metrics,
        params=params,
        model_uri=model_uri,
        model_sha256=manifest.sha256(),
        onnx=manifest.onnx.status,
        onnx_reason=manifest.onnx.reason or None,
        dataset_fingerprint=fingerprint,
        gates=GateOutcome(passed=verdict.passed, message=verdict.message),
        slices=result.slices.status() if result.slices is not None else None,
        card=True,
        importances=summary(result.importances) if result.importances is not None else None,
    )
    full = report.model_dump_json(by_alias=True, exclude_none=True, indent=1).encode()
    if job.out_dir is not None:
        with open(os.path.join(job.out_dir, REPORT_FILE), "wb") as fh:
            fh.write(full)
    else:
        store, rel = report_kwargs["store"]
        store.write_bytes(f"{rel}/{REPORT_FILE}", full)
    return report
