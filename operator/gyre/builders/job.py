"""Jobs of the Dataset profiler and the TrainingRun trainer (single run, or an Indexed Job for a search).

Pure functions: spec in, Job dict out. The controllers decide when to create them and read their results from the
pods' termination messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gyre.api.dataset import DatasetSpec
from gyre.api.env import (
    DATASET_COLUMNS,
    DATASET_SPEC,
    DATASET_VERSION,
    IMAGE,
    SOURCE_POLICY,
    SQL_PASSWORD,
    SQL_USER,
    TRAINING_SPEC,
    TRIGGER,
)
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.meta import Owner, child_name, short_hash

# build_artifact_pvc lives with the other pod parts; re-exported here, where the controllers import it.
from gyre.builders.pods import build_artifact_pvc, build_job, container_resources
from gyre.builders.settings import OperatorSettings
from gyre.builders.tracking import TrackingPlan, tracking_env

__all__ = [
    "ANNOTATION_GENERATION",
    "ANNOTATION_REVISION",
    "PROFILER",
    "TRAINER",
    "DatasetInput",
    "FeedbackRead",
    "build_artifact_pvc",
    "build_profile_job",
    "build_training_job",
    "profile_job_name",
    "training_job_name",
]

PROFILER = "profiler"
TRAINER = "trainer"
ANNOTATION_GENERATION = "gyre.dev/generation"
ANNOTATION_REVISION = "gyre.dev/revision"

_PROFILE_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
_TRAIN_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}


@dataclass(frozen=True)
class DatasetInput:
    """The Dataset version a TrainingRun trains on, as resolved by the controller."""

    name: str
    uri: str
    fingerprint: str
    version: int | None = None
    target: str | None = None
    """The target column: the run's spec.target, else the Dataset's."""
    columns: tuple[tuple[str, str], ...] = ()
    """(name, kind) of the Dataset's columns, so the trainer preprocesses by the Dataset's schema."""


@dataclass(frozen=True)
class FeedbackRead:
    """What a feedback source's Job reads besides the prediction log and labels, as the operator resolved it."""

    model_uri: str
    """The served model's directory: its manifest names the features, the target and the label type."""
    model_sha256: str | None = None
    """The served model's digest (sha256 of manifest.json): the Job refuses a manifest that differs."""
    merge_dataset: str | None = None
    """The Dataset whose version is appended to (spec.source.feedback.mergeWith)."""
    merge_fingerprint: str | None = None
    """That version's fingerprint: its content-addressed copy is read from the store."""


def profile_job_name(owner: Owner, spec: DatasetSpec, revision: str) -> str:
    """`<dataset>-profile-<hash>`: a new name whenever the spec or the revision (generation, refresh) changes."""
    digest = short_hash(spec.model_dump_json(by_alias=True, exclude_none=True), revision)
    return child_name(owner.name, f"profile-{digest}")


def build_profile_job(
    owner: Owner,
    spec: DatasetSpec,
    settings: OperatorSettings,
    *,
    revision: str,
    previous: tuple[str, str] | None = None,
    feedback: FeedbackRead | None = None,
) -> dict[str, Any]:
    """The Job that reads a Dataset's source, fingerprints it, stores a copy and its profile.

    `revision` distinguishes runs of one spec: `g<generation>` for a spec change, plus a refresh counter for
    periodic re-reads. `previous` (fingerprint, watermark) makes a sql source's read incremental. A sql source's
    credentials reach the pod only as secretKeyRefs. `feedback` is what a feedback source's read needs.
    """
    args = [
        "profile",
        "--store",
        settings.store_url(owner.namespace),
        "--namespace",
        owner.namespace,
        "--name",
        owner.name,
        "--source",
        spec.source.location,
        "--format",
        spec.source.format,
    ]
    if spec.target:
        args += ["--target", spec.target]
    if previous is not None:
        args += ["--previous-fingerprint", previous[0], "--after", previous[1]]
    if feedback is not None:
        args += ["--model-uri", feedback.model_uri]
        if feedback.model_sha256:
            args += ["--model-sha256", feedback.model_sha256]
        if feedback.merge_dataset and feedback.merge_fingerprint:
            args += [
                "--merge-dataset",
                feedback.merge_dataset,
                "--merge-fingerprint",
                feedback.merge_fingerprint,
            ]
    env: list[dict[str, Any]] = [
        {"name": DATASET_SPEC, "value": spec.model_dump_json(by_alias=True, exclude_none=True)},
        # The pod checks the source again, and every address and file it opens (gyre.data.guard).
        {"name": SOURCE_POLICY, "value": settings.source_policy.to_json()},
    ]
    sql = spec.source.sql
    if sql is not None:
        refs = [(SQL_USER, sql.user_secret_ref), (SQL_PASSWORD, sql.password_secret_ref)]
        env += [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
            for name, ref in refs
            if ref is not None
        ]
    annotations = {ANNOTATION_GENERATION: str(owner.generation), ANNOTATION_REVISION: revision}
    return build_job(
        owner=owner,
        name=profile_job_name(owner, spec, revision),
        component=PROFILER,
        image=spec.image or settings.image,
        args=args,
        env=env,
        resources=container_resources(spec.resources, _PROFILE_RESOURCES),
        settings=settings,
        active_deadline_seconds=spec.active_deadline_seconds,
        backoff_limit=1,
        annotations=annotations,
    )


def training_job_name(owner: Owner) -> str:
    """`<run>-train`: a TrainingRun's spec is immutable, so it has exactly one Job."""
    return child_name(owner.name, "train")


def build_training_job(
    owner: Owner,
    spec: TrainingRunSpec,
    settings: OperatorSettings,
    dataset: DatasetInput,
    *,
    trigger: str = "manual",
    tracking: TrackingPlan | None = None,
) -> dict[str, Any]:
    """The training Job; with spec.search, an Indexed Job whose completion index (JOB_COMPLETION_INDEX, read by
    the trainer) selects the trial.

    The whole validated spec travels as JSON in GYRE_TRAINING_SPEC, so the trainer sees exactly what the API
    server admitted; the dataset is pinned by its content-addressed URI and fingerprint. `trigger` is recorded in
    the model's lineage (manual, or drift:<namespace>/<monitor>).
    """
    args = [
        "train",
        "--store",
        settings.store_url(owner.namespace),
        "--run",
        f"{owner.namespace}/{owner.name}",
        "--dataset-uri",
        dataset.uri,
        "--dataset-fingerprint",
        dataset.fingerprint,
    ]
    if dataset.target:
        args += ["--target", dataset.target]
    image = spec.image or settings.image
    env = [
        {"name": TRAINING_SPEC, "value": spec.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": TRIGGER, "value": trigger},
        # The pod records its own image in the model's manifest (lineage) and MLflow tags.
        {"name": IMAGE, "value": image},
    ]
    if dataset.version is not None:
        env.append({"name": DATASET_VERSION, "value": str(dataset.version)})
    if dataset.columns:
        columns = [{"name": n, "kind": k} for n, k in dataset.columns]
        env.append({"name": DATASET_COLUMNS, "value": json.dumps(columns, separators=(",", ":"))})
    env += tracking_env(owner, tracking)
    annotations = {
        ANNOTATION_GENERATION: str(owner.generation),
        "gyre.dev/dataset-fingerprint": dataset.fingerprint,
    }
    extra: dict[str, Any] = {}
    backoff: int | None = spec.backoff_limit
    if spec.search is not None:
        trials = spec.search.trial_count()
        # Per-index retries keep one bad configuration from failing (and stopping) the whole search.
        extra = {
            "completionMode": "Indexed",
            "completions": trials,
            "parallelism": min(spec.search.parallelism, trials),
            "backoffLimitPerIndex": spec.backoff_limit,
            "maxFailedIndexes": trials - 1,
        }
        backoff = None
    job = build_job(
        owner=owner,
        name=training_job_name(owner),
        component=TRAINER,
        image=image,
        args=args,
        env=env,
        resources=container_resources(spec.resources, _TRAIN_RESOURCES),
        settings=settings,
        active_deadline_seconds=spec.active_deadline_seconds,
        backoff_limit=0 if backoff is None else backoff,
        annotations=annotations,
        extra_spec=extra,
    )
    if backoff is None:
        # backoffLimitPerIndex replaces the Job-wide limit (the API server defaults it to MaxInt32).
        del job["spec"]["backoffLimit"]
    return job
