"""`gyre` imports only the code of the command it runs, and still knows every command."""

from __future__ import annotations

import subprocess
import sys

from gyre.cli import build_parser


def _imported_after_parsing(*argv: str) -> set[str]:
    code = (
        "import sys; from gyre.cli import build_parser; "
        f"build_parser({list(argv)!r}).parse_known_args({list(argv)!r}); print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_a_drift_check_imports_neither_serving_nor_cluster_code() -> None:
    modules = _imported_after_parsing("drift", "check", "--reference", "r.json", "--current", "c.parquet")
    assert "gyre.drift.cli" in modules
    assert not {"gyre.serving.feedback", "gyre.controllers.drift_report", "gyre.training.cli"} & modules


def test_drift_report_still_joins_the_drift_group() -> None:
    args = build_parser(["drift", "report", "ml/m"]).parse_args(["drift", "report", "ml/m"])
    assert args.drift_command == "report"
    assert (
        build_parser(["drift", "check"])
        .parse_args(["drift", "check", "--reference", "r", "--current", "c"])
        .func.__module__
        == "gyre.drift.cli"
    )


def test_help_and_an_unknown_command_register_every_command() -> None:
    for argv in ([], ["--help"], ["no-such-command"]):
        parser = build_parser(argv)
        choices = next(a for a in parser._actions if a.dest == "command").choices
        assert {"operator", "serve", "drift", "feedback", "history", "runs"} <= set(choices), argv
