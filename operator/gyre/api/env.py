"""The environment-variable contract between the operator's builders and the in-pod entrypoints.

A builder (gyre.builders) writes these names into a pod's env; the entrypoint the pod runs (`gyre train`,
`gyre profile`, `gyre drift run`, `gyre serve`, gyre.store) reads them back. Both sides import the names from here,
so renaming one is a one-line change that cannot leave the other side behind. The operator's own settings
(gyre.builders.settings, read from the chart's env) are listed here too.
"""

from __future__ import annotations

__all__ = [
    "ALLOWED_IMAGES",
    "ARTIFACT_PVC_SIZE",
    "ARTIFACT_SECRET",
    "ARTIFACT_STORAGE_CLASS",
    "ARTIFACT_STORE",
    "BATCHING",
    "BODY_TIMEOUT",
    "CACHE_DIR",
    "DATASET_COLUMNS",
    "DATASET_SPEC",
    "DATASET_VERSION",
    "DEFAULT_PVC_MOUNT",
    "DEFAULT_TERMINATION_LOG",
    "DEPLOYMENT",
    "DRAIN_SECONDS",
    "DRIFT_CONFIG",
    "EXPLAIN",
    "EXPLAIN_MAX_ROWS",
    "GCS_CREDENTIALS",
    "GCS_CREDENTIALS_KEY",
    "HEADER_TIMEOUT",
    "HOST",
    "IMAGE",
    "IMAGE_PULL_POLICY",
    "INFERENCE",
    "JOB_COMPLETION_INDEX",
    "LOG_FLUSH_SECONDS",
    "LOG_MAX_BATCH_ROWS",
    "LOG_SAMPLE_RATE",
    "LOG_STORE",
    "MAX_BATCH_ROWS",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "MAX_WAIT_MS",
    "METRICS_PORT",
    "MODEL_DIR",
    "MODEL_NAME",
    "MODEL_SHA256",
    "MODEL_VERSION",
    "MONITORING_NAMESPACE",
    "NAMESPACE",
    "NETWORK_POLICY",
    "ONNX_THREADS",
    "OPERATOR_INSTANCE",
    "PERFORMANCE_CONFIG",
    "POD_NAME",
    "POD_NAMESPACE",
    "PORT",
    "PVC_MOUNT",
    "SHUTDOWN_TIMEOUT",
    "SKLEARN_WORKERS",
    "SOURCE_POLICY",
    "SQL_PASSWORD",
    "SQL_USER",
    "STORE_SECRET",
    "STORE_SECRET_MOUNT",
    "STORE_SECRET_OPTIONAL_S3",
    "STORE_SECRET_REQUIRED_S3",
    "TERMINATION_LOG",
    "TRACK",
    "TRACKING_EXPERIMENT",
    "TRACKING_PASSWORD",
    "TRACKING_SECRET",
    "TRACKING_SECRET_KEYS",
    "TRACKING_TOKEN",
    "TRACKING_URI",
    "TRACKING_USERNAME",
    "TRAINING_RUN_UID",
    "TRAINING_SPEC",
    "TRIGGER",
]

# Every Gyre pod (gyre.builders.pods.store_pod_parts -> gyre.store).
ARTIFACT_STORE = "GYRE_ARTIFACT_STORE"  # fsspec URL of the artifact store (pvc://, s3://, gs://, file://)
PVC_MOUNT = "GYRE_PVC_MOUNT"  # where a pvc:// store's claim is mounted in the pod
TERMINATION_LOG = (
    "GYRE_TERMINATION_LOG"  # file the entrypoint's result report goes to (tests point it elsewhere)
)
IMAGE = "GYRE_IMAGE"  # image of every Job and server; also recorded in a model's manifest

DEFAULT_PVC_MOUNT = "/var/lib/gyre/artifacts"  # mount path of the artifact claim, when PVC_MOUNT is unset
DEFAULT_TERMINATION_LOG = "/dev/termination-log"  # the container's terminationMessagePath

# The profiling Job (builders/job.py -> `gyre profile`).
DATASET_SPEC = "GYRE_DATASET_SPEC"  # the Dataset spec as JSON (csv options, schema overrides)

# The source policy (chart policy.sources -> gyre.builders.settings; builders/job.py -> `gyre profile`), JSON of
# gyre.policy.sources.SourcePolicy; the profiling pod enforces it again at connection time.
SOURCE_POLICY = "GYRE_SOURCE_POLICY"

# The training Job (builders/job.py -> `gyre train`).
TRAINING_SPEC = "GYRE_TRAINING_SPEC"  # the validated TrainingRun spec as JSON
DATASET_VERSION = "GYRE_DATASET_VERSION"  # the Dataset version trained on, recorded in the model's lineage
DATASET_COLUMNS = (
    "GYRE_DATASET_COLUMNS"  # the Dataset's columns as JSON [{name, kind}], to preprocess by its schema
)
TRIGGER = "GYRE_TRIGGER"  # why the run exists: manual, or drift:<namespace>/<monitor>
JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"  # set by Kubernetes in an Indexed Job: the search trial to run

# MLflow tracking (chart tracking.mlflow -> gyre.builders.settings; builders/tracking.py -> `gyre train` ->
# gyre.tracking.mlflow). The URI is also the operator's own setting; the credentials are MLflow's own variable names,
# each a secretKeyRef (spec.tracking.*SecretRef, or the optional keys of the namespace's TRACKING_SECRET).
TRACKING_URI = "GYRE_TRACKING_URI"  # the MLflow tracking server's base URL; unset: no tracking
TRACKING_EXPERIMENT = "GYRE_TRACKING_EXPERIMENT"  # the experiment the run is logged in
TRAINING_RUN_UID = "GYRE_TRAINING_RUN_UID"  # the TrainingRun's uid: tags the MLflow run, so a retry reuses it
TRACKING_TOKEN = "MLFLOW_TRACKING_TOKEN"  # bearer token
TRACKING_USERNAME = "MLFLOW_TRACKING_USERNAME"  # HTTP basic authentication
TRACKING_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
TRACKING_SECRET_KEYS = (TRACKING_TOKEN, TRACKING_USERNAME, TRACKING_PASSWORD)

# The drift check Job (builders/drift.py -> `gyre drift run`).
DRIFT_CONFIG = "GYRE_DRIFT_CONFIG"  # the DriftConfig as JSON (drift share, minimum rows, columns, overrides)
PERFORMANCE_CONFIG = (
    "GYRE_PERFORMANCE_CONFIG"  # spec.performance as a PerformanceConfig (JSON); unset: no check
)

# The model server (builders/serving.py -> `gyre serve`).
MODEL_DIR = "GYRE_MODEL_DIR"  # model directory: a local path or a store URL
MODEL_SHA256 = (
    "GYRE_MODEL_SHA256"  # the model digest (sha256 of manifest.json); the server refuses a mismatch
)
MODEL_VERSION = "GYRE_MODEL_VERSION"  # version in URLs and metrics: the TrainingRun that produced the model
MODEL_NAME = "GYRE_MODEL_NAME"  # name in URLs: the ModelDeployment's name
TRACK = "GYRE_TRACK"  # stable or canary, a metrics label
HOST = "GYRE_HOST"  # listen address
PORT = "GYRE_PORT"  # listen port
MAX_BODY_BYTES = "GYRE_MAX_BODY_BYTES"  # largest request body; larger ones get 413
HEADER_TIMEOUT = "GYRE_HEADER_TIMEOUT"  # seconds a connection may take to send a request head (or stay idle)
BODY_TIMEOUT = "GYRE_BODY_TIMEOUT"  # seconds a request body may take to arrive after its head (else 408)
MAX_CONNECTIONS = "GYRE_MAX_CONNECTIONS"  # most open connections; beyond, new ones wait in the listen queue
INFERENCE = "GYRE_INFERENCE"  # auto, onnx or sklearn
ONNX_THREADS = "GYRE_ONNX_THREADS"  # onnxruntime intra-op threads
SKLEARN_WORKERS = "GYRE_SKLEARN_WORKERS"  # threads running scikit-learn predictions
BATCHING = "GYRE_BATCHING"  # whether concurrent requests are coalesced into one model run
MAX_BATCH_ROWS = "GYRE_MAX_BATCH_ROWS"  # most rows in one coalesced model run
MAX_WAIT_MS = "GYRE_MAX_WAIT_MS"  # extra time a batch waits for company
CACHE_DIR = "GYRE_CACHE_DIR"  # where remote model directories are downloaded
DRAIN_SECONDS = "GYRE_DRAIN_SECONDS"  # after SIGTERM: seconds of not-ready serving before the listener closes
SHUTDOWN_TIMEOUT = "GYRE_SHUTDOWN_TIMEOUT"  # longest wait for in-flight requests on shutdown
EXPLAIN = "GYRE_EXPLAIN"  # whether :explain answers (feature attributions, in a worker process of their own)
EXPLAIN_MAX_ROWS = "GYRE_EXPLAIN_MAX_ROWS"  # most rows one :explain request may ask about
LOG_STORE = "GYRE_LOG_STORE"  # store URL of the prediction log; empty turns it off (default: ARTIFACT_STORE)
LOG_SAMPLE_RATE = "GYRE_LOG_SAMPLE_RATE"  # fraction of rows written to the prediction log
LOG_FLUSH_SECONDS = "GYRE_LOG_FLUSH_SECONDS"  # longest time between two prediction-log batches
LOG_MAX_BATCH_ROWS = "GYRE_LOG_MAX_BATCH_ROWS"  # rows that make a prediction-log batch full
DEPLOYMENT = "GYRE_DEPLOYMENT"  # the ModelDeployment, in prediction-log paths
NAMESPACE = "GYRE_NAMESPACE"  # the server's namespace in prediction-log paths; the operator's own namespace
POD_NAME = "POD_NAME"  # the pod's name (downward API), in prediction-log file names
POD_NAMESPACE = "POD_NAMESPACE"  # fallback for NAMESPACE in the server

# Object-store credentials (builders/pods.py store_pod_parts): each is a secretKeyRef to the same-named key of the
# namespace's store Secret (ARTIFACT_SECRET), never a value. botocore (s3fs) and google-auth (gcsfs) read them.
STORE_SECRET_REQUIRED_S3 = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
STORE_SECRET_OPTIONAL_S3 = ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
GCS_CREDENTIALS_KEY = "service-account.json"  # the gs:// Secret's key, mounted as a file
GCS_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"  # path of that file in the pod
STORE_SECRET_MOUNT = "/var/run/secrets/gyre/store"  # where a gs:// store's Secret is mounted (read-only)
STORE_SECRET = (
    "GYRE_STORE_SECRET"  # the Secret's name (not its content), so a pod can say which one is missing
)

# A Dataset's sql source (builders/job.py -> gyre.data.sql): secretKeyRefs to the spec's Secret keys, never values.
SQL_USER = "GYRE_SQL_USER"
SQL_PASSWORD = "GYRE_SQL_PASSWORD"

# The operator itself (the chart -> gyre.builders.settings, gyre.controllers).
ARTIFACT_SECRET = (
    "GYRE_ARTIFACT_SECRET"  # Secret in each namespace holding that namespace's object-store credentials
)
ARTIFACT_PVC_SIZE = "GYRE_ARTIFACT_PVC_SIZE"  # size of the artifact claim created in each namespace
ARTIFACT_STORAGE_CLASS = (
    "GYRE_ARTIFACT_STORAGE_CLASS"  # StorageClass of that claim; empty: the cluster default
)
IMAGE_PULL_POLICY = "GYRE_IMAGE_PULL_POLICY"  # pull policy of every pod the operator creates
ALLOWED_IMAGES = "GYRE_ALLOWED_IMAGES"  # images beside GYRE_IMAGE that workloads may run (comma-separated)
OPERATOR_INSTANCE = "GYRE_OPERATOR_INSTANCE"  # handle only objects labelled with this instance
METRICS_PORT = "GYRE_METRICS_PORT"  # port of the operator's Prometheus metrics; 0 turns them off
NETWORK_POLICY = "GYRE_NETWORK_POLICY"  # true (default): a NetworkPolicy per ModelDeployment; false: none
MONITORING_NAMESPACE = "GYRE_MONITORING_NAMESPACE"  # namespace that policy also admits (e.g. Prometheus)
TRACKING_SECRET = "GYRE_TRACKING_SECRET"  # Secret in each namespace with optional MLFLOW_TRACKING_* keys for GYRE_TRACKING_URI
