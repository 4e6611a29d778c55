"""`gyre operator` (run the controllers) and `gyre crds` (print or write the CRDs)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `operator` and `crds` subcommands."""
    op: argparse.ArgumentParser = subparsers.add_parser(
        "operator",
        help="run the Gyre operator (kopf)",
        description="Reconcile the four Gyre kinds (gyre.dev/v1alpha1): a Dataset becomes a profiling Job and a "
        "versioned, fingerprinted copy of its table; a TrainingRun a training Job (an Indexed Job for a search) and a "
        "validated model; a ModelDeployment a Deployment and Service running the model server; a DriftMonitor "
        "scheduled drift-check Jobs and guarded retraining TrainingRuns. Settings come from GYRE_* environment "
        "variables (GYRE_ARTIFACT_STORE, GYRE_IMAGE, GYRE_ARTIFACT_SECRET, GYRE_NAMESPACE, ...), which the chart "
        "sets.",
    )
    scope = op.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    op.add_argument("--standalone", action="store_true", help="no peering: exactly one operator replica runs")
    op.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    op.add_argument(
        "--instance",
        default=None,
        help="handle only objects labelled gyre.dev/operator-instance=INSTANCE (default: only unlabelled ones; "
        "also GYRE_OPERATOR_INSTANCE)",
    )
    op.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run kopf only while holding a coordination.k8s.io Lease, so several replicas can run (default: on "
        "in a cluster where the lease namespace is known, off elsewhere)",
    )
    op.add_argument("--lease-name", default="gyre-operator", help="name of the Lease (default gyre-operator)")
    op.add_argument(
        "--lease-namespace",
        default=None,
        help="namespace of the Lease (default: the pod's, from POD_NAMESPACE or the service account)",
    )
    op.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        help="leaseDurationSeconds: a standby takes over a lease not renewed for this long (default 15)",
    )
    op.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    op.set_defaults(func=_operator)

    crds: argparse.ArgumentParser = subparsers.add_parser(
        "crds", help="print the CustomResourceDefinitions", description="Print (or write) Gyre's CRDs."
    )
    crds.add_argument(
        "--write", action="store_true", help="write them into manifests/crds and charts/gyre/crds"
    )
    crds.set_defaults(func=_crds)


def _operator(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os
    import threading

    import kopf

    import gyre.controllers.handlers  # noqa: F401  (registers the handlers)
    from gyre.api import env
    from gyre.controllers import leader, metrics
    from gyre.controllers.common import configure, recorder, settings

    current = settings()  # fail before connecting when GYRE_* is invalid
    if args.instance:
        configure(current.model_copy(update={"instance": args.instance}))
    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # Timers run every few seconds per object; their "succeeded" lines would drown everything else.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)

    metrics.serve(int(os.environ.get(env.METRICS_PORT, "0") or 0))
    lease_namespace = args.lease_namespace or leader.default_namespace()
    elect = args.leader_election
    if elect is None:
        elect = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and lease_namespace is not None
    if elect and not lease_namespace:
        logging.getLogger(__name__).error("--leader-election needs --lease-namespace (or POD_NAMESPACE)")
        return 2

    # An asyncio.Event on kopf's own loop: a threading.Event would park one of kopf's executor threads on it, and
    # the loop's shutdown would then wait for that thread forever (SIGTERM would hang).
    # uvloop (kopf's extra) when installed: the event loop is where the operator spends most of its CPU.
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    lost = threading.Event()
    elector: leader.Elector | None = None
    if elect:
        assert lease_namespace is not None
        elector = leader.Elector(
            lease_namespace,
            args.lease_name,
            leader.default_identity(),
            leader.Timing.for_duration(args.lease_duration),
        )
        # While standing by, kopf's liveness endpoint is not up yet: answer it ourselves, then free the port.
        with leader.standby_health(args.liveness, elector.alive):
            elector.acquire()

        def on_lost() -> None:
            lost.set()
            recorder.stop()
            loop.call_soon_threadsafe(stop.set)
            # Fencing: if kopf does not stop before a standby may take over, leave anyway.
            grace = max(1.0, elector.timing.duration - elector.timing.renew_deadline - 1)
            timer = threading.Timer(grace, os._exit, args=(1,))
            timer.daemon = True
            timer.start()

        elector.keep(on_lost)
    metrics.LEADER.set(1)
    try:
        kopf.run(
            loop=loop,
            # With a Lease, kopf peering is off: the Lease already guarantees a single active replica.
            standalone=True if elector else args.standalone,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness,
            stop_flag=stop,
        )
        # Handlers still running in threads finish before the Lease is handed over.
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        metrics.LEADER.set(0)
        loop.close()
        if elector is not None:
            elector.stop()
            if not lost.is_set():
                elector.release()  # a graceful stop hands over at once instead of after the lease duration
    if lost.is_set():
        return 1  # the pod restarts and stands by
    return 0


def _crds(args: argparse.Namespace) -> int:
    from gyre.api import crdgen

    return crdgen.main(["--write" if args.write else "--print"])
