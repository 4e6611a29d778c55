"""Jobs of the Dataset profiler and the TrainingRun trainer (single run, or an Indexed Job for a search).

Pure functions: spec in, Job dict out. The controllers decide when to create them and read their results from the
pods' termination messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gyre.api.common import ResourceRequirements
from gyre.api.dataset import DatasetSpec
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.meta import Owner, child_name, labels_for, owner_reference, short_hash
from gyre.builders.settings import PVC_MOUNT_PATH, OperatorSettings

__all__ = [
    "ANNOTATION_GENERATION",
    "ANNOTATION_REVISION",
    "ARTIFACTS_VOLUME",
    "DATASET_COLUMNS_ENV",
    "DATASET_SPEC_ENV",
    "DATASET_VERSION_ENV",
    "PROFILER",
    "TRAINER",
    "TRAINING_SPEC_ENV",
    "TRIGGER_ENV",
    "DatasetInput",
    "StorePodParts",
    "build_artifact_pvc",
    "build_profile_job",
    "build_training_job",
    "profile_job_name",
    "store_pod_parts",
    "training_job_name",
]

PROFILER = "profiler"
TRAINER = "trainer"
TRAINING_SPEC_ENV = "GYRE_TRAINING_SPEC"
DATASET_VERSION_ENV = "GYRE_DATASET_VERSION"
DATASET_COLUMNS_ENV = "GYRE_DATASET_COLUMNS"
TRIGGER_ENV = "GYRE_TRIGGER"
DATASET_SPEC_ENV = "GYRE_DATASET_SPEC"
ARTIFACTS_VOLUME = "artifacts"
ANNOTATION_GENERATION = "gyre.dev/generation"
ANNOTATION_REVISION = "gyre.dev/revision"
RUN_AS = 65532  # the image's non-root user

_PROFILE_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
_TRAIN_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}


@dataclass(frozen=True)
class StorePodParts:
    """What a pod needs to reach the artifact store."""

    env: list[dict[str, Any]] = field(default_factory=list)
    env_from: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)


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


def store_pod_parts(settings: OperatorSettings) -> StorePodParts:
    """Env, envFrom and volumes for the configured artifact store (pvc:// mount, or a credentials Secret)."""
    env: list[dict[str, Any]] = [{"name": "GYRE_ARTIFACT_STORE", "value": settings.artifact_store}]
    env_from: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    pvc = settings.pvc
    if pvc is not None:
        volumes.append({"name": ARTIFACTS_VOLUME, "persistentVolumeClaim": {"claimName": pvc.claim}})
        mounts.append({"name": ARTIFACTS_VOLUME, "mountPath": PVC_MOUNT_PATH})
        env.append({"name": "GYRE_PVC_MOUNT", "value": PVC_MOUNT_PATH})
    elif settings.artifact_secret and settings.artifact_store.startswith(("s3://", "gs://")):
        env_from.append({"secretRef": {"name": settings.artifact_secret}})
    return StorePodParts(env=env, env_from=env_from, volumes=volumes, mounts=mounts)


def _resources(spec: ResourceRequirements | None, default: dict[str, dict[str, str]]) -> dict[str, Any]:
    if spec is None:
        return {k: dict(v) for k, v in default.items()}
    out: dict[str, Any] = {}
    if spec.requests:
        out["requests"] = dict(sorted(spec.requests.items()))
    if spec.limits:
        out["limits"] = dict(sorted(spec.limits.items()))
    return out


def _job(
    *,
    owner: Owner,
    name: str,
    component: str,
    image: str,
    args: list[str],
    env: list[dict[str, Any]],
    resources: dict[str, Any],
    settings: OperatorSettings,
    active_deadline_seconds: int,
    backoff_limit: int,
    annotations: dict[str, str],
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    store = store_pod_parts(settings)
    labels = labels_for(owner, component)
    container: dict[str, Any] = {
        "name": component,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["gyre"],
        "args": args,
        "env": [*env, *store.env, {"name": "HOME", "value": "/tmp"}],
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # The report is the termination message; if the process dies before writing it, the log tail explains why.
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [*store.mounts, {"name": "tmp", "mountPath": "/tmp"}],
    }
    if store.env_from:
        container["envFrom"] = store.env_from
    spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "activeDeadlineSeconds": active_deadline_seconds,
        # No ttlSecondsAfterFinished: the controller reads finished pods; the owner's deletion cleans up.
        "template": {
            "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS,
                    "runAsGroup": RUN_AS,
                    "fsGroup": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [*store.volumes, {"name": "tmp", "emptyDir": {}}],
            },
        },
    }
    spec.update(extra_spec or {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": spec,
    }


def profile_job_name(owner: Owner, spec: DatasetSpec, revision: str) -> str:
    """`<dataset>-profile-<hash>`: a new name whenever the spec or the revision (generation, refresh) changes."""
    digest = short_hash(spec.model_dump_json(by_alias=True, exclude_none=True), revision)
    return child_name(owner.name, f"profile-{digest}")


def build_profile_job(
    owner: Owner, spec: DatasetSpec, settings: OperatorSettings, *, revision: str
) -> dict[str, Any]:
    """The Job that reads a Dataset's source, fingerprints it, stores a copy and its profile.

    `revision` distinguishes runs of one spec: `g<generation>` for a spec change, plus a refresh counter for
    periodic re-reads.
    """
    args = [
        "profile",
        "--store",
        settings.artifact_store,
        "--namespace",
        owner.namespace,
        "--name",
        owner.name,
        "--source",
        spec.source.uri,
        "--format",
        spec.source.format,
    ]
    if spec.target:
        args += ["--target", spec.target]
    env = [{"name": DATASET_SPEC_ENV, "value": spec.model_dump_json(by_alias=True, exclude_none=True)}]
    annotations = {ANNOTATION_GENERATION: str(owner.generation), ANNOTATION_REVISION: revision}
    return _job(
        owner=owner,
        name=profile_job_name(owner, spec, revision),
        component=PROFILER,
        image=spec.image or settings.image,
        args=args,
        env=env,
        resources=_resources(spec.resources, _PROFILE_RESOURCES),
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
        settings.artifact_store,
        "--run",
        f"{owner.namespace}/{owner.name}",
        "--dataset-uri",
        dataset.uri,
        "--dataset-fingerprint",
        dataset.fingerprint,
    ]
    if dataset.target:
        args += ["--target", dataset.target]
    env = [
        {"name": TRAINING_SPEC_ENV, "value": spec.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": TRIGGER_ENV, "value": trigger},
    ]
    if dataset.version is not None:
        env.append({"name": DATASET_VERSION_ENV, "value": str(dataset.version)})
    if dataset.columns:
        columns = [{"name": n, "kind": k} for n, k in dataset.columns]
        env.append({"name": DATASET_COLUMNS_ENV, "value": json.dumps(columns, separators=(",", ":"))})
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
    job = _job(
        owner=owner,
        name=training_job_name(owner),
        component=TRAINER,
        image=spec.image or settings.image,
        args=args,
        env=env,
        resources=_resources(spec.resources, _TRAIN_RESOURCES),
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


def build_artifact_pvc(settings: OperatorSettings, namespace: str) -> dict[str, Any] | None:
    """The namespace's artifact claim for a pvc:// store (shared by every Gyre object there), else None."""
    pvc = settings.pvc
    if pvc is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.pvc_size}},
    }
    if settings.storage_class:
        spec["storageClassName"] = settings.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": pvc.claim,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "gyre",
                "app.kubernetes.io/component": "artifact-store",
                "app.kubernetes.io/managed-by": "gyre-operator",
                "app.kubernetes.io/part-of": "gyre",
            },
        },
        "spec": spec,
    }
