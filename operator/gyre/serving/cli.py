"""`gyre serve`: run the model server. Every flag can also be set by an environment variable (GYRE_...), which
is how the ModelDeployment builder configures the container."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from typing import Any

from gyre.api import env

__all__ = ["register", "run_server", "serve"]

log = logging.getLogger("gyre.serving")


def _env(name: str, default: Any) -> Any:
    # Numeric defaults stay strings: argparse converts them with `type` only when `gyre serve` runs, so a bad
    # value in the environment is a usage error of `gyre serve`, not a crash of every `gyre` command.
    return os.environ.get(name, default)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _pod_name(value: str) -> str:
    # Log file names embed the pod name, which must be a DNS-1123 name.
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-.")
    return cleaned or "local"


def register(subparsers: Any) -> None:
    """Add the `serve` subcommand."""
    p = subparsers.add_parser(
        "serve",
        help="serve a model directory over HTTP (KServe v1 + Open Inference Protocol v2)",
        description="Serve a Gyre model directory. Flags default to the GYRE_* environment variables shown.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model-dir",
        default=_env(env.MODEL_DIR, None),
        help=f"model directory: a local path or an fsspec URL (file://, s3://, gs://, memory://) [{env.MODEL_DIR}]",
    )
    p.add_argument("--host", default=_env(env.HOST, "0.0.0.0"), help=f"listen address [{env.HOST}]")
    p.add_argument("--port", type=int, default=_env(env.PORT, "8080"), help=f"listen port [{env.PORT}]")
    p.add_argument(
        "--model-name", default=_env(env.MODEL_NAME, None), help="name in URLs (default: manifest name)"
    )
    p.add_argument(
        "--model-version",
        default=_env(env.MODEL_VERSION, None),
        help="version reported in responses and logs (default: first 12 hex digits of the model's digest) "
        f"[{env.MODEL_VERSION}]",
    )
    p.add_argument(
        "--expect-sha256",
        default=_env(env.MODEL_SHA256, None),
        help="refuse to start unless manifest.json's sha256 is this digest (the manifest pins every other file) "
        f"[{env.MODEL_SHA256}]",
    )
    p.add_argument(
        "--track", default=_env(env.TRACK, ""), help=f"stable or canary, a metrics label [{env.TRACK}]"
    )
    p.add_argument(
        "--inference",
        choices=("auto", "onnx", "sklearn"),
        default=_env(env.INFERENCE, "auto"),
        help=f"auto: onnxruntime when the manifest's ONNX export is verified, else scikit-learn [{env.INFERENCE}]",
    )
    p.add_argument(
        "--onnx-threads",
        type=int,
        default=_env(env.ONNX_THREADS, "1"),
        help="onnxruntime intra-op threads",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=_env(env.MAX_BODY_BYTES, "1048576"),
        help=f"largest request body; larger ones get 413 [{env.MAX_BODY_BYTES}]",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=_env(env.HEADER_TIMEOUT, "15"),
        help="seconds a connection may take to send a complete request head after opening or after its last "
        f"answer (this also closes idle keep-alive connections) [{env.HEADER_TIMEOUT}]",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=_env(env.BODY_TIMEOUT, "30"),
        help=f"seconds a request body may take to arrive after its head; slower ones get 408 [{env.BODY_TIMEOUT}]",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=_env(env.MAX_CONNECTIONS, "1024"),
        help="most open connections; at this many the server stops accepting and new connections wait in the "
        f"listen queue [{env.MAX_CONNECTIONS}]",
    )
    p.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=_env_bool(env.BATCHING, True),
        help=f"coalesce concurrent requests into one model run [{env.BATCHING}]",
    )
    p.add_argument(
        "--max-batch-rows",
        type=int,
        default=_env(env.MAX_BATCH_ROWS, "0"),
        help="most rows per coalesced model run; 0 picks 256 with onnxruntime, 4096 with scikit-learn "
        f"[{env.MAX_BATCH_ROWS}]",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=_env(env.MAX_WAIT_MS, "0.0"),
        help=f"extra time a batch waits for company; 0 = flush on the next event-loop turn [{env.MAX_WAIT_MS}]",
    )
    p.add_argument(
        "--sklearn-workers",
        type=int,
        default=_env(env.SKLEARN_WORKERS, "1"),
        help=f"threads running scikit-learn predictions [{env.SKLEARN_WORKERS}]",
    )
    p.add_argument(
        "--explain",
        action=argparse.BooleanOptionalAction,
        default=_env_bool(env.EXPLAIN, False),
        help="answer POST /v1/models/MODEL:explain with feature attributions, computed in a worker process of "
        f"their own (docs/explanations.md) [{env.EXPLAIN}]",
    )
    p.add_argument(
        "--explain-max-rows",
        type=int,
        default=_env(env.EXPLAIN_MAX_ROWS, "100"),
        help=f"most rows one :explain request may ask about [{env.EXPLAIN_MAX_ROWS}]",
    )
    p.add_argument(
        "--cache-dir",
        default=_env(env.CACHE_DIR, os.path.join(os.path.expanduser("~"), ".cache", "gyre", "models")),
        help=f"where remote model directories are downloaded [{env.CACHE_DIR}]",
    )
    p.add_argument(
        "--log-store",
        default=_env(env.LOG_STORE, _env(env.ARTIFACT_STORE, "")),
        help="artifact store URL for the prediction log and the feedback endpoint's labels; empty disables both "
        f"[{env.LOG_STORE}, {env.ARTIFACT_STORE}]",
    )
    p.add_argument(
        "--log-sample-rate",
        type=float,
        default=_env(env.LOG_SAMPLE_RATE, "1.0"),
        help=f"fraction of rows logged [{env.LOG_SAMPLE_RATE}]",
    )
    p.add_argument(
        "--log-flush-seconds",
        type=float,
        default=_env(env.LOG_FLUSH_SECONDS, "10.0"),
        help=f"write a log batch at least this often [{env.LOG_FLUSH_SECONDS}]",
    )
    p.add_argument(
        "--log-max-batch-rows",
        type=int,
        default=_env(env.LOG_MAX_BATCH_ROWS, "1000"),
        help=f"write a log batch when it holds this many rows [{env.LOG_MAX_BATCH_ROWS}]",
    )
    p.add_argument(
        "--namespace",
        default=_env(env.NAMESPACE, _env(env.POD_NAMESPACE, "default")),
        help=f"namespace in prediction-log paths [{env.NAMESPACE}, {env.POD_NAMESPACE}]",
    )
    p.add_argument(
        "--deployment",
        default=_env(env.DEPLOYMENT, None),
        help=f"deployment in prediction-log paths (default: model name) [{env.DEPLOYMENT}]",
    )
    p.add_argument(
        "--pod",
        default=_env(env.POD_NAME, _env("HOSTNAME", "local")),
        help=f"pod name in prediction-log file names [{env.POD_NAME}, HOSTNAME]",
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=_env(env.DRAIN_SECONDS, "0.0"),
        help="on SIGTERM, report not-ready and keep serving this long before closing the listener "
        f"[{env.DRAIN_SECONDS}]",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=_env(env.SHUTDOWN_TIMEOUT, "30.0"),
        help=f"longest wait for in-flight requests on shutdown [{env.SHUTDOWN_TIMEOUT}]",
    )
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Load the model (refusing on any integrity problem) and serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.model_dir:
        print(f"gyre serve: --model-dir (or {env.MODEL_DIR}) is required", file=sys.stderr)
        return 2
    from gyre.serving.model import ModelLoadError, load_served_model

    try:
        model = load_served_model(
            args.model_dir,
            cache_dir=args.cache_dir,
            inference=args.inference,
            name=args.model_name,
            version=args.model_version,
            expect_sha256=args.expect_sha256,
            onnx_threads=args.onnx_threads,
        )
    except ModelLoadError as exc:
        from gyre.store import write_termination_message

        # One line: the pod's termination message and the log's last line are the reason, whole.
        reason = " ".join(f"gyre serve: cannot serve {args.model_dir}: {exc}".split())
        print(reason, file=sys.stderr)
        write_termination_message(reason, echo=False)
        return 1
    try:
        import uvloop  # optional; noticeably faster when installed

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(run_server(model, args))


async def run_server(model: Any, args: argparse.Namespace) -> int:
    """Serve `model` until a signal; then go unready, drain, stop accepting, finish in-flight work, flush logs."""
    from aiohttp import web

    from gyre.serving.app import CappedSite, ModelServer, ServerConfig
    from gyre.serving.feedback import FeedbackWriter
    from gyre.serving.predlog import PredictionLogger, WriterOptions

    logger = feedback = None
    if args.log_store:
        from gyre.store.store import ArtifactStore, StoreError

        try:
            store = ArtifactStore(args.log_store)
        except StoreError as exc:
            print(f"gyre serve: prediction log store: {exc}", file=sys.stderr)
            return 1
        # The prediction log and the feedback endpoint's labels: same store, same flushing.
        where = WriterOptions(
            namespace=args.namespace,
            deployment=args.deployment or model.name,
            pod=_pod_name(args.pod),
            max_batch_rows=args.log_max_batch_rows,
            flush_interval_s=args.log_flush_seconds,
        )
        feedback = FeedbackWriter(store, **where)
        if args.log_sample_rate > 0:
            logger = PredictionLogger(
                store,
                model=model.name,
                version=model.version,
                feature_names=model.schema.names,
                sample_rate=args.log_sample_rate,
                **where,
            )
    config = ServerConfig(
        max_body_bytes=args.max_body_bytes,
        batching=args.batching,
        max_batch_rows=args.max_batch_rows or None,
        max_wait_ms=args.max_wait_ms,
        sklearn_workers=args.sklearn_workers,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        max_connections=args.max_connections,
        explain=args.explain,
        explain_max_rows=args.explain_max_rows,
    )
    # Signal handlers first: a SIGTERM that arrives as soon as readiness turns true must still drain gracefully.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = ModelServer(model, config, prediction_logger=logger, feedback_writer=feedback, track=args.track)
    runner = web.ServerRunner(server.server(access_log=None), shutdown_timeout=args.shutdown_timeout)
    await runner.setup()
    site = CappedSite(runner, args.host, args.port, backlog=2048)
    try:
        await site.start()
    except (OSError, OverflowError) as exc:  # port in use, an address this host does not have, a bad port
        await runner.cleanup()
        await server.close()
        from gyre.cli import report_error

        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        report_error(args, f"gyre serve: cannot listen on {args.host}:{args.port}: {why}")
        return 1
    await server.start()
    log.info(
        "serving %s (version %s, %s) on http://%s:%d; prediction log %s, feedback %s; explanations %s; "
        "limits: %d connections, header %gs, body %gs, %d body bytes, shutdown %gs",
        model.name,
        model.version,
        model.inference_path,
        args.host,
        site.port,
        "on" if logger else "off",
        "on" if feedback else "off (no artifact store)",
        "on" if args.explain else "off",
        args.max_connections,
        args.header_timeout,
        args.body_timeout,
        args.max_body_bytes,
        args.shutdown_timeout,
    )
    await stop.wait()
    log.info("shutting down: readiness off, draining for %.1fs", args.drain_seconds)
    server.begin_drain()
    if args.drain_seconds > 0:
        await asyncio.sleep(args.drain_seconds)
    # Close the listener and wait for in-flight requests (up to shutdown_timeout); then finish batches, flush the log.
    await runner.cleanup()
    await server.close()
    log.info("stopped")
    return 0
