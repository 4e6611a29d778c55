"""The pod termination message: how in-pod entrypoints report a compact result to the controller."""

from __future__ import annotations

import os
import sys

from gyre.api import env

__all__ = [
    "TERMINATION_LOG",
    "TERMINATION_MESSAGE_LIMIT",
    "termination_log_path",
    "write_termination_message",
]

TERMINATION_LOG = env.DEFAULT_TERMINATION_LOG
TERMINATION_MESSAGE_LIMIT = 4096
"""Kubernetes truncates a container's termination message to 4096 bytes."""


def termination_log_path() -> str:
    """$GYRE_TERMINATION_LOG, else /dev/termination-log."""
    return os.environ.get(env.TERMINATION_LOG) or TERMINATION_LOG


def write_termination_message(message: str, *, echo: bool = True) -> bool:
    """Print the message to stdout and write it to the termination log when that is writable.

    Returns whether the termination log was written. Outside a pod the log usually does not exist; that is fine.
    """
    if echo:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()
    path = termination_log_path()
    directory = os.path.dirname(path) or "."
    writable = os.access(path, os.W_OK) if os.path.exists(path) else os.access(directory, os.W_OK)
    if not writable or (path == TERMINATION_LOG and not os.path.exists(path)):
        return False
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(message)
    except OSError:
        return False
    return True
