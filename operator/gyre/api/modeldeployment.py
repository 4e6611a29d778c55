"""ModelDeployment: serve a trained model (Deployment + Service), with canary and automatic promotion."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from gyre.api.common import (
    ApiModel,
    Condition,
    LabelSelector,
    LocalObjectReference,
    ResourceRequirements,
    StatusModel,
)

__all__ = [
    "APPROVED_BY_ANNOTATION",
    "APPROVED_SHA256_ANNOTATION",
    "HISTORY_LIMIT",
    "ApprovalPolicy",
    "Autoscaling",
    "CanarySpec",
    "CanaryStatus",
    "DeploymentPhase",
    "Explanations",
    "HistoryEntry",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelSource",
    "ModelVersion",
    "PredictionLogging",
    "Promotion",
    "ServerSettings",
]

DeploymentPhase = Literal["Pending", "Progressing", "Ready", "Degraded"]
ApprovalPolicy = Literal["None", "Required"]

# A person approves a TrainingRun's model for promotion by annotating the run (docs/approval.md): their own username
# (the chart's ValidatingAdmissionPolicy checks it is the requester's, and that they are in the approvers group) and
# the model digest they approve (it must equal status.modelSha256), so a run retrained under the same name is not
# approved by an earlier approval.
APPROVED_BY_ANNOTATION = "gyre.dev/approved-by"
APPROVED_SHA256_ANNOTATION = "gyre.dev/approved-sha256"
# Entries kept in ModelDeployment status.history (oldest dropped first).
HISTORY_LIMIT = 20

_MODEL_URI_PATTERN = r"^(pvc://|file:///|s3://|gs://).+$"


class ModelSource(ApiModel):
    """Which model to serve: a TrainingRun's model, or a model directory in the artifact store."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.trainingRunRef) != has(self.uri)",
                    "message": "set exactly one of trainingRunRef or uri",
                },
                {
                    "rule": "!has(self.sha256) || has(self.uri)",
                    "message": "sha256 pins a uri; a trainingRunRef is pinned by its TrainingRun's status",
                },
            ]
        }
    )

    training_run_ref: LocalObjectReference | None = None
    """A Succeeded TrainingRun in the same namespace whose model passed its gates."""
    uri: str | None = Field(default=None, pattern=_MODEL_URI_PATTERN, max_length=2048)
    """A model directory holding manifest.json and model.skops (e.g. imported with `gyre model import`)."""
    sha256: str | None = Field(default=None, pattern=r"^(sha256:)?[0-9a-f]{64}$")
    """With uri: the model's digest (sha256 of its manifest.json, as `gyre model import` prints it). The server
    refuses to start unless the directory matches it; types an import explicitly allowed are honoured only so."""


class Promotion(ApiModel):
    """How the served model changes over time."""

    policy: Literal["Manual", "LatestValidated"] = "Manual"
    """Manual: serve spec.model. LatestValidated: serve the newest Succeeded TrainingRun that passed its gates
    among those matching the selector (e.g. retrains triggered by a DriftMonitor)."""
    selector: LabelSelector | None = None
    """TrainingRuns eligible for promotion; empty means every TrainingRun in the namespace."""
    approval: ApprovalPolicy = "None"
    """Required: a TrainingRun's model is served (stable or canary) only once a member of the approvers group has
    approved that run and digest (`kubectl annotate trainingrun RUN gyre.dev/approved-by=USER
    gyre.dev/approved-sha256=DIGEST`, docs/approval.md); until then it waits (condition Approved=False, reason
    AwaitingApproval) and what is served keeps serving. None: validated runs are promoted without approval."""


class CanarySpec(ApiModel):
    """A second model that receives a share of the traffic."""

    model: ModelSource
    """The canary model."""
    weight: int = Field(default=10, ge=0, le=100)
    """Percentage of requests routed to the canary."""


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler on CPU; replaces spec.replicas when set."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not be greater than maxReplicas",
                }
            ]
        }
    )

    min_replicas: int = Field(default=1, ge=1, le=1000)
    """Lower bound of the replica count."""
    max_replicas: int = Field(ge=1, le=1000)
    """Upper bound of the replica count."""
    target_cpu_utilization_percentage: int = Field(default=80, ge=1, le=100)
    """Average CPU utilisation (of requests) the autoscaler aims for."""


class PredictionLogging(ApiModel):
    """Sampling of requests and responses into the artifact store, read by DriftMonitors."""

    enabled: bool = True
    """Log predictions at all."""
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Fraction of rows logged, 0 to 1."""
    flush_interval_seconds: int = Field(default=10, ge=1, le=3600)
    """Write a batch at least this often."""
    max_batch_rows: int = Field(default=1000, ge=1, le=100000)
    """Write a batch when it reaches this many rows."""


class Explanations(ApiModel):
    """Per-prediction explanations: POST /v1/models/NAME:explain returns feature attributions for each row
    (docs/explanations.md). They run in a worker process of their own, so they never slow :predict."""

    enabled: bool = False
    """Answer :explain (off: 404). XGBoost, LightGBM and linear models can be explained; others answer 501."""
    max_rows: int = Field(default=100, ge=1, le=10000)
    """Most rows one :explain request may ask about; more get 422."""


class ServerSettings(ApiModel):
    """Limits of the HTTP server in each pod (`gyre serve`, docs/serving.md). Unset fields keep their defaults."""

    header_timeout_seconds: int = Field(default=15, ge=1, le=600)
    """A connection must send a complete request head this soon after it opens or after its previous answer, else
    it is closed. This also ends idle keep-alive connections."""
    body_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    """A request body must arrive whole this soon after its head, else the answer is 408 and the connection
    closes. Raise it for large bodies from slow clients (spec.maxBodyBytes bounds their size)."""
    max_connections: int = Field(default=1024, ge=8, le=100000)
    """Open connections per pod. At this many the server stops accepting: new connections wait in the kernel's
    listen queue until one closes, and while some wait, each answer closes its connection to give them a turn."""
    shutdown_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    """On shutdown (a rollout, a scale-down), the longest wait for requests in flight before the server stops.
    The pod's terminationGracePeriodSeconds is derived from it, so the server is never killed while it waits."""


class ModelDeploymentSpec(ApiModel):
    """Desired state of a ModelDeployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.model) || (has(self.promotion) && self.promotion.policy == 'LatestValidated')",
                    "message": "set spec.model, or promotion.policy LatestValidated to pick the model automatically",
                },
                {
                    "rule": "!has(self.autoscaling) || !has(self.replicas)",
                    "message": "set replicas or autoscaling, not both",
                },
                {
                    "rule": "!has(self.promotion) || !has(self.promotion.approval)"
                    " || self.promotion.approval != 'Required'"
                    " || ((!has(self.model) || has(self.model.trainingRunRef))"
                    " && (!has(self.canary) || has(self.canary.model.trainingRunRef)))",
                    "message": "with promotion.approval Required, models are approved as TrainingRuns: set "
                    "model.trainingRunRef (and canary.model.trainingRunRef), not a uri",
                },
            ]
        }
    )

    model: ModelSource | None = None
    """The model to serve (with promotion policy Manual, required)."""
    promotion: Promotion | None = None
    """Automatic promotion of newly validated TrainingRuns."""
    canary: CanarySpec | None = None
    """Split traffic between the main model and a canary."""
    replicas: int | None = Field(default=None, ge=0, le=1000)
    """Fixed number of server pods (default 1); leave unset when autoscaling is set."""
    autoscaling: Autoscaling | None = None
    """Scale on CPU between minReplicas and maxReplicas."""
    prediction_logging: PredictionLogging | None = None
    """What the server logs for drift monitoring; enabled with defaults when unset."""
    explain: Explanations | None = None
    """Per-prediction explanations (:explain); off when unset."""
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    """Largest request body accepted; larger requests get 413."""
    server: ServerSettings | None = None
    """Timeouts, connection cap and shutdown wait of each pod's HTTP server; the defaults when unset."""
    resources: ResourceRequirements | None = None
    """Resources of each server container."""
    image: str | None = Field(default=None, max_length=512)
    """Server image; defaults to the operator's GYRE_IMAGE."""
    port: int = Field(default=8080, ge=1024, le=65535)
    """Container port of the HTTP server (the Service always listens on 80)."""


class ModelVersion(StatusModel):
    """Identity of a served model."""

    training_run: str | None = None
    """The TrainingRun that produced it, if any."""
    uri: str | None = None
    """Its model directory."""
    sha256: str | None = None
    """Its digest: sha256 of its manifest.json, which pins every file of the model."""
    approved_by: str | None = None
    """With promotion.approval Required: who approved this run and digest (gyre.dev/approved-by)."""
    approved_at: datetime | None = None
    """When the approval annotation was written (the time of the managedFields entry that owns it)."""


class HistoryEntry(StatusModel):
    """One model that was served: what, on which track, from when to when, and why."""

    track: Literal["stable", "canary"]
    """The track that served it."""
    training_run: str | None = None
    """The TrainingRun that produced it, if any."""
    uri: str | None = None
    """Its model directory."""
    sha256: str | None = None
    """Its digest."""
    served_from: datetime
    """When the operator began rolling it out."""
    served_until: datetime | None = None
    """When another model replaced it on this track; unset while it is served."""
    source: Literal["LatestValidated", "Model", "Canary"]
    """Why it was chosen: promoted as the newest validated run, named by spec.model, or spec.canary.model."""
    trigger: str | None = None
    """What started its TrainingRun (lineage: manual, or drift:<namespace>/<monitor>)."""
    gates: str | None = None
    """Its TrainingRun's Validated condition: reason and message (which gates passed)."""
    approved_by: str | None = None
    """Who approved it, when approval was required."""
    approved_at: datetime | None = None
    """When it was approved."""


class CanaryStatus(StatusModel):
    """Observed state of the canary."""

    model: ModelVersion | None = None
    """The canary model."""
    weight: int | None = None
    """Percentage of traffic it receives."""
    ready_replicas: int | None = None
    """Ready canary pods."""


class ModelDeploymentStatus(StatusModel):
    """Observed state of a ModelDeployment."""

    phase: DeploymentPhase | None = None
    """Pending, Progressing, Ready or Degraded."""
    model_version: ModelVersion | None = None
    """The model the stable pods serve."""
    url: str | None = None
    """In-cluster URL of the Service."""
    replicas: int | None = None
    """Desired server pods."""
    ready_replicas: int | None = None
    """Ready server pods."""
    canary: CanaryStatus | None = None
    """Canary state, when a canary is configured."""
    inference_path: Literal["onnx", "sklearn"] | None = None
    """Whether the server runs the model with onnxruntime or scikit-learn."""
    history: list[HistoryEntry] | None = Field(default=None, max_length=HISTORY_LIMIT)
    """The models served, oldest first, at most 20 (`gyre history NAMESPACE/DEPLOYMENT` prints them)."""
    conditions: list[Condition] | None = None
    """Ready, Progressing, Degraded, and Approved when promotion.approval is Required."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
