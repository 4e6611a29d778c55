"""The `gyre` command line.

Each area registers its own subcommands, imported lazily so that `gyre serve` never pays for kopf and
`gyre operator` never pays for onnxruntime.

Errors are one line on stderr and a non-zero exit code, from every subcommand: the expected ones are worded by the
subcommand, anything else is caught here. `--verbose` (before or after the subcommand) adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import sys
import traceback
from collections.abc import Iterator, Sequence

# Modules exposing `register(subparsers) -> None`, with the commands each adds ("drift report": a subcommand it adds
# to another module's group); each subcommand sets `func` on its parser.
_COMMAND_MODULES = (
    ("gyre.controllers.cli", ("operator", "crds")),
    ("gyre.data.cli", ("profile",)),
    ("gyre.training.cli", ("train", "model")),
    ("gyre.serving.cli", ("serve",)),
    ("gyre.serving.feedback_cli", ("feedback",)),
    ("gyre.drift.cli", ("drift",)),  # drift check, drift run
    ("gyre.performance.cli", ("perf",)),
    ("gyre.controllers.drift_report", ("drift report",)),  # after gyre.drift.cli: it joins that group
    ("gyre.controllers.audit", ("history",)),
    ("gyre.controllers.cards", ("card", "runs")),
)


def _wanted(commands: tuple[str, ...], words: list[str]) -> bool:
    """Whether a module that registers `commands` is needed to parse a command line starting with `words`."""
    for command in commands:
        head, _, sub = command.partition(" ")
        if words[0] == head and (not sub or len(words) < 2 or words[1] == sub):
            return True
    return False


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `gyre` parser. Given the command line, it imports only the modules of the command it names: a scheduled
    `gyre drift check` then does not import the serving, training or cluster code (seconds of CPU in a check Job).
    Without it, or for a command no module names (help, a typo), it registers every command."""
    parser = argparse.ArgumentParser(prog="gyre", description="Gyre: a Kubernetes-native MLOps operator.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    words = [a for a in argv or () if not a.startswith("-")][:2]
    known = {c.partition(" ")[0] for _, commands in _COMMAND_MODULES for c in commands}
    for name, commands in _COMMAND_MODULES:
        if words and words[0] in known and not _wanted(commands, words):
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    parser.add_argument("--verbose", action="store_true", help="on an error, print the traceback too")
    for sub in _subcommand_parsers(parser):
        # SUPPRESS: a subcommand without the flag keeps the value given before it. A subcommand with its own
        # --verbose (same dest) keeps it.
        with contextlib.suppress(argparse.ArgumentError):
            sub.add_argument(
                "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
    return parser


def _subcommand_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _subcommand_parsers(sub)


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type when the message alone would not say what went wrong."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def report_error(args: argparse.Namespace, message: str) -> None:
    """Write `message` as one line on stderr; with --verbose, the traceback of the exception being handled first."""
    if getattr(args, "verbose", False) and sys.exc_info()[0] is not None:
        traceback.print_exc()
    sys.stderr.write(" ".join(message.split()) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        else:
            sys.stderr.write(f"gyre {args.command}: {one_line(exc)} (--verbose for the traceback)\n")
        return 1
    return int(result or 0)


def run() -> None:
    """The `gyre` command and `python -m gyre`: main(), then the end of the process.

    The interpreter's teardown garbage-collects every object before it frees the modules: after a training run,
    about 0.4 s spent freeing what the operating system frees at once. Frozen objects are skipped; atexit
    handlers, the flushing of open files and the joining of threads still happen as usual.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
