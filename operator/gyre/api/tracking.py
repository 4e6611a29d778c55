"""TrainingRun `spec.tracking`: where the run is logged as an MLflow run (and its search trials as child runs).

The operator may set a tracking server for every run (chart `tracking.mlflow.uri`, env GYRE_TRACKING_URI, with
credentials from a Secret of each namespace); a run may name its own server and credentials here, or opt out.
Logging happens in the training pod; its failure never fails training: the run gets `Tracked=False` and a Warning
Event instead (docs/tracking.md).
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from gyre.api.common import ApiModel, StatusModel
from gyre.api.dataset import SecretKeyRef

__all__ = ["TRACKING_URI_PATTERN", "TrackingSpec", "TrackingStatus"]

TRACKING_URI_PATTERN = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$"
"""An MLflow tracking server's base URL, without credentials, query or fragment."""


class TrackingSpec(ApiModel):
    """Experiment tracking of this run in MLflow."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.usernameSecretRef) == has(self.passwordSecretRef)",
                    "message": "usernameSecretRef and passwordSecretRef go together (HTTP basic authentication)",
                },
                {
                    "rule": "!has(self.tokenSecretRef) || !has(self.usernameSecretRef)",
                    "message": "give tokenSecretRef or usernameSecretRef/passwordSecretRef, not both",
                },
            ]
        }
    )

    enabled: bool = True
    """false: do not log this run, even when the operator has a tracking server."""
    uri: str | None = Field(default=None, pattern=TRACKING_URI_PATTERN, max_length=2048)
    """The MLflow tracking server (`http://mlflow.mlops:5000`); default: the operator's (GYRE_TRACKING_URI). Its host
    is checked against the cluster's source policy (policy.sources), as a Dataset's http source would be."""
    experiment: str | None = Field(default=None, min_length=1, max_length=500)
    """MLflow experiment name; default `<namespace>/<datasetRef.name>`, so runs on one Dataset sit side by side."""
    token_secret_ref: SecretKeyRef | None = None
    """A bearer token (MLFLOW_TRACKING_TOKEN), from a Secret key in the run's namespace."""
    username_secret_ref: SecretKeyRef | None = None
    """HTTP basic authentication user (MLFLOW_TRACKING_USERNAME), from a Secret key."""
    password_secret_ref: SecretKeyRef | None = None
    """HTTP basic authentication password (MLFLOW_TRACKING_PASSWORD), from a Secret key."""

    @model_validator(mode="after")
    def _one_credential(self) -> TrackingSpec:
        if (self.username_secret_ref is None) != (self.password_secret_ref is None):
            raise ValueError(
                "usernameSecretRef and passwordSecretRef go together (HTTP basic authentication)"
            )
        if self.token_secret_ref is not None and self.username_secret_ref is not None:
            raise ValueError("give tokenSecretRef or usernameSecretRef/passwordSecretRef, not both")
        return self


class TrackingStatus(StatusModel):
    """Where the run was logged."""

    experiment_id: str | None = None
    """The MLflow experiment."""
    run_id: str | None = None
    """The MLflow run: the run itself, or a search's parent run (its trials are child runs)."""
    url: str | None = None
    """The run's page in the MLflow UI."""
    failed_trials: int | None = None
    """Search trials whose logging failed (Tracked=False says why)."""
