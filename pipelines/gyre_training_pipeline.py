"""A Kubeflow Pipelines (v2) pipeline running Gyre's own entrypoints: profile -> train -> gates.

Each step is a container component on the Gyre image calling the same CLI the operator's Jobs call, so a model
trained here has the same artifact layout, manifest, fingerprint check and ONNX verification as a TrainingRun.
Results travel between steps as the compact JSON reports (a string output read by the next step) (`gyre profile` / `gyre train` write them to
$GYRE_TERMINATION_LOG, here pointed at a KFP output file). The artifact store must be reachable from every step
(s3:// or gs:// with credentials in the pods' environment); `file://` only works when all steps share a volume.

Compile: `python pipelines/gyre_training_pipeline.py [OUT.yaml]` (default: pipelines/gyre_training_pipeline.yaml).
"""

import sys
from pathlib import Path

from kfp import compiler, dsl

__all__ = [
    "DEFAULT_IMAGE",
    "OUTPUT",
    "compile_pipeline",
    "gates_op",
    "gyre_training_pipeline",
    "profile_op",
    "train_op",
]

DEFAULT_IMAGE = "gyre:dev"
OUTPUT = Path(__file__).with_name("gyre_training_pipeline.yaml")

# `sh -c SCRIPT ARG0 ARG1 ...`: the report path arrives as $0, the rest as "$@".
_PROFILE = 'mkdir -p "$(dirname "$0")" && GYRE_TERMINATION_LOG="$0" exec gyre profile "$@"'
_TRAIN = 'mkdir -p "$(dirname "$0")" && GYRE_TRAINING_SPEC="$1" && export GYRE_TRAINING_SPEC && shift && GYRE_TERMINATION_LOG="$0" exec gyre train "$@"'


@dsl.container_component
def profile_op(
    store: str,
    namespace: str,
    name: str,
    source: str,
    target: str,
    report: dsl.OutputPath(str),  # type: ignore[valid-type]
) -> dsl.ContainerSpec:
    """Profile the source: content-addressed parquet copy, reference profile, report."""
    return dsl.ContainerSpec(
        image=DEFAULT_IMAGE,
        command=["sh", "-c", _PROFILE],
        args=[
            report,
            "--store",
            store,
            "--namespace",
            namespace,
            "--name",
            name,
            "--source",
            source,
            "--target",
            target,
        ],
    )


@dsl.container_component
def train_op(
    store: str,
    run: str,
    training_spec: str,
    dataset_report: str,
    report: dsl.OutputPath(str),  # type: ignore[valid-type]
) -> dsl.ContainerSpec:
    """Train on the profiled version (fingerprint checked) and write the model directory to the store."""
    return dsl.ContainerSpec(
        image=DEFAULT_IMAGE,
        command=["sh", "-c", _TRAIN],
        args=[report, training_spec, "--store", store, "--run", run, "--dataset-report", dataset_report],
    )


@dsl.container_component
def gates_op(train_report: str) -> dsl.ContainerSpec:
    """Fail the pipeline when the model did not pass its validation gates."""
    return dsl.ContainerSpec(
        image=DEFAULT_IMAGE, command=["gyre", "model", "gates"], args=["--report", train_report]
    )


@dsl.pipeline(
    name="gyre-training", description="Profile a dataset, train a Gyre model on it, check its gates."
)
def gyre_training_pipeline(
    store: str,
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
) -> None:
    """profile -> train -> (optional) gates."""
    profiled = profile_op(store=store, namespace=namespace, name=dataset, source=source, target=target)
    profiled.set_display_name("profile")
    trained = train_op(
        store=store, run=run, training_spec=training_spec, dataset_report=profiled.outputs["report"]
    )
    trained.set_display_name("train")
    with dsl.If(check_gates == True):  # noqa: E712 - kfp builds a condition from the comparison
        gated = gates_op(train_report=trained.outputs["report"])
        gated.set_display_name("gates")


def compile_pipeline(path: Path = OUTPUT) -> Path:
    """Compile the pipeline to IR YAML at `path`."""
    compiler.Compiler().compile(gyre_training_pipeline, str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
