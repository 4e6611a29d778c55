"""The artifact store: one fsspec URL root and the layout under it."""

from gyre.store.layout import (
    dataset_data_path,
    dataset_profile_path,
    dataset_version_dir,
    feedback_batch_path,
    feedback_dir,
    fingerprint_digest,
    model_dir,
    prediction_batch_path,
    predictions_day_dir,
    predictions_dir,
    trial_dir,
)
from gyre.store.store import (
    PVC_MOUNT_PATH,
    ArtifactStore,
    StoreError,
    check_store_credentials,
    namespace_store_url,
    resolve_store_url,
    sha256_file,
    sha256_stream,
)
from gyre.store.termination import (
    TERMINATION_MESSAGE_LIMIT,
    termination_log_path,
    write_termination_message,
)

__all__ = [
    "PVC_MOUNT_PATH",
    "TERMINATION_MESSAGE_LIMIT",
    "ArtifactStore",
    "StoreError",
    "check_store_credentials",
    "dataset_data_path",
    "dataset_profile_path",
    "dataset_version_dir",
    "feedback_batch_path",
    "feedback_dir",
    "fingerprint_digest",
    "model_dir",
    "namespace_store_url",
    "prediction_batch_path",
    "predictions_day_dir",
    "predictions_dir",
    "resolve_store_url",
    "sha256_file",
    "sha256_stream",
    "termination_log_path",
    "trial_dir",
    "write_termination_message",
]
