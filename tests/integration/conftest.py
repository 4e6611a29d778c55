"""Integration tier: the operator against a real API server (the local test cluster, context gyre-test).

No pods are expected to run here: Jobs use an image that is never pulled, so every assertion is about what the
operator and the API server themselves write (objects, status, conditions, Events, admission errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kopf.testing import KopfRunner
from kubetest import Custom, running_operator, wait_for

import statuscapture
from gyre.api import crdgen

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "gyre.dev", "v1alpha1"


@pytest.fixture(scope="session")
def k8s(kubeconfig: Path, kube_api: kubernetes.client.ApiClient) -> kubernetes.client.ApiClient:
    """The test cluster's ApiClient (tests/conftest.py brings the cluster up and refuses other contexts)."""
    # The operator under test (kopf's client login, gyre.controllers.kube) falls back to the client library's
    # default kubeconfig location, which the library fixes when it is first imported.
    kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
    kubernetes.config.load_kube_config(config_file=str(kubeconfig))
    return kube_api


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
def namespace(k8s_namespace: str, crds: list[dict[str, Any]]) -> str:
    """A throwaway namespace (tests/conftest.py), with the CRDs installed."""
    return k8s_namespace


@pytest.fixture()
def custom(k8s: kubernetes.client.ApiClient, namespace: str) -> Custom:
    """Create and read Gyre objects in the test namespace."""
    return Custom(k8s, namespace)


@pytest.fixture()
def operator(namespace: str) -> Iterator[KopfRunner]:
    """The operator for the duration of one test."""
    with running_operator(namespace) as runner:
        yield runner


@pytest.fixture(scope="session", autouse=True)
def status_capture(k8s: kubernetes.client.ApiClient) -> Iterator[None]:
    """With GYRE_CAPTURE_STATUSES=FILE, record every status the operator writes (tests/statuscapture.py)."""
    yield from statuscapture.capturing(k8s)
