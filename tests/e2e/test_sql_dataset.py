"""A Dataset from PostgreSQL on the real cluster, and a data contract that a source breaks on refresh.

The database is Debian's PostgreSQL on the host (tests/pgserver.py), listening on the host end of the test
cluster's link (10.213.0.1), which pods reach through the bridge CNI and the node's default route; the credentials
are in a Secret of the test namespace. Real profiling pods of gyre:dev read it with ADBC.

1. 120,000 rows become version 1, Ready, with the contract satisfied; no credential is in the status, the Events or
   the profiling pod's log; new rows appended at the source become version 2 by an incremental refresh.
2. The source turns bad (new rows break the contract): the refresh records the version as violating, the Dataset
   keeps its last good version with ContractSatisfied=False and a Warning Event, a TrainingRun trains on the good
   version, and one pinned to the bad version fails with ContractViolated; the real Prometheus fires
   GyreTrainingRunFailed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from e2ekube import Kube, condition, wait_for
from prometheus import Prometheus

from pgserver import Postgres, orders_table, start_postgres, stop_postgres

pytestmark = pytest.mark.e2e

ROWS = 120_000
USER, PASSWORD = "gyre_reader", "Rd-7c1e-sql-contract-secret"

TABLE = orders_table(ROWS)


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    directory = Path(tempfile.mkdtemp(prefix="gyre-pg-e2e-"))
    server = start_postgres(directory)
    try:
        assert not server.host.startswith("127."), "the test cluster's host link (10.213.0.1) is not up"
        server.execute(
            "DROP TABLE IF EXISTS orders",
            TABLE,
            f"DROP ROLE IF EXISTS {USER}",
            f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'",
            f"GRANT SELECT ON orders TO {USER}",
        )
        yield server
    finally:
        stop_postgres(directory)
        shutil.rmtree(directory, ignore_errors=True)


def orders_spec(pg: Postgres) -> dict[str, Any]:
    return {
        "source": {
            "sql": {
                "host": pg.host,
                "port": pg.port,
                "database": pg.database,
                "userSecretRef": {"name": "shop-db", "key": "user"},
                "passwordSecretRef": {"name": "shop-db", "key": "password"},
                "sslmode": "disable",
                "query": "SELECT id, amount, region, returned FROM orders ORDER BY id",
                "watermark": "id",
            }
        },
        "target": "returned",
        "expectations": {
            "minRows": 100_000,
            "uniqueKey": ["id"],
            "columns": [
                {"name": "amount", "type": "number", "min": 0, "max": 100, "maxNullFraction": 0},
                {"name": "region", "type": "string", "allowedValues": ["north", "south", "east", "west"]},
            ],
        },
    }


def create_secret(kube: Kube) -> None:
    kube.core.create_namespaced_secret(
        kube.namespace,
        {"metadata": {"name": "shop-db"}, "stringData": {"user": USER, "password": PASSWORD}},
    )


def refresh(kube: Kube, name: str) -> None:
    """Ask for a re-read and wait until it is over (the Refreshing condition settles)."""
    before = kube.get("Dataset", name)["status"].get("lastProfileTime")
    stamp = datetime.now(UTC).isoformat()
    kube.patch("Dataset", name, {"metadata": {"annotations": {"gyre.dev/refresh-requested-at": stamp}}})

    def settled() -> dict[str, Any] | None:
        obj = kube.get("Dataset", name)
        refreshing = condition(obj, "Refreshing")
        done = refreshing is not None and refreshing["status"] == "False"
        return obj if done and obj["status"].get("lastProfileTime") != before else None

    wait_for(settled, timeout=300, what=f"Dataset {name} to finish its refresh")


def profiling_logs(kube: Kube) -> str:
    pods = kube.core.list_namespaced_pod(
        kube.namespace, label_selector="app.kubernetes.io/component=profiler"
    )
    logs = []
    for pod in pods.items:
        logs.append(kube.core.read_namespaced_pod_log(pod.metadata.name, kube.namespace))
        for status in pod.status.container_statuses or []:
            terminated = status.state.terminated
            logs.append((terminated.message or "") if terminated else "")
    return "\n".join(logs)


def test_a_dataset_from_postgresql_becomes_ready_and_refreshes_incrementally(
    kube: Kube, pg: Postgres
) -> None:
    create_secret(kube)
    kube.create("Dataset", "orders", orders_spec(pg))
    status = kube.wait_phase("Dataset", "orders", {"Ready"}, timeout=400)["status"]
    assert (status["rows"], status["version"], status["watermark"]) == (ROWS, 1, str(ROWS))
    assert [c["name"] for c in status["columns"]] == ["id", "amount", "region", "returned"]
    satisfied = condition(kube.get("Dataset", "orders"), "ContractSatisfied")
    assert satisfied is not None and satisfied["status"] == "True", satisfied

    pg.execute(
        f"INSERT INTO orders SELECT i, 12.5, 'north', false FROM generate_series({ROWS + 1}, {ROWS + 500}) i"
    )
    refresh(kube, "orders")
    status = kube.get("Dataset", "orders")["status"]
    assert (status["rows"], status["version"], status["watermark"]) == (ROWS + 500, 2, str(ROWS + 500))
    args = (
        kube.batch.read_namespaced_job(status["jobName"], kube.namespace)
        .spec.template.spec.containers[0]
        .args
    )
    assert args[args.index("--after") + 1] == str(ROWS)  # the refresh read only the new rows

    everything = json.dumps(kube.get("Dataset", "orders")) + json.dumps(kube.events()) + profiling_logs(kube)
    assert PASSWORD not in everything and USER not in everything


def test_a_source_that_breaks_its_contract_keeps_the_last_good_version_for_training(
    kube: Kube, pg: Postgres, prometheus: Prometheus
) -> None:
    pg.execute(f"DELETE FROM orders WHERE id > {ROWS}")
    create_secret(kube)
    kube.create("Dataset", "orders", orders_spec(pg))
    good = kube.wait_phase("Dataset", "orders", {"Ready"}, timeout=400)["status"]

    # The source turns bad: new rows with negative amounts and an unknown region.
    pg.execute(
        f"INSERT INTO orders SELECT i, -3.0, 'mars', false FROM generate_series({ROWS + 1}, {ROWS + 40}) i"
    )
    refresh(kube, "orders")
    obj = kube.get("Dataset", "orders")
    status = obj["status"]
    assert (status["phase"], status["fingerprint"], status["version"]) == ("Ready", good["fingerprint"], 1)
    violated = condition(obj, "ContractSatisfied")
    assert violated is not None and (violated["status"], violated["reason"]) == ("False", "ContractViolated")
    bad = status["history"][0]
    assert bad["contractViolated"] is True and bad["version"] == 2 and bad["rows"] == ROWS + 40
    failures = "\n".join(status["contract"]["failures"])
    assert "column amount: 40 values below the minimum 0" in failures
    assert "column region: 40 values outside the allowed ones" in failures
    warnings = [e for e in kube.events("orders") if e[0] == "Warning" and e[1] == "ContractViolated"]
    assert len(warnings) == 1 and "values below the minimum 0" in warnings[0][2]

    run = {
        "datasetRef": {"name": "orders"},
        "features": {"columns": ["amount", "region"]},
        "estimator": {"kind": "DecisionTreeClassifier", "params": {"max_depth": 3}},
        "split": {"testSize": 0.2, "seed": 1},
    }
    kube.create("TrainingRun", "on-good-data", run)
    trained = kube.wait_phase("TrainingRun", "on-good-data", {"Succeeded"}, timeout=400)["status"]
    assert trained["datasetFingerprint"] == good["fingerprint"] and trained["datasetVersion"] == 1

    pinned = {**run, "datasetRef": {"name": "orders", "fingerprint": bad["fingerprint"]}}
    kube.create("TrainingRun", "on-bad-data", pinned)
    refused = wait_for(
        lambda: (
            (s := kube.get("TrainingRun", "on-bad-data").get("status") or {}).get("phase") == "Failed" and s
        ),
        timeout=120,
        what="the run pinned to the bad version to fail",
    )
    assert "ContractViolated" in json.dumps(refused["conditions"])
    # The failed run reaches the real Prometheus as GyreTrainingRunFailed.
    failed = wait_for(
        lambda: prometheus.fired("GyreTrainingRunFailed", object_namespace=kube.namespace),
        timeout=120,
        what="GyreTrainingRunFailed to fire",
    )
    assert [f["metric"]["trigger"] for f in failed] == ["manual"], failed
