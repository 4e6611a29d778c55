"""Condition types and the reasons Gyre writes into conditions and Events: one definition of each.

`kubectl get ... -o jsonpath='{.status.conditions[*].reason}'`, Argo CD health checks and alert rules match on these
strings, so they are part of the API: renaming one is a breaking change.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConditionType", "EventType", "Reason"]


class ConditionType(StrEnum):
    """Condition types (status.conditions[].type)."""

    READY = "Ready"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"
    RUNNING = "Running"
    VALIDATED = "Validated"
    DATASET_READY = "DatasetReady"
    REFRESHING = "Refreshing"
    CONTRACT_SATISFIED = "ContractSatisfied"
    """Dataset: the newest version satisfies spec.expectations; absent when there are none."""
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    DRIFTED = "Drifted"
    RETRAINING = "Retraining"
    SYNCED = "Synced"
    """False while the API server refuses a write the operator needs (RBAC, an admission policy); absent otherwise."""
    APPROVED = "Approved"
    """ModelDeployment with promotion.approval Required: whether what it would serve is approved; absent otherwise."""
    TRACKED = "Tracked"
    """TrainingRun: logged to MLflow (True) or not (False, with why); absent when no tracking server applies."""


class EventType(StrEnum):
    """Kubernetes Event types."""

    NORMAL = "Normal"
    WARNING = "Warning"


class Reason(StrEnum):
    """Reasons of conditions and Events, grouped by the kind that writes them."""

    # Any kind
    INVALID_SPEC = "InvalidSpec"
    JOB_MISSING = "JobMissing"
    JOB_FAILED = "JobFailed"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    UNTRUSTED_RESULT = "UntrustedResult"
    WRITE_REJECTED = "WriteRejected"
    WRITES_ACCEPTED = "WritesAccepted"
    # The namespace's object-store Secret is missing or lacks a key (reported by the pod, gyre.store).
    STORE_CREDENTIALS_MISSING = "StoreCredentialsMissing"
    # The object store refused a path: outside the namespace's own part, or the credentials do not allow it.
    STORE_ACCESS_DENIED = "StoreAccessDenied"

    # Dataset
    PROFILING = "Profiling"
    PROFILED = "Profiled"
    PROFILING_FAILED = "ProfilingFailed"
    NEW_VERSION = "NewVersion"
    UNCHANGED = "Unchanged"
    SPEC_CHANGED = "SpecChanged"
    REFRESH_DUE = "RefreshDue"
    REFRESH_REQUESTED = "RefreshRequested"
    SOURCE_REFUSED = "SourceRefused"  # the source policy refuses the source (in the operator, or in the pod)
    CONTRACT_VIOLATED = (
        "ContractViolated"  # a version breaks spec.expectations (also a TrainingRun pinning it)
    )
    EXPECTATIONS_MET = "ExpectationsMet"
    # Dataset from feedback (spec.source.feedback)
    FEEDBACK_NOT_READY = "FeedbackNotReady"  # its deployment serves no model yet, or mergeWith is not ready
    INSUFFICIENT_FEEDBACK = "InsufficientFeedback"  # fewer labelled predictions than minRows
    SCHEMA_MISMATCH = "SchemaMismatch"  # the mergeWith version's columns differ from the feedback table's

    # TrainingRun
    DATASET_NOT_FOUND = "DatasetNotFound"
    DATASET_NOT_READY = "DatasetNotReady"
    DATASET_READY = "DatasetReady"
    FINGERPRINT_MISMATCH = "FingerprintMismatch"
    NO_TARGET = "NoTarget"
    UNKNOWN_COLUMNS = "UnknownColumns"
    SEARCH_TOO_LARGE = "SearchTooLarge"
    JOB_CREATED = "JobCreated"
    JOB_FINISHED = "JobFinished"
    STARTED = "Started"
    TRAINING_FAILED = "TrainingFailed"
    MODEL_TRAINED = "ModelTrained"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    GATES_PASSED = "GatesPassed"
    GATES_FAILED = "GatesFailed"
    NO_GATES = "NoGates"
    TRACKED = "Tracked"  # logged as an MLflow run (docs/tracking.md)
    TRACKING_FAILED = "TrackingFailed"  # the pod could not log to MLflow; training is unaffected
    TRACKING_REFUSED = (
        "TrackingRefused"  # spec.tracking.uri refused by the source policy; the run is not logged
    )

    # ModelDeployment
    TRAINING_RUN_NOT_FOUND = "TrainingRunNotFound"
    TRAINING_RUN_FAILED = "TrainingRunFailed"
    WAITING_FOR_TRAINING = "WaitingForTraining"
    WAITING_FOR_VALIDATED_RUN = "WaitingForValidatedRun"
    SERVING = "Serving"
    ROLLING_OUT = "RollingOut"
    ROLLED_OUT = "RolledOut"
    ROLLOUT_STUCK = "RolloutStuck"
    SERVER_FAILING = "ServerFailing"
    HEALTHY = "Healthy"
    MODEL_ROLLOUT = "ModelRollout"
    READY = "Ready"
    # promotion.approval Required: a validated run waits for a person's approval (docs/approval.md).
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"

    # DriftMonitor
    DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
    REFERENCE_UNKNOWN = "ReferenceUnknown"
    REFERENCE_NOT_READY = "ReferenceNotReady"
    CHECKING = "Checking"
    CHECKED = "Checked"
    CHECK_FAILED = "CheckFailed"
    INSUFFICIENT_DATA = "InsufficientData"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_RESOLVED = "DriftResolved"
    DRIFT_PERSISTED = "DriftPersisted"
    NO_DRIFT = "NoDrift"
    DISABLED = "Disabled"
    HYSTERESIS = "Hysteresis"
    RETRAIN_PENDING = "RetrainPending"
    COOLDOWN = "Cooldown"
    DAILY_CAP = "DailyCap"
    DRY_RUN = "DryRun"
    WOULD_RETRAIN = "WouldRetrain"
    RETRAIN_REQUESTED = "RetrainRequested"
    RETRAIN_CREATED = "RetrainCreated"
    RETRAIN_FAILED = "RetrainFailed"
    RETRAIN_IMPOSSIBLE = "RetrainImpossible"
    NO_SERVED_RUN = "NoServedRun"
    DATASET_FAILED = "DatasetFailed"
    # DriftMonitor spec.performance
    PERFORMANCE_DEGRADED = "PerformanceDegraded"
    PERFORMANCE_RECOVERED = "PerformanceRecovered"
    PERFORMANCE_OK = "PerformanceOk"
    INSUFFICIENT_LABELS = "InsufficientLabels"
    PERFORMANCE_CHECK_FAILED = "PerformanceCheckFailed"
    DEGRADATION_PERSISTED = "DegradationPersisted"
