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
        description="Reconcile Datasets and TrainingRuns. Settings come from GYRE_* environment variables "
        "(GYRE_ARTIFACT_STORE, GYRE_IMAGE, GYRE_ARTIFACT_SECRET, GYRE_NAMESPACE).",
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
    import logging

    import kopf

    import gyre.controllers.handlers  # noqa: F401  (registers the handlers)
    from gyre.controllers.common import configure, settings

    current = settings()  # fail before connecting when GYRE_* is invalid
    if args.instance:
        configure(current.model_copy(update={"instance": args.instance}))
    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # Timers run every few seconds per object; their "succeeded" lines would drown everything else.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        standalone=args.standalone,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0


def _crds(args: argparse.Namespace) -> int:
    from gyre.api import crdgen

    return crdgen.main(["--write" if args.write else "--print"])
