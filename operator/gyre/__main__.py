"""`python -m gyre ...`: the same entry point as the `gyre` command."""

import sys

from gyre.cli import main

sys.exit(main())
