"""Real pods of the gyre:dev image against the S3 test server on the host (tests/s3server.py).

The profiling Job is the builders' own (build_profile_job with an s3:// store and a namespace Secret), created
directly, without the operator: the installed operator keeps its pvc:// store for the other e2e tests. Pods reach
the host through the cluster's veth (10.213.0.1 on the local test cluster, docs/cluster.md), so the server
listens on all host addresses for the length of this module. Needs an image built after s3fs joined the
dependencies (`make image`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from e2ekube import Kube, wait_for

from gyre.api.dataset import DatasetSpec
from gyre.api.reasons import Reason
from gyre.builders.job import build_profile_job
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ProfileReport
from s3server import S3Server, start_s3_server

pytestmark = [pytest.mark.e2e, pytest.mark.local_cluster_only]

# The host as pods see it: the local test cluster's end of the veth (hack/cluster/lib.sh HOST_IP).
HOST_FOR_PODS = os.environ.get("GYRE_E2E_HOST_IP", "10.213.0.1")
SECRET = "gyre-store"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server(host="0.0.0.0")
    try:
        yield server
    finally:
        server.stop()


def run_profile_job(
    kube: Kube, settings: OperatorSettings, name: str, source: str
) -> tuple[ProfileReport, str]:
    """Create the builders' profiling Job (no owner: nothing owns it here) and return its report and pod logs."""
    owner = Owner(
        kind="Dataset", name=name, namespace=kube.namespace, uid="00000000-0000-4000-8000-000000000000"
    )
    spec = DatasetSpec.model_validate({"source": {"uri": source}})
    job = build_profile_job(owner, spec, settings, revision="g1")
    job["metadata"].pop("ownerReferences", None)  # an owner that does not exist would have the Job collected
    kube.batch.create_namespaced_job(kube.namespace, job)
    selector = f"job-name={job['metadata']['name']}"

    def finished() -> Any:
        pods = kube.core.list_namespaced_pod(kube.namespace, label_selector=selector).items
        done = [p for p in pods if p.status.phase in ("Succeeded", "Failed")]
        return done[0] if done else None

    pod = wait_for(finished, timeout=300, what=f"the pod of Job {job['metadata']['name']}")
    message = (pod.status.container_statuses[0].state.terminated.message or "").strip()
    logs = kube.core.read_namespaced_pod_log(pod.metadata.name, kube.namespace)
    return ProfileReport.from_termination_message(message), f"{message}\n{logs}"


def test_a_pod_profiles_into_its_namespaces_bucket_and_is_refused_another(kube: Kube, s3: S3Server) -> None:
    ns = kube.namespace
    s3.create_bucket(f"gyre-{ns}")
    s3.create_bucket("gyre-someone-else")
    s3.client("s3").put_object(Bucket="gyre-someone-else", Key="private.csv", Body=b"a,b\n1,2\n")
    creds = s3.add_user(f"gyre-{ns}", [f"arn:aws:s3:::gyre-{ns}", f"arn:aws:s3:::gyre-{ns}/*"])
    port = s3.endpoint.rsplit(":", 1)[1]
    data = creds.secret_data(f"http://{HOST_FOR_PODS}:{port}")
    kube.core.create_namespaced_secret(ns, {"metadata": {"name": SECRET}, "stringData": data})
    settings = OperatorSettings(
        artifact_store="s3://gyre-{namespace}/artifacts", artifact_secret=SECRET, image=kube.image
    )

    report, output = run_profile_job(kube, settings, "iris", "builtin://iris")
    assert report.phase == "Succeeded", output[-3000:]
    assert report.data_uri and report.data_uri.startswith(f"s3://gyre-{ns}/artifacts/datasets/{ns}/iris/")
    key = report.data_uri.removeprefix(f"s3://gyre-{ns}/")
    assert s3.client("s3").head_object(Bucket=f"gyre-{ns}", Key=key)["ContentLength"] > 0

    refused, refused_output = run_profile_job(kube, settings, "stolen", "s3://gyre-someone-else/private.csv")
    assert refused.phase == "Failed" and refused.error and "gyre-someone-else/private.csv" in refused.error
    for text in (output, refused_output):
        assert creds.secret_access_key not in text


def test_a_pod_without_its_namespaces_secret_fails_at_once_naming_it(kube: Kube, s3: S3Server) -> None:
    settings = OperatorSettings(
        artifact_store="s3://gyre-{namespace}/artifacts", artifact_secret=SECRET, image=kube.image
    )
    report, output = run_profile_job(kube, settings, "iris", "builtin://iris")
    assert report.reason == Reason.STORE_CREDENTIALS_MISSING, output[-3000:]
    assert report.error and f"'{SECRET}'" in report.error
