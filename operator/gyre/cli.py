"""The `gyre` command line.

Each area registers its own subcommands, imported lazily so that `gyre serve` never pays for kopf and
`gyre operator` never pays for onnxruntime.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules exposing `register(subparsers) -> None`; each subcommand sets `func` on its parser.
_COMMAND_MODULES = (
    "gyre.controllers.cli",  # operator, crds
    "gyre.data.cli",  # profile
    "gyre.training.cli",  # train, model import
    "gyre.serving.cli",  # serve
    "gyre.drift.cli",  # drift check, drift run
    "gyre.controllers.drift_report",  # drift report (after gyre.drift.cli: it joins that group)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gyre", description="Gyre: a Kubernetes-native MLOps operator.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
