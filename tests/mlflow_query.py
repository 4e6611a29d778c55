"""Run in .venv-mlflow (tests/mlflowserver.py): read an experiment back through MLflow's own client and print it as JSON.

stdin: {"uri": tracking URI, "experiment": name}; stdout: {"runs": [{info, params, metrics, tags, artifacts,
manifest}]}, with the text of each run's manifest.json artifact when it has one (downloaded by MLflow's client).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient


def main() -> None:
    request = json.load(sys.stdin)
    client = MlflowClient(tracking_uri=request["uri"])
    experiment = client.get_experiment_by_name(request["experiment"])
    if experiment is None:
        json.dump({"runs": []}, sys.stdout)
        return
    runs = []
    for run in client.search_runs([experiment.experiment_id], max_results=1000):
        artifacts = sorted(a.path for a in client.list_artifacts(run.info.run_id))
        manifest = None
        if "manifest.json" in artifacts:
            with tempfile.TemporaryDirectory() as tmp:
                path = client.download_artifacts(run.info.run_id, "manifest.json", tmp)
                manifest = Path(path).read_text()
        history = {
            key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
            for key in run.data.metrics
        }
        runs.append(
            {
                "run_id": run.info.run_id,
                "name": run.info.run_name,
                "status": run.info.status,
                "params": run.data.params,
                "metrics": run.data.metrics,
                "history": history,
                "tags": run.data.tags,
                "artifacts": artifacts,
                "manifest": manifest,
            }
        )
    json.dump({"experiment_id": experiment.experiment_id, "runs": runs}, sys.stdout)


if __name__ == "__main__":
    main()
