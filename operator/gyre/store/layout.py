"""Paths under the artifact store root (see docs/architecture.md, "Artifact store")."""

from __future__ import annotations

import re

__all__ = [
    "dataset_data_path",
    "dataset_profile_path",
    "dataset_version_dir",
    "feedback_batch_path",
    "feedback_dir",
    "fingerprint_digest",
    "model_dir",
    "prediction_batch_path",
    "predictions_day_dir",
    "predictions_dir",
    "trial_dir",
]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_FINGERPRINT = re.compile(r"^(sha256:)?([0-9a-f]{64})$")


def _name(value: str, what: str) -> str:
    # Kubernetes names are DNS-1123 subdomains, which also makes them safe path segments.
    if not _NAME.match(value) or len(value) > 253:
        raise ValueError(f"{what} {value!r} is not a valid Kubernetes name")
    return value


def fingerprint_digest(fingerprint: str) -> str:
    """The hex digest of a `sha256:<hex>` fingerprint: the directory name of a dataset version.

    Directories use the bare hex (no colon) so paths stay portable across filesystems and tools.
    """
    match = _FINGERPRINT.match(fingerprint)
    if not match:
        raise ValueError(f"not a sha256 fingerprint: {fingerprint!r}")
    return match.group(2)


def dataset_version_dir(namespace: str, dataset: str, fingerprint: str) -> str:
    """`datasets/{ns}/{dataset}/{hex}`: one content-addressed version."""
    digest = fingerprint_digest(fingerprint)
    return f"datasets/{_name(namespace, 'namespace')}/{_name(dataset, 'dataset')}/{digest}"


def dataset_data_path(namespace: str, dataset: str, fingerprint: str) -> str:
    """The parquet copy of one dataset version."""
    return f"{dataset_version_dir(namespace, dataset, fingerprint)}/data.parquet"


def dataset_profile_path(namespace: str, dataset: str, fingerprint: str) -> str:
    """The reference profile of one dataset version."""
    return f"{dataset_version_dir(namespace, dataset, fingerprint)}/profile.json"


def model_dir(namespace: str, run: str) -> str:
    """`models/{ns}/{run}`: the model directory of a TrainingRun without search."""
    return f"models/{_name(namespace, 'namespace')}/{_name(run, 'training run')}"


def trial_dir(namespace: str, run: str, index: int) -> str:
    """`models/{ns}/{run}/trials/{index}`: the model directory of one search trial."""
    if index < 0:
        raise ValueError(f"trial index must be >= 0, got {index}")
    return f"{model_dir(namespace, run)}/trials/{index}"


def predictions_dir(namespace: str, deployment: str) -> str:
    """`predictions/{ns}/{deployment}`: all prediction-log batches of a deployment."""
    return f"predictions/{_name(namespace, 'namespace')}/{_name(deployment, 'deployment')}"


def predictions_day_dir(namespace: str, deployment: str, day: str) -> str:
    """One UTC day (`YYYY-MM-DD`) of prediction-log batches."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise ValueError(f"day must be YYYY-MM-DD, got {day!r}")
    return f"{predictions_dir(namespace, deployment)}/{day}"


def prediction_batch_path(namespace: str, deployment: str, unix_ms: int, pod: str) -> str:
    """`predictions/{ns}/{deployment}/{YYYY-MM-DD}/{unix_ms}-{pod}.jsonl.gz` (day in UTC)."""
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(unix_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
    return f"{predictions_day_dir(namespace, deployment, day)}/{unix_ms}-{_name(pod, 'pod')}.jsonl.gz"


def feedback_dir(namespace: str, deployment: str) -> str:
    """`feedback/{ns}/{deployment}`: ground-truth labels of a deployment's predictions.

    Users drop bulk files (`.csv`, `.csv.gz`, `.parquet`: columns `id`, `label`, optional `ts`) anywhere under it;
    the model server's feedback endpoint writes `feedback_batch_path` files there.
    """
    return f"feedback/{_name(namespace, 'namespace')}/{_name(deployment, 'deployment')}"


def feedback_batch_path(namespace: str, deployment: str, unix_ms: int, pod: str) -> str:
    """`feedback/{ns}/{deployment}/{YYYY-MM-DD}/{unix_ms}-{pod}.jsonl.gz`: labels one server pod received."""
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(unix_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
    return f"{feedback_dir(namespace, deployment)}/{day}/{unix_ms}-{_name(pod, 'pod')}.jsonl.gz"
