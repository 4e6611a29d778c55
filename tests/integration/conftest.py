"""Integration tier: the operator against a real API server (the local test cluster, context gyre-test).

No pods are expected to run here: Jobs use an image that is never pulled, so every assertion is about what the
operator and the API server themselves write (objects, status, conditions, Events, admission errors).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, wait_for

from gyre.api import crdgen

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "gyre.dev", "v1alpha1"
# Contexts these tests may touch: the local test cluster and throwaway kind clusters.
ALLOWED_CONTEXTS = ("gyre-test", "kind-gyre")

pytestmark = pytest.mark.integration


def _kubeconfig() -> str:
    return os.environ.get("KUBECONFIG") or str(ROOT / ".cluster/kubeconfig")


@pytest.fixture(scope="session")
def k8s() -> kubernetes.client.ApiClient:
    """An ApiClient for the test cluster; skips without one, refuses any other cluster."""
    path = _kubeconfig()
    if not Path(path).exists():
        pytest.skip(f"no test cluster: {path} does not exist (run `make cluster-up`)")
    _, active = kubernetes.config.list_kube_config_contexts(config_file=path)
    context = active["name"]
    if not context.startswith(ALLOWED_CONTEXTS) and os.environ.get("GYRE_TEST_CONTEXT") != context:
        pytest.exit(f"refusing to run integration tests against kube context {context!r}", returncode=2)
    os.environ["KUBECONFIG"] = path  # the operator under test (kopf and gyre.controllers.kube) reads it too
    kubernetes.config.load_kube_config(config_file=path)
    client = kubernetes.client.ApiClient()
    try:
        client.call_api(
            "/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=5
        )
    except Exception as exc:
        pytest.skip(f"test cluster not reachable: {exc}")
    return client


@pytest.fixture(scope="session")
def crds(k8s: kubernetes.client.ApiClient) -> list[dict[str, Any]]:
    """Install the generated CRDs by server-side apply (as `kubectl apply --server-side` does) and wait for them."""
    dyn = kubernetes.dynamic.DynamicClient(k8s)
    api = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    docs = [
        yaml.safe_load((ROOT / "manifests/crds" / crdgen.crd_filename(k)).read_text()) for k in crdgen.KINDS
    ]
    for doc in docs:
        api.server_side_apply(
            body=doc, name=doc["metadata"]["name"], field_manager="gyre-tests", force_conflicts=True
        )
    ext = kubernetes.client.ApiextensionsV1Api(k8s)

    def established() -> bool:
        for doc in docs:
            crd = ext.read_custom_resource_definition(doc["metadata"]["name"])
            conds = {c.type: c.status for c in crd.status.conditions or []}
            if conds.get("Established") != "True":
                return False
        return True

    wait_for(established, what="CRDs established")
    return docs


@pytest.fixture()
def namespace(k8s: kubernetes.client.ApiClient, crds: list[dict[str, Any]]) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    core = kubernetes.client.CoreV1Api(k8s)
    name = f"gyre-it-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"gyre.dev/test": "integration"}}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture()
def custom(k8s: kubernetes.client.ApiClient, namespace: str) -> Custom:
    """Create and read Gyre objects in the test namespace."""
    return Custom(k8s, namespace)
