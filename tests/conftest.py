"""Session fixtures for the tiers that need a real cluster.

Nothing here touches a cluster unless a test asks for one of these fixtures, so the unit tier
never brings anything up. The cluster is the one KUBECONFIG names, when it is set; otherwise the
local test cluster, brought up once per session with `hack/cluster/up.sh` (idempotent). Either
way the kube context must look like a test cluster: `gyre-test`, `kind-*`, or the one named by
GYRE_TEST_ALLOW_CONTEXT. A cluster that cannot come up fails the session with the reason; it is
never a skip.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the client is imported lazily: unit tests never load it through here
    from kubernetes.client import ApiClient

__all__ = [
    "LOCAL_CONTEXT",
    "context_is_allowed",
    "gyre_image",
    "k8s_namespace",
    "kube_api",
    "kubeconfig",
]

ROOT = Path(__file__).resolve().parents[1]
LOCAL_KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
LOCAL_CONTEXT = "gyre-test"
ALLOW_ENV = "GYRE_TEST_ALLOW_CONTEXT"


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers the cluster tiers use (pyproject.toml lists them too)."""
    for line in (
        "unit: pure code, no cluster",
        "integration: needs a real API server",
        "e2e: needs a real cluster running the project image",
        "local_cluster_only: drives the local test cluster's processes (hack/cluster); fails on any other "
        "cluster unless deselected with -m 'not local_cluster_only'",
    ):
        config.addinivalue_line("markers", line)


def context_is_allowed(context: str, allow: str | None = None) -> bool:
    """Whether tests may touch the cluster of this kube context.

    Only throwaway clusters qualify: the local test cluster, kind clusters, and one context named
    explicitly (GYRE_TEST_ALLOW_CONTEXT), so a developer's production context is never used.
    """
    if allow is None:
        allow = os.environ.get(ALLOW_ENV)
    return context == LOCAL_CONTEXT or context.startswith("kind-") or (bool(allow) and context == allow)


def _current_context(path: Path) -> str:
    from kubernetes import config as kube_config

    try:
        _, active = kube_config.list_kube_config_contexts(config_file=str(path))
    except Exception as exc:  # a broken file is a failure to explain, not a crash
        pytest.fail(f"cannot read kubeconfig {path}: {exc}", pytrace=False)
    return str(active["name"])


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _local_cluster_up() -> None:
    """Run the idempotent bring-up; fail the session with its output when it fails."""
    proc = subprocess.run(
        [str(ROOT / "hack/cluster/up.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            "the local test cluster did not come up (hack/cluster/up.sh exited "
            f"{proc.returncode}):\n{_tail(proc.stdout)}\n{_tail(proc.stderr)}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """Path of the kubeconfig of a test cluster that is up (brought up here when local)."""
    env = os.environ.get("KUBECONFIG")
    path = Path(env) if env else LOCAL_KUBECONFIG
    local = path.resolve() == LOCAL_KUBECONFIG.resolve()
    if local:
        _local_cluster_up()
    elif not path.exists():
        pytest.fail(f"KUBECONFIG={path} does not exist", pytrace=False)
    context = _current_context(path)
    if not context_is_allowed(context):
        pytest.exit(
            f"refusing to run against kube context {context!r} ({path}): not a test cluster. "
            f"Allowed: {LOCAL_CONTEXT!r}, 'kind-*', or set {ALLOW_ENV}={context} deliberately.",
            returncode=2,
        )
    # Clients created later (kopf, subprocesses, the kubernetes package) must see the same cluster.
    os.environ["KUBECONFIG"] = str(path)
    return path


@pytest.fixture(scope="session")
def kube_api(kubeconfig: Path) -> Iterator[ApiClient]:
    """A kubernetes.client.ApiClient for the test cluster, checked by asking for its version."""
    from kubernetes import client as kube_client
    from kubernetes import config as kube_config

    api = kube_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        kube_client.VersionApi(api).get_code(_request_timeout=10)
    except Exception as exc:
        pytest.fail(f"the test cluster in {kubeconfig} does not answer: {exc}", pytrace=False)
    yield api
    api.close()


@pytest.fixture(scope="session")
def gyre_image(kubeconfig: Path) -> str:
    """The project image the e2e pods run (GYRE_E2E_IMAGE, default gyre:dev).

    On the local cluster it is built and imported when containerd does not have it yet
    (`make image` rebuilds it after code changes; `make test-e2e` does that first).
    """
    image = os.environ.get("GYRE_E2E_IMAGE", "gyre:dev")
    if kubeconfig.resolve() != LOCAL_KUBECONFIG.resolve() or image != "gyre:dev":
        return image
    listed = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/hack/cluster/lib.sh" && "${{CTR[@]}}" images ls -q'],
        capture_output=True,
        text=True,
        check=False,
    )
    if "docker.io/library/gyre:dev" not in listed.stdout.split():
        proc = subprocess.run(
            [str(ROOT / "hack/image.sh")], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            pytest.fail(
                f"building the project image failed (hack/image.sh exited {proc.returncode}):\n"
                f"{_tail(proc.stdout)}\n{_tail(proc.stderr)}",
                pytrace=False,
            )
    return image


@pytest.fixture()
def k8s_namespace(kube_api: ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway namespace for one test, deleted (without waiting) afterwards."""
    from kubernetes import client as kube_client
    from kubernetes.client.exceptions import ApiException

    core = kube_client.CoreV1Api(kube_api)
    name = f"gyre-t-{uuid.uuid4().hex[:8]}"
    label = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:63].strip("-_.") or "test"
    core.create_namespace({"metadata": {"name": name, "labels": {"gyre.dev/test": label}}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
