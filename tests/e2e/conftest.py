"""Fixtures for the whole-loop e2e tests: Gyre installed from manifests/ into the test cluster, running gyre:dev."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2ekube import Kube, wait_for
from prometheus import Prometheus

import statuscapture

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def gyre_installed(kubeconfig: Path, gyre_image: str) -> str:
    """Install the CRDs and the operator with `kubectl apply -k manifests/` (hack/deploy.sh), as a user would."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run(
        [str(ROOT / "hack/deploy.sh")], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"installing Gyre failed (hack/deploy.sh exited {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )
    return gyre_image


@pytest.fixture()
def kube(kube_api: ApiClient, k8s_namespace: str, gyre_installed: str) -> Iterator[Kube]:
    """A throwaway namespace with Gyre installed, and the calls the tests make against it."""
    k = Kube(kube_api, k8s_namespace, image=gyre_installed)
    yield k
    k.dump_on_failure()


@pytest.fixture(scope="session")
def prometheus(kube_api: ApiClient, gyre_installed: str) -> Iterator[Prometheus]:
    """A real Prometheus in the cluster (tests/e2e/prometheus.py), discovering Gyre's pods as a user's would;
    removed at the end of the session."""
    prom = Prometheus(kube_api)
    prom.install()
    try:
        wait_for(prom.ready, timeout=180, what="the test Prometheus to answer with Gyre's rules loaded")
        yield prom
    finally:
        prom.uninstall()


@pytest.fixture(scope="session", autouse=True)
def status_capture(kube_api: ApiClient) -> Iterator[None]:
    """With GYRE_CAPTURE_STATUSES=FILE, record every status the operator writes (tests/statuscapture.py)."""
    yield from statuscapture.capturing(kube_api)
