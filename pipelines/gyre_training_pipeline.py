"""A Kubeflow Pipelines (v2) pipeline running Gyre's own code: fingerprint -> profile -> train -> gates.

Each step is a lightweight Python component on the Gyre image calling the same functions as the operator's Jobs
(`gyre profile`, `gyre train`, `gyre model gates`), so a model trained here has the same artifact layout, manifest,
fingerprint check and ONNX verification as a TrainingRun; `kfp.local` runs the whole pipeline without Docker
(tests/unit/training/test_training_pipeline.py).

- The image is the pipeline parameter `image` (every step's container image, set at run time).
- Outputs are typed KFP artifacts: the profiled Dataset, the trained Model (with its store URI and digest as
  metadata) and its Metrics (each metric logged), so the KFP UI shows metrics and lineage.
- Caching is keyed on the data: `fingerprint` (never cached) hashes the source's table content, and `profile`
  takes that fingerprint as an input, so a changed object at the same URI is profiled again and an unchanged one
  is not. `train` is keyed on the profiled Dataset, so it follows.
- Store credentials come from the Kubernetes Secret `store_secret` (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
  and optional AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, as the chart's artifactStore.secretName)
  through kfp-kubernetes; without that Secret the pods use the platform's identity.

The artifact store must be reachable from every step (s3:// or gs://); `file://` only works when all steps share a
volume (or locally). Compile: `python pipelines/gyre_training_pipeline.py [OUT.yaml]` (default:
pipelines/gyre_training_pipeline.yaml, committed and checked by the unit tests).
"""

import sys
from pathlib import Path

from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset, Input, Metrics, Model, Output

__all__ = [
    "DEFAULT_IMAGE",
    "OUTPUT",
    "STORE_KEYS",
    "compile_pipeline",
    "fingerprint_op",
    "gates_op",
    "gyre_training_pipeline",
    "profile_op",
    "train_op",
]

DEFAULT_IMAGE = "gyre:dev"
OUTPUT = Path(__file__).with_name("gyre_training_pipeline.yaml")
# The object-store keys a step may take from the store Secret (each one optional).
STORE_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
)

# The Gyre image carries kfp, so the steps install nothing at run time (the image runs as a non-root user).
component = dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)


@component
def fingerprint_op(source: str) -> str:
    """The sha256 fingerprint of the source's table content (reads it, writes nothing): profile's cache key."""
    from gyre.data.fingerprint import fingerprint_frame
    from gyre.data.sources import load_source

    return fingerprint_frame(load_source(source))


@component
def profile_op(
    store: str,
    namespace: str,
    name: str,
    source: str,
    target: str,
    fingerprint: str,
    dataset: Output[Dataset],
) -> None:
    """Profile the source: content-addressed parquet copy and reference profile in the store, report in `dataset`.

    `fingerprint` is the cache key: the step fails if the content it reads is not the content fingerprinted."""
    import json
    import os
    import tempfile

    from gyre import cli
    from gyre.api import env

    with tempfile.TemporaryDirectory() as tmp:
        os.environ[env.TERMINATION_LOG] = report_path = os.path.join(tmp, "report.json")
        code = cli.main(
            ["profile", "--store", store, "--namespace", namespace, "--name", name, "--source", source]
            + (["--target", target] if target else [])
        )
        with open(report_path) as f:
            report = json.load(f)
    if code != 0:
        raise RuntimeError(f"profiling failed ({report.get('reason')}): {report.get('error')}")
    if report["fingerprint"] != fingerprint:
        raise RuntimeError(
            f"{source} changed while the pipeline ran: {fingerprint} -> {report['fingerprint']}"
        )
    with open(dataset.path, "w") as f:
        json.dump(report, f)
    keys = ("fingerprint", "rows", "target", "dataUri", "profileUri")
    dataset.metadata.update({k: report[k] for k in keys if report.get(k) is not None})


@component
def train_op(
    store: str,
    run: str,
    training_spec: str,
    dataset: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
) -> None:
    """Train on the profiled version (fingerprint checked); the model directory goes to the store, its report,
    store URI and digest to `model`, and every metric to `metrics`."""
    import json
    import os
    import tempfile

    from gyre import cli
    from gyre.api import env

    os.environ[env.TRAINING_SPEC] = training_spec
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[env.TERMINATION_LOG] = report_path = os.path.join(tmp, "report.json")
        code = cli.main(["train", "--store", store, "--run", run, "--dataset-report", dataset.path])
        with open(report_path) as f:
            report = json.load(f)
    if code != 0 or report.get("phase") != "Succeeded":
        raise RuntimeError(f"training failed ({report.get('reason')}): {report.get('error')}")
    with open(model.path, "w") as f:
        json.dump(report, f)
    keys = ("modelUri", "modelSha256", "estimator", "task", "onnx", "datasetFingerprint")
    model.metadata.update({k: report[k] for k in keys if report.get(k) is not None})
    model.metadata["gatesPassed"] = bool((report.get("gates") or {"passed": True})["passed"])
    for metric, value in sorted(report.get("metrics", {}).items()):
        metrics.log_metric(metric, value)


@component
def gates_op(model: Input[Model]) -> None:
    """Fail the pipeline when the model did not pass its validation gates."""
    from gyre import cli

    code = cli.main(["model", "gates", "--report", model.path])
    if code != 0:
        raise RuntimeError(
            f"{model.metadata.get('modelUri')} did not pass its gates (gyre model gates: {code})"
        )


@dsl.pipeline(
    name="gyre-training",
    description="Fingerprint and profile a dataset, train a Gyre model on it, check its gates.",
)
def gyre_training_pipeline(
    store: str,
    image: str = DEFAULT_IMAGE,
    store_secret: str = "gyre-store",
    source: str = "builtin://iris",
    target: str = "target",
    namespace: str = "kubeflow",
    dataset: str = "iris",
    run: str = "kubeflow/iris-rf",
    training_spec: str = (
        '{"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier", "params": '
        '{"n_estimators": 100}}, "gates": [{"metric": "accuracy", "min": 0.9}]}'
    ),
    check_gates: bool = True,
) -> Model:
    """fingerprint -> profile -> train -> (optional) gates; returns the trained Model."""

    def on_gyre(task: dsl.PipelineTask, name: str) -> dsl.PipelineTask:
        task.set_display_name(name)
        task.set_container_image(image)
        kubernetes.use_secret_as_env(
            task, secret_name=store_secret, secret_key_to_env={k: k for k in STORE_KEYS}, optional=True
        )
        return task

    fingerprinted = on_gyre(fingerprint_op(source=source), "fingerprint")
    fingerprinted.set_caching_options(False)  # must re-read the source every run: it is the cache key
    profiled = on_gyre(
        profile_op(
            store=store,
            namespace=namespace,
            name=dataset,
            source=source,
            target=target,
            fingerprint=fingerprinted.output,
        ),
        "profile",
    )
    trained = on_gyre(
        train_op(store=store, run=run, training_spec=training_spec, dataset=profiled.outputs["dataset"]),
        "train",
    )
    with dsl.If(check_gates == True):  # noqa: E712 - kfp builds a condition from the comparison
        on_gyre(gates_op(model=trained.outputs["model"]), "gates")
    return trained.outputs["model"]


def compile_pipeline(path: Path = OUTPUT) -> Path:
    """Compile the pipeline to IR YAML at `path`."""
    compiler.Compiler().compile(gyre_training_pipeline, str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
