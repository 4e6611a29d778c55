"""`python -m gyre ...`: the same entry point as the `gyre` command."""

from gyre.cli import run

run()
