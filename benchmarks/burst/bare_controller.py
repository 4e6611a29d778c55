"""The least a controller can do for the burst: watch TrainingRuns, create each one's Job from a fixed template.

A ceiling for the burst benchmark on a given machine, run in place of the operator:

    benchmarks/burst/run.py --operator-cmd "{python} benchmarks/burst/bare_controller.py --namespace {namespace}
        --template JOB.json" --startup-delay 3 ...

No kopf, no status write, no Event, no finalizer, no Job built per run: one raw watch (JSON lines, as the harness
reads them) and a thread pool creating the template's copy under the run's name, owned by the run. Whatever
fraction of the bare loop's throughput this reaches is what the machine leaves to any controller that must see a
TrainingRun before it can create its Job. JOB.json is one Job a Gyre operator created (`kubectl get job -o json`).
"""

from __future__ import annotations

import argparse
import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
from run import GROUP, INSTANCE_LABEL, VERSION, job_template  # the harness beside this file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--template", required=True, help="a Job a Gyre operator created, as JSON")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    kubernetes.config.load_kube_config()
    with open(args.template) as fh:
        template = job_template(json.load(fh))
    local = threading.local()

    def batch() -> kubernetes.client.BatchV1Api:
        if not hasattr(local, "api"):
            local.api = kubernetes.client.BatchV1Api(kubernetes.client.ApiClient())
        return local.api

    def create(run: dict[str, Any]) -> None:
        meta = run["metadata"]
        body = copy.deepcopy(template)
        body["metadata"]["name"] = f"{meta['name']}-train"
        body["metadata"]["namespace"] = args.namespace
        body["metadata"]["labels"][INSTANCE_LABEL] = meta.get("labels", {}).get(INSTANCE_LABEL, "")
        body["metadata"]["ownerReferences"] = [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "TrainingRun",
                "name": meta["name"],
                "uid": meta["uid"],
            }
        ]
        try:
            response = batch().create_namespaced_job(args.namespace, body, _preload_content=False)
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                print(f"{meta['name']}: {exc.status} {exc.reason}", flush=True)
            return
        response.drain_conn()
        response.release_conn()

    custom = kubernetes.client.CustomObjectsApi()
    seen: set[str] = set()
    with ThreadPoolExecutor(args.workers) as pool:
        response = custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            args.namespace,
            "trainingruns",
            watch=True,
            timeout_seconds=3600,
            _preload_content=False,
        )
        print("watching", flush=True)
        buf = b""
        for chunk in response.stream(65536, decode_content=True):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                event = json.loads(line) if line.strip() else {}
                run = event.get("object") or {}
                name = (run.get("metadata") or {}).get("name")
                if event.get("type") in ("ADDED", "MODIFIED") and name and name not in seen:
                    seen.add(name)
                    pool.submit(create, run)


if __name__ == "__main__":
    main()
