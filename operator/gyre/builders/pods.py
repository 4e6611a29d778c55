"""Pod parts every Gyre workload shares: the artifact store's env and volumes, the non-root security contexts,
the writable /tmp, resources from a spec, and the Job skeleton of the profiler, trainer and drift checker.

Pure functions returning fresh dicts, so a builder may extend what it gets without touching another's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gyre.api.common import ResourceRequirements
from gyre.api.env import (
    ARTIFACT_STORE,
    DEFAULT_TERMINATION_LOG,
    GCS_CREDENTIALS,
    GCS_CREDENTIALS_KEY,
    PVC_MOUNT,
    STORE_SECRET,
    STORE_SECRET_MOUNT,
    STORE_SECRET_OPTIONAL_S3,
    STORE_SECRET_REQUIRED_S3,
)
from gyre.builders.meta import Owner, labels_for, owner_reference
from gyre.builders.settings import PVC_MOUNT_PATH, OperatorSettings

__all__ = [
    "ARTIFACTS_VOLUME",
    "RUN_AS",
    "STORE_SECRET_VOLUME",
    "TMP_VOLUME",
    "StorePodParts",
    "build_artifact_pvc",
    "build_job",
    "container_resources",
    "container_security_context",
    "pod_security_context",
    "store_pod_parts",
    "tmp_home_env",
    "tmp_mount",
    "tmp_volume",
]

ARTIFACTS_VOLUME = "artifacts"
STORE_SECRET_VOLUME = "store-credentials"
TMP_VOLUME = "tmp"
RUN_AS = 65532  # the image's non-root user


@dataclass(frozen=True)
class StorePodParts:
    """What a pod needs to reach the artifact store."""

    env: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)


def store_pod_parts(settings: OperatorSettings, namespace: str) -> StorePodParts:
    """Env and volumes for the artifact store of `namespace`'s pods: the pvc:// claim's mount, or for s3:// and
    gs:// the namespace's own store root and its credentials Secret.

    Credentials are references only (secretKeyRef, a Secret volume), never values, and only the keys the store
    clients read: no other key of the Secret reaches the pod's environment.
    """
    variables: list[dict[str, Any]] = [{"name": ARTIFACT_STORE, "value": settings.store_url(namespace)}]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    pvc = settings.pvc
    secret = settings.artifact_secret
    if pvc is not None:
        volumes.append({"name": ARTIFACTS_VOLUME, "persistentVolumeClaim": {"claimName": pvc.claim}})
        mounts.append({"name": ARTIFACTS_VOLUME, "mountPath": PVC_MOUNT_PATH})
        variables.append({"name": PVC_MOUNT, "value": PVC_MOUNT_PATH})
    elif secret and settings.artifact_store.startswith(("s3://", "gs://")):
        # Optional references: a missing Secret still starts the pod, whose store then fails at once with
        # StoreCredentialsMissing naming the Secret, instead of a pod stuck in CreateContainerConfigError.
        variables.append({"name": STORE_SECRET, "value": secret})
    if secret and settings.artifact_store.startswith("s3://"):
        for key in STORE_SECRET_REQUIRED_S3 + STORE_SECRET_OPTIONAL_S3:
            ref = {"name": secret, "key": key, "optional": True}
            variables.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
        # Never fall back to the node's instance role: a namespace uses its own credentials or none.
        variables.append({"name": "AWS_EC2_METADATA_DISABLED", "value": "true"})
    elif secret and settings.artifact_store.startswith("gs://"):
        item = {"key": GCS_CREDENTIALS_KEY, "path": GCS_CREDENTIALS_KEY}
        source = {"secretName": secret, "items": [item], "optional": True}
        volumes.append({"name": STORE_SECRET_VOLUME, "secret": source})
        mounts.append({"name": STORE_SECRET_VOLUME, "mountPath": STORE_SECRET_MOUNT, "readOnly": True})
        path = f"{STORE_SECRET_MOUNT}/{GCS_CREDENTIALS_KEY}"
        variables.append({"name": GCS_CREDENTIALS, "value": path})
    return StorePodParts(env=variables, volumes=volumes, mounts=mounts)


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


def container_resources(
    spec: ResourceRequirements | None, default: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """A container's resources: the spec's requests and limits (sorted), or a copy of `default` when unset."""
    if spec is None:
        return {k: dict(v) for k, v in default.items()}
    out: dict[str, Any] = {}
    if spec.requests:
        out["requests"] = dict(sorted(spec.requests.items()))
    if spec.limits:
        out["limits"] = dict(sorted(spec.limits.items()))
    return out


def container_security_context() -> dict[str, Any]:
    """Restricted Pod Security: no escalation, a read-only root filesystem, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security_context() -> dict[str, Any]:
    """Run as the image's non-root user; fsGroup lets it write the artifact volume."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def tmp_volume() -> dict[str, Any]:
    """The emptyDir behind /tmp, the only writable path under a read-only root filesystem."""
    return {"name": TMP_VOLUME, "emptyDir": {}}


def tmp_mount() -> dict[str, Any]:
    """The container's mount of tmp_volume() at /tmp."""
    return {"name": TMP_VOLUME, "mountPath": "/tmp"}


def tmp_home_env() -> dict[str, Any]:
    """HOME in the writable /tmp, for libraries that write under ~: onnxruntime writes ~/.ses and
    ~/.cache/Microsoft/DeveloperTools/.onnxruntime (seen in a model server's /tmp by tests/e2e/test_ml_loop.py)."""
    return {"name": "HOME", "value": "/tmp"}


def build_job(
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
    """A Job running `gyre <args>` once as `component` of `owner`, with the store's parts and the shared pod
    settings; `extra_spec` keys are merged over the Job spec (e.g. an Indexed completion mode)."""
    store = store_pod_parts(settings, owner.namespace)
    labels = labels_for(owner, component)
    container: dict[str, Any] = {
        "name": component,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["gyre"],
        "args": args,
        "env": [*env, *store.env, tmp_home_env()],
        "resources": resources,
        "securityContext": container_security_context(),
        # The report is the termination message; if the process dies before writing it, the log tail explains why.
        "terminationMessagePath": DEFAULT_TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [*store.mounts, tmp_mount()],
    }
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
                "securityContext": pod_security_context(),
                "containers": [container],
                "volumes": [*store.volumes, tmp_volume()],
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
