"""`gyre train` (the training Job's entrypoint, and `--local` runs) and `gyre model import`."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from gyre.api import env

__all__ = ["parse_param", "register"]


def parse_param(text: str) -> tuple[str, Any]:
    """`k=v` -> (k, v) with v parsed as JSON when it is JSON (numbers, true, null, lists), else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def register(subparsers: Any) -> None:
    """Add `train` and `model import`."""
    train: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a model (runs in the TrainingRun's Job, or locally with --local)",
        description=f"In-pod: reads the TrainingRun spec from ${env.TRAINING_SPEC}, trains on --dataset-uri, "
        "writes the model directory to the store and a compact report to the termination log. Local: --local "
        "--dataset URI "
        "--target COL --estimator NAME --out DIR runs the same trainer in-process.",
    )
    train.add_argument("--store", help="artifact store URL (in-pod mode)")
    train.add_argument("--run", help="NAMESPACE/NAME of the TrainingRun (in-pod mode)")
    train.add_argument("--dataset-uri", help="content-addressed data of the Dataset version (in-pod mode)")
    train.add_argument("--dataset-fingerprint", help="expected sha256:<hex> of the data (in-pod mode)")
    train.add_argument(
        "--dataset-version", type=int, default=None, help="Dataset version number (for lineage)"
    )
    train.add_argument(
        "--dataset-report",
        metavar="FILE|JSON",
        help="a `gyre profile` report (file or inline JSON) giving --dataset-uri, --dataset-fingerprint, --target",
    )
    train.add_argument(
        "--trial-index", type=int, default=None, help="search trial (default: $JOB_COMPLETION_INDEX)"
    )
    train.add_argument("--target", default=None, help="target column (overrides spec.target)")
    train.add_argument("--local", action="store_true", help="train in-process from flags, no cluster")
    train.add_argument("--dataset", help="source URI for --local (builtin://iris, file:///data.csv, ...)")
    train.add_argument("--format", choices=("auto", "csv", "parquet"), default="auto", help="dataset format")
    train.add_argument("--estimator", help="estimator name for --local (e.g. RandomForestClassifier)")
    train.add_argument("--param", action="append", type=parse_param, default=[], metavar="KEY=VALUE")
    train.add_argument(
        "--early-stopping",
        type=int,
        default=None,
        metavar="ROUNDS",
        help="XGBoost/LightGBM kinds for --local: stop after ROUNDS rounds without improvement on a validation part",
    )
    train.add_argument(
        "--validation-fraction", type=float, default=0.1, help="the training rows --early-stopping watches"
    )
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--test-size", type=float, default=0.2)
    train.add_argument("--metric", action="append", default=None, help="metric to compute first (repeatable)")
    train.add_argument("--name", default=None, help="model name for --local (default: the output dir's name)")
    train.add_argument("--out", help="output model directory for --local")
    train.add_argument(
        "--features",
        metavar="FILE",
        help="for --local: a YAML file holding spec.features (columns, transforms), or a TrainingRun manifest "
        "whose spec.features is used",
    )
    train.add_argument("--no-onnx", action="store_true", help="skip the ONNX conversion")
    train.add_argument(
        "--slices",
        metavar="FILE",
        help="for --local: a YAML file holding spec.slices (columns, excludeFromFeatures, metrics, minCount, gates; "
        "docs/fairness.md), or a TrainingRun manifest whose spec.slices is used",
    )
    train.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        metavar="URL",
        help="for --local: log the run to this MLflow tracking server (default: $MLFLOW_TRACKING_URI); "
        "credentials from $MLFLOW_TRACKING_TOKEN or $MLFLOW_TRACKING_USERNAME/_PASSWORD",
    )
    train.add_argument(
        "--experiment", default=None, help="for --local: the MLflow experiment (default: local/<name>)"
    )
    train.set_defaults(func=_train)

    model: argparse.ArgumentParser = subparsers.add_parser("model", help="model artifact tools")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    imp: argparse.ArgumentParser = model_sub.add_parser(
        "import",
        help="turn a joblib (trusted) or skops model into a Gyre model directory",
        description="Loads a joblib file (only with --trust-pickle: unpickling runs code from the file) or a skops "
        "file (its types are checked against Gyre's allowlist first), saves it as skops, converts it to ONNX and "
        "keeps the ONNX twin only when it gives scikit-learn's answers on --sample-data rows or, without them, on "
        "rows generated from the model's tree splits and learnt feature ranges; then writes manifest.json.",
    )
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-joblib", dest="from_joblib", metavar="FILE", help="a joblib/pickle file")
    source.add_argument("--from-skops", dest="from_skops", metavar="FILE", help="a skops file (no pickle)")
    source.add_argument(
        "--from-onnx",
        dest="from_onnx",
        metavar="FILE",
        help="an ONNX graph served as it is; declare its signature with --feature-names (its inputs, one per "
        "feature or one [N, F] tensor), --categorical (string inputs), --task and, for a classifier, --classes",
    )
    imp.add_argument(
        "--task", choices=("classification", "regression"), help="the ONNX graph's task (--from-onnx)"
    )
    imp.add_argument(
        "--classes",
        default="",
        help="comma-separated class labels in the order of the ONNX graph's probabilities (--from-onnx); numbers "
        "are read as numbers",
    )
    imp.add_argument(
        "--sample-data",
        metavar="FILE",
        help="CSV or Parquet rows (with the feature columns) to verify the ONNX twin on; default: rows generated "
        "from the model",
    )
    imp.add_argument(
        "--no-onnx", action="store_true", help="skip the ONNX conversion (serve with scikit-learn)"
    )
    imp.add_argument("--name", required=True)
    imp.add_argument("--feature-names", required=True, help="comma-separated input feature names, in order")
    imp.add_argument(
        "--categorical", default="", help="comma-separated features that are categorical strings"
    )
    imp.add_argument("--target-name", default="target")
    imp.add_argument("--out", required=True, metavar="DIR")
    imp.add_argument("--trust-pickle", action="store_true", help="I trust this file; allow unpickling it")
    imp.add_argument(
        "--allow-type",
        action="append",
        default=[],
        dest="allow_types",
        metavar="TYPE",
        help="allow this module-qualified type or function (e.g. numpy.log1p) beyond Gyre's allowlist; "
        "repeatable. Recorded in manifest.json and honoured only when the model is served pinned to its digest",
    )
    imp.set_defaults(func=_import)

    gates: argparse.ArgumentParser = model_sub.add_parser(
        "gates",
        help="exit 0 when a training report passed its gates, 3 when not",
        description="Reads a `gyre train` report (termination message or report.json) and fails when the model "
        "did not pass its validation gates: a promotion step for pipelines.",
    )
    gates.add_argument("--report", required=True, metavar="FILE|JSON", help="report file or inline JSON")
    gates.set_defaults(func=_gates)


def _read_json_arg(value: str) -> str:
    # Pipelines pass a step's report either as a file path or inline as the JSON itself.
    if value.lstrip().startswith("{"):
        return value
    with open(value, encoding="utf-8") as fh:
        return fh.read()


def _emit(report: Any, *, local: bool = False) -> int:
    """The report in the termination log, and on stdout, except a local failure: one line on stderr instead."""
    import sys

    from gyre.store import write_termination_message

    failed = report.phase != "Succeeded"
    # The termination log gets the report either way (a pod running --local reads it); stdout only on success.
    write_termination_message(report.to_termination_message(), echo=not (local and failed))
    if local and failed:
        sys.stderr.write(f"gyre train: {report.reason}: {' '.join(str(report.error).split())}\n")
    return 1 if failed else 0


def _fail(reason: str, message: str, *, local: bool = False) -> int:
    from gyre.training.report import TrainReport

    return _emit(TrainReport(phase="Failed", reason=reason, error=message), local=local)


def _train(args: argparse.Namespace) -> int:
    return _train_local(args) if args.local else _train_pod(args)


def _train_local(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from gyre.api.trainingrun import TrainingRunSpec
    from gyre.training.run import TrainJob, run_training

    missing = [
        flag
        for flag, value in (
            ("--dataset", args.dataset),
            ("--target", args.target),
            ("--estimator", args.estimator),
            ("--out", args.out),
        )
        if not value
    ]
    if missing:
        return _fail("InvalidArguments", f"--local needs {', '.join(missing)}", local=True)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        return _fail(
            "InvalidArguments", f"--out {args.out} is a file; give a directory for the model", local=True
        )
    if not getattr(args, "verbose", False):
        # The failure is reported in one line below; the trainer's log would add its traceback.
        import logging

        logging.getLogger("gyre.training.run").setLevel(logging.CRITICAL)
    name = args.name or os.path.basename(os.path.abspath(args.out)).lower() or "model"
    try:
        features = _read_features(args.features) if args.features else None
        slices = _read_spec_part(args.slices, "slices") if args.slices else None
        spec = TrainingRunSpec.model_validate(
            {
                "datasetRef": {"name": "local"},
                "target": args.target,
                "features": features,
                "slices": slices,
                "estimator": {
                    "kind": args.estimator,
                    "params": dict(args.param) or None,
                    "earlyStopping": None
                    if args.early_stopping is None
                    else {"rounds": args.early_stopping, "validationFraction": args.validation_fraction},
                },
                "split": {"testSize": args.test_size, "seed": args.seed},
                "metrics": args.metric,
            }
        )
    except (OSError, ValidationError, yaml.YAMLError) as exc:
        return _fail("InvalidArguments", " ".join(str(exc).split()), local=True)
    job = TrainJob(
        spec=spec,
        dataset_uri=args.dataset,
        dataset_format=args.format,
        namespace="local",
        name=name,
        target=args.target,
        out_dir=args.out,
        trigger="local",
        onnx=not args.no_onnx,
        tracking=_local_tracking(args, name),
    )
    return _emit(run_training(job), local=True)


def _local_tracking(args: argparse.Namespace, name: str) -> Any:
    """The MLflow target of a --local run: a fresh run each time (its own uid), credentials from MLflow's env."""
    import uuid

    from gyre.tracking.mlflow import TrackingTarget

    if not args.tracking_uri:
        return None
    environ = {
        **os.environ,
        env.TRACKING_URI: args.tracking_uri,
        env.TRACKING_EXPERIMENT: args.experiment or f"local/{name}",
        env.TRAINING_RUN_UID: f"local-{uuid.uuid4()}",
    }
    return TrackingTarget.from_env(environ)


def _read_features(path: str) -> Any:
    return _read_spec_part(path, "features")


def _read_spec_part(path: str, key: str) -> Any:
    """A YAML file holding spec.<key> itself, or a TrainingRun manifest whose spec.<key> is taken."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if isinstance(doc, dict) and doc.get("kind") == "TrainingRun":
        return (doc.get("spec") or {}).get(key)
    return doc


def _train_pod(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from gyre.api.dataset import ColumnKind
    from gyre.api.trainingrun import TrainingRunSpec
    from gyre.data.report import ProfileReport
    from gyre.tracking.mlflow import TrackingTarget
    from gyre.training.run import TrainJob, run_training

    if args.dataset_report:
        try:
            profiled = ProfileReport.from_termination_message(_read_json_arg(args.dataset_report))
        except (OSError, ValidationError) as exc:
            return _fail("InvalidArguments", f"cannot read the dataset report {args.dataset_report}: {exc}")
        if profiled.phase != "Succeeded" or not profiled.data_uri:
            return _fail(
                "DatasetNotReady", f"the dataset report says {profiled.phase}: {profiled.error or ''}"
            )
        args.dataset_uri = args.dataset_uri or profiled.data_uri
        args.dataset_fingerprint = args.dataset_fingerprint or profiled.fingerprint
        args.target = args.target or profiled.target

    missing = [
        flag
        for flag, value in (("--store", args.store), ("--run", args.run), ("--dataset-uri", args.dataset_uri))
        if not value
    ]
    if missing:
        return _fail("InvalidArguments", f"missing {', '.join(missing)} (or use --local)")
    namespace, sep, name = args.run.partition("/")
    if not sep or not namespace or not name:
        return _fail("InvalidArguments", f"--run must be NAMESPACE/NAME, got {args.run!r}")
    raw = os.environ.get(env.TRAINING_SPEC)
    if not raw:
        return _fail(
            "InvalidSpec", f"${env.TRAINING_SPEC} is not set; it must hold the TrainingRun spec as JSON"
        )
    try:
        spec = TrainingRunSpec.model_validate_json(raw)
    except ValidationError as exc:
        return _fail("InvalidSpec", f"${env.TRAINING_SPEC} is not a valid TrainingRun spec: {exc}")
    trial = args.trial_index
    if trial is None and spec.search is not None:
        index = os.environ.get(env.JOB_COMPLETION_INDEX)
        if index is None or not index.isdigit():
            return _fail(
                "InvalidSearch", "spec.search is set but neither --trial-index nor JOB_COMPLETION_INDEX is"
            )
        trial = int(index)
    kinds: dict[str, Any] = {}
    columns_raw = os.environ.get(env.DATASET_COLUMNS)
    if columns_raw:
        try:
            columns = TypeAdapter(list[dict[str, Any]]).validate_json(columns_raw)
            known = {kind.value for kind in ColumnKind}
            kinds = {str(c["name"]): ColumnKind(c["kind"]) for c in columns if c.get("kind") in known}
        except (ValidationError, KeyError) as exc:
            return _fail("InvalidSpec", f"${env.DATASET_COLUMNS} is not a list of {{name, kind}}: {exc}")
    version_raw = (
        str(args.dataset_version)
        if args.dataset_version is not None
        else os.environ.get(env.DATASET_VERSION, "")
    )
    job = TrainJob(
        spec=spec,
        dataset_uri=args.dataset_uri,
        dataset_format=args.format,
        namespace=namespace,
        name=name,
        target=args.target,
        dataset_fingerprint=args.dataset_fingerprint,
        dataset_version=int(version_raw) if version_raw.isdigit() else None,
        trial_index=trial,
        store_url=args.store,
        kinds=kinds,
        trigger=os.environ.get(env.TRIGGER) or "manual",
        onnx=not args.no_onnx,
        tracking=TrackingTarget.from_env(os.environ),
    )
    return _emit(run_training(job))


def _import(args: argparse.Namespace) -> int:
    import sys

    from gyre.training.artifact import UntrustedModelError
    from gyre.training.importer import ImportError_, import_joblib, import_onnx, import_skops

    common: dict[str, Any] = {
        "name": args.name,
        "feature_names": [n.strip() for n in args.feature_names.split(",")],
        "categorical": [n.strip() for n in args.categorical.split(",") if n.strip()],
        "target_name": args.target_name,
        "out_dir": args.out,
        "allow_types": args.allow_types,
        "sample_data": args.sample_data,
        "onnx": not args.no_onnx,
    }
    try:
        if args.from_onnx:
            if not args.task:
                raise ImportError_("--from-onnx needs --task classification or --task regression")
            manifest = import_onnx(
                args.from_onnx,
                name=args.name,
                feature_names=common["feature_names"],
                categorical=common["categorical"],
                target_name=args.target_name,
                out_dir=args.out,
                task=args.task,
                classes=[_label(c.strip()) for c in args.classes.split(",") if c.strip()] or None,
            )
        elif args.from_skops:
            manifest = import_skops(args.from_skops, **common)
        else:
            manifest = import_joblib(args.from_joblib, trust_pickle=args.trust_pickle, **common)
    except (ImportError_, UntrustedModelError) as exc:
        from gyre.cli import report_error

        report_error(args, f"gyre model import: {exc}")
        return 2
    onnx = manifest.onnx
    if onnx.status == "imported":
        served = f"served with onnxruntime: {onnx.reason}"
    elif onnx.status == "verified":
        served = f"ONNX twin verified on {onnx.verified_rows} rows ({onnx.verified_on}): {onnx.reason}"
    else:
        served = f"no ONNX twin ({onnx.reason}); it will be served with scikit-learn"
    sys.stdout.write(
        f"imported {manifest.estimator} ({manifest.task}) into {args.out}; {served}; "
        f"digest (pin) {manifest.sha256()}\n"
    )
    return 0


def _label(text: str) -> Any:
    """A class label from the command line: a JSON number or boolean as such, anything else as text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


def _gates(args: argparse.Namespace) -> int:
    import sys

    from pydantic import ValidationError

    from gyre.training.report import TrainReport

    try:
        report = TrainReport.model_validate_json(_read_json_arg(args.report))
    except (OSError, ValidationError) as exc:
        sys.stderr.write(f"gyre model gates: cannot read {args.report}: {exc}\n")
        return 2
    if report.phase != "Succeeded":
        sys.stderr.write(f"training failed ({report.reason}): {report.error}\n")
        return 3
    if report.gates is not None and not report.gates.passed:
        sys.stderr.write(f"gates failed: {report.gates.message}\n")
        return 3
    sys.stdout.write(f"gates passed: {report.gates.message if report.gates else 'no gates'}\n")
    return 0
