"""Evidently's default data-drift report on the benchmark tables; runs inside Evidently's own venv.

Usage: evidently_child.py WORKDIR. Reads WORKDIR/{reference,current}.parquet and WORKDIR/schema.json, writes
WORKDIR/evidently.json. Never imports gyre (it is not installed in that venv).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

__all__: list[str] = []


def _vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(workdir: Path) -> None:
    t0 = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report, __version__
    from evidently.presets import DataDriftPreset

    t_import = time.perf_counter()
    schema: dict[str, str] = json.loads((workdir / "schema.json").read_text())
    reference = pd.read_parquet(workdir / "reference.parquet")
    current = pd.read_parquet(workdir / "current.parquet")
    t_read = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=[c for c, k in schema.items() if k == "numeric"],
        categorical_columns=[c for c, k in schema.items() if k != "numeric"],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    t_done = time.perf_counter()
    columns = {}
    share = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            method = str(config["method"])
            score = float(metric["value"])
            threshold = float(config["threshold"])
            # p-value tests drift below the threshold, distances at or above it (Evidently's convention).
            drifted = score < threshold if "p_value" in method else score >= threshold
            columns[config["column"]] = {
                "method": method,
                "score": score,
                "threshold": threshold,
                "drifted": drifted,
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]
    out = {
        "version": __version__,
        "import_s": t_import - t0,
        "read_s": t_read - t_import,
        "compute_s": t_done - t_read,
        "columns": columns,
        "drifted_columns_count": share,
        "vmhwm_mib": _vmhwm_mib(),
    }
    (workdir / "evidently.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
