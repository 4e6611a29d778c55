"""Operator settings, read once from the environment (the chart sets these variables)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gyre.api import env
from gyre.api.tracking import TRACKING_URI_PATTERN
from gyre.policy.images import ImagePolicy
from gyre.policy.sources import SourcePolicy
from gyre.store.store import namespace_store_url

__all__ = ["PVC_MOUNT_PATH", "OperatorSettings", "PvcLocation"]

PVC_MOUNT_PATH = env.DEFAULT_PVC_MOUNT
"""Where every Gyre pod mounts a pvc:// artifact store (gyre.store resolves pvc:// URLs against it)."""

_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class PvcLocation(BaseModel):
    """A pvc://CLAIM/SUBPATH store, split."""

    claim: str
    subpath: str


class OperatorSettings(BaseModel):
    """What the operator needs to know that is not in any custom resource."""

    model_config = ConfigDict(frozen=True)

    artifact_store: str = "pvc://gyre-artifacts"
    """GYRE_ARTIFACT_STORE: fsspec URL of the artifact store (pvc://, s3://, gs://, file://)."""
    image: str = "gyre:dev"
    """GYRE_IMAGE: image of every Job and server, unless a resource sets its own."""
    artifact_secret: str | None = None
    """GYRE_ARTIFACT_SECRET: for s3:// and gs://, the Secret in each workload namespace holding that namespace's
    store credentials (keys in gyre.api.env: AWS_* for s3://, service-account.json for gs://)."""
    namespace: str | None = None
    """GYRE_NAMESPACE: the operator's own namespace."""
    pvc_size: str = "5Gi"
    """GYRE_ARTIFACT_PVC_SIZE: size of the artifact claim the operator creates in each namespace."""
    storage_class: str | None = None
    """GYRE_ARTIFACT_STORAGE_CLASS: StorageClass of that claim; empty means the cluster default."""
    image_pull_policy: str = Field(default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")
    """GYRE_IMAGE_PULL_POLICY: pull policy of every pod the operator creates."""

    allowed_images: tuple[str, ...] = ()
    """GYRE_ALLOWED_IMAGES: images, repositories, registry prefixes (ending in /) or sha256 digests that workloads may
    run besides `image` (see gyre.policy.images)."""

    instance: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """GYRE_OPERATOR_INSTANCE: handle only objects labelled gyre.dev/operator-instance=<this>; unset handles only
    objects without that label."""

    source_policy: SourcePolicy = SourcePolicy()
    """GYRE_SOURCE_POLICY: what Dataset sources may read (JSON, chart `policy.sources`); unset: the defaults."""
    network_policy: bool = True
    """GYRE_NETWORK_POLICY: give each ModelDeployment a NetworkPolicy admitting only its namespace (and below)."""
    monitoring_namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """GYRE_MONITORING_NAMESPACE: the one other namespace that NetworkPolicy admits to the model port."""
    tracking_uri: str | None = Field(default=None, pattern=TRACKING_URI_PATTERN)
    """GYRE_TRACKING_URI: the MLflow tracking server every TrainingRun is logged to (unless its spec.tracking says
    otherwise); unset: only runs with spec.tracking.uri are logged."""
    tracking_secret: str | None = Field(default=None, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    """GYRE_TRACKING_SECRET: Secret in each namespace whose optional keys MLFLOW_TRACKING_TOKEN, _USERNAME and
    _PASSWORD authenticate the training pods to GYRE_TRACKING_URI."""

    @field_validator("artifact_store")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("pvc://", "s3://", "gs://", "file:///")):
            raise ValueError(
                f"{env.ARTIFACT_STORE} must be pvc://CLAIM[/SUBPATH], s3://, gs:// or file:///, got {value!r}"
            )
        if "{namespace}" in value and not value.startswith(("s3://", "gs://")):
            raise ValueError(
                f"{env.ARTIFACT_STORE}: only s3:// and gs:// URLs take {{namespace}}, got {value!r}"
            )
        if value.startswith("pvc://"):
            claim = value[len("pvc://") :].split("/", 1)[0]
            if not _CLAIM.match(claim):
                raise ValueError(f"{env.ARTIFACT_STORE} names an invalid claim {claim!r}")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Read the GYRE_* variables; empty values mean "unset"."""
        source = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = source.get(name, "").strip()
            return value or None

        values = {
            "source_policy": SourcePolicy.from_json(get(env.SOURCE_POLICY)),
            "artifact_store": get(env.ARTIFACT_STORE),
            "image": get(env.IMAGE),
            "artifact_secret": get(env.ARTIFACT_SECRET),
            "namespace": get(env.NAMESPACE),
            "pvc_size": get(env.ARTIFACT_PVC_SIZE),
            "storage_class": get(env.ARTIFACT_STORAGE_CLASS),
            "image_pull_policy": get(env.IMAGE_PULL_POLICY),
            "instance": get(env.OPERATOR_INSTANCE),
            "allowed_images": tuple(e for e in re.split(r"[,\s]+", get(env.ALLOWED_IMAGES) or "") if e)
            or None,
            "network_policy": get(env.NETWORK_POLICY),
            "monitoring_namespace": get(env.MONITORING_NAMESPACE),
            "tracking_uri": get(env.TRACKING_URI),
            "tracking_secret": get(env.TRACKING_SECRET),
        }
        return cls.model_validate({k: v for k, v in values.items() if v is not None})

    def store_url(self, namespace: str) -> str:
        """The store root of `namespace`'s workloads: an object store's own per-namespace part (see
        gyre.store.namespace_store_url); pvc:// and file:// unchanged."""
        return namespace_store_url(self.artifact_store, namespace)

    @property
    def image_policy(self) -> ImagePolicy:
        """What workloads may run: the operator's image plus `allowed_images`."""
        return ImagePolicy(operator_image=self.image, allowed=self.allowed_images)

    @property
    def pvc(self) -> PvcLocation | None:
        """The claim and subpath of a pvc:// store, else None."""
        if not self.artifact_store.startswith("pvc://"):
            return None
        claim, _, subpath = self.artifact_store[len("pvc://") :].partition("/")
        return PvcLocation(claim=claim, subpath=subpath.strip("/"))
