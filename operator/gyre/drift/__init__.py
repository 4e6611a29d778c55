"""Data drift: reference profiles (profile), statistics (stats), checks (check), prediction-log windows (window).

Pure: no kopf, no kubernetes. Import the submodules; this package imports nothing so that `gyre` subcommands stay
fast to start.
"""

__all__: list[str] = []
