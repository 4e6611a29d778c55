"""Helpers of the integration tier (imported by conftest.py and the tests)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from gyre.builders.settings import OperatorSettings
from gyre.controllers import common

__all__ = [
    "GROUP",
    "INSTANCE",
    "INSTANCE_LABEL",
    "NEVER_PULLED",
    "VERSION",
    "Custom",
    "OperatorProcess",
    "SlowProxy",
    "condition",
    "events",
    "kubelet_env",
    "operator_processes",
    "read_or_none",
    "ready_dataset",
    "rejection",
    "run_job",
    "running_operator",
    "wait_for",
]

GROUP, VERSION = "gyre.dev", "v1alpha1"
INSTANCE_LABEL = "gyre.dev/operator-instance"
INSTANCE = "integration"
NEVER_PULLED = "gyre.invalid/never-pulled:0"
T = TypeVar("T")


def wait_for(
    fn: Callable[[], T | None], *, timeout: float = 60, interval: float = 0.5, what: str = "condition"
) -> T:
    """Poll until fn() returns something truthy; fail with `what` after the timeout (a liveness bound, not a speed
    assertion)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}; last value: {last!r}")


class Custom:
    """Small helper over CustomObjectsApi for one namespace."""

    def __init__(self, k8s: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api = kubernetes.client.CustomObjectsApi(k8s)
        self.namespace = namespace

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
        # The operator under test runs as its own instance, so an operator deployed in the cluster leaves these alone.
        labels = {INSTANCE_LABEL: INSTANCE, **meta.pop("labels", {})}
        metadata = {"name": name, "labels": labels, **meta}
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata, "spec": spec}
        obj: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )
        return obj

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return obj

    def delete(self, plural: str, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, patch
        )
        return obj

    def wait_condition(
        self, plural: str, name: str, type_: str, status: str, *, timeout: float = 60
    ) -> dict[str, Any]:
        """Wait until the object's condition `type_` has `status`; returns that condition."""
        return wait_for(
            lambda: (c := condition(self.get(plural, name), type_)) and c["status"] == status and c,
            timeout=timeout,
            what=f"{plural}/{name} {type_}={status}",
        )

    def patch_status(self, plural: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, plural, name, {"status": status}
        )
        return obj


def rejection(exc: ApiException) -> str:
    """The API server's message for a refused object (422 Invalid), with every cause."""
    assert exc.status == 422, f"expected 422 Invalid, got {exc.status}: {exc.body}"
    status = json.loads(exc.body)
    causes = [
        f"{c.get('field')}: {c.get('message')}" for c in (status.get("details") or {}).get("causes") or []
    ]
    return "\n".join([str(status.get("message")), *causes])


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def events(k8s: kubernetes.client.ApiClient, namespace: str, name: str) -> list[tuple[str, str, str]]:
    items = (
        kubernetes.client.CoreV1Api(k8s)
        .list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        .items
    )
    return [(e.type, e.reason, e.message or "") for e in items]


@contextlib.contextmanager
def namespaced_policy(
    k8s: kubernetes.client.ApiClient, namespace: str, policy: dict[str, Any], binding: dict[str, Any]
) -> Iterator[None]:
    """An install's ValidatingAdmissionPolicy and its binding, renamed `<name>-<namespace>` and bound to `namespace`
    alone, so tests running side by side never share one; deleted afterwards."""
    name = f"{policy['metadata']['name']}-{namespace}"
    policy["metadata"] = {"name": name}
    binding["metadata"] = {"name": name}
    binding["spec"]["policyName"] = name
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    api = kubernetes.client.AdmissionregistrationV1Api(k8s)
    api.create_validating_admission_policy(policy)
    api.create_validating_admission_policy_binding(binding)
    try:
        yield
    finally:
        api.delete_validating_admission_policy_binding(name)
        api.delete_validating_admission_policy(name)


@contextlib.contextmanager
def running_operator(namespace: str) -> Iterator[KopfRunner]:
    """Run the operator (kopf, in a thread) watching only `namespace`, with an image no node will pull."""
    common.configure(
        OperatorSettings(
            artifact_store="pvc://gyre-artifacts",
            image=NEVER_PULLED,
            image_pull_policy="Never",
            instance=INSTANCE,
        )
    )
    args = ["run", "--standalone", "--namespace", namespace, "-m", "gyre.controllers.handlers"]
    try:
        with KopfRunner(args, timeout=60) as runner:
            yield runner
    finally:
        common.configure(None)
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


def read_or_none(
    k8s: kubernetes.client.ApiClient, read: Callable[..., Any], *args: str
) -> dict[str, Any] | None:
    """A built-in object as a plain dict (API field names) from a typed `read_namespaced_*` call, None on 404."""
    try:
        obj = read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    out: dict[str, Any] = k8s.sanitize_for_serialization(obj)
    return out


def ready_dataset(custom: Custom, namespace: str, name: str = "iris") -> None:
    """A Dataset the operator has started profiling, then given the status its profiler reports on success.

    Pods do not run in this tier, so the profiler's result is written the way the controller writes it.
    """
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    custom.create("datasets", "Dataset", name, {"source": {"uri": "builtin://iris"}, "target": "target"})
    wait_for(lambda: (custom.get("datasets", name).get("status") or {}).get("jobName"), what="profiling Job")
    columns = [{"name": n, "kind": "numeric", "dtype": "float64"} for n in ("sepal", "petal", "target")]
    custom.patch_status(
        "datasets",
        name,
        {
            "phase": "Ready",
            "fingerprint": b,
            "version": 2,
            "rows": 150,
            "columns": columns,
            "columnCount": 3,
            "dataUri": f"file:///var/lib/gyre/artifacts/datasets/{namespace}/{name}/{'b' * 64}/data.parquet",
            "history": [
                {"version": 2, "fingerprint": b, "rows": 150, "createdAt": "2026-11-02T00:00:00Z"},
                {"version": 1, "fingerprint": a, "rows": 140, "createdAt": "2026-11-01T00:00:00Z"},
            ],
        },
    )


class OperatorProcess:
    """`gyre operator` as a real subprocess (so it can be SIGKILLed), watching one namespace as the test instance.

    Its output goes to a file; `output()` reads it for failure messages.
    """

    def __init__(self, namespace: str, *args: str, kubeconfig: Path | None = None) -> None:
        self.namespace = namespace
        self.args = list(args)
        self.kubeconfig = kubeconfig
        self.log = Path(tempfile.mkstemp(prefix="gyre-operator-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def cmd(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gyre.cli",
            "operator",
            "--namespace",
            self.namespace,
            "--instance",
            INSTANCE,
            *self.args,
        ]

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "GYRE_IMAGE": NEVER_PULLED,
            "GYRE_IMAGE_PULL_POLICY": "Never",
            "GYRE_ARTIFACT_STORE": "pvc://gyre-artifacts",
            "PYTHONUNBUFFERED": "1",
        }
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        with self.log.open("ab") as out:
            out.write(f"==== {time.strftime('%H:%M:%S')} start {' '.join(self.cmd)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no Lease release, as when a node dies."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time; returns the exit code of the SIGTERM path."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def output(self, tail: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])


@contextlib.contextmanager
def operator_processes(*procs: OperatorProcess) -> Iterator[None]:
    """Start them; whatever happens, none outlives the test."""
    try:
        for proc in procs:
            proc.start()
        yield
    finally:
        for proc in procs:
            proc.terminate(timeout=15)


class SlowProxy:
    """A TCP proxy on 127.0.0.1 that adds `delay` seconds to every chunk in both directions.

    It forwards bytes (TLS passes through untouched), so clients pointed at it verify the API server's own
    certificate. Runs its own event loop in a thread.
    """

    def __init__(self, upstream_host: str, upstream_port: int, delay: float) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, name="slow-proxy", daemon=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                await asyncio.sleep(self.delay)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(self._pump(client_r, up_w), self._pump(up_r, client_w))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10)


def kubelet_env(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The environment a container gets from its spec: values, and secretKeyRefs resolved (optional ones
    skipped when missing), as the kubelet does."""
    out = {}
    for item in container.get("env", []):
        if "value" in item:
            out[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        if value is None:
            assert ref.get("optional"), f"{item['name']}: a required key would keep the pod from starting"
            continue
        out[item["name"]] = value
    assert "envFrom" not in container
    return out


def run_job(
    job: dict[str, Any],
    secrets: dict[str, dict[str, str]],
    tmp_path: Path,
    *,
    pvc_mount: Path | None = None,
) -> tuple[str, str, str]:
    """Run a Job's container command here, with the pod's environment; returns (report, stdout, stderr).

    `pvc_mount`: where the artifact claim's content is on this machine (the pod mounts it at its usual path).
    """
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GYRE_"))}
    env.update(kubelet_env(container, secrets))
    log = tmp_path / f"{job['metadata']['name']}.termination-log"
    env.update(GYRE_TERMINATION_LOG=str(log), HOME=str(tmp_path))
    if pvc_mount is not None:
        env["GYRE_PVC_MOUNT"] = str(pvc_mount)
    proc = subprocess.run(
        [sys.executable, "-m", "gyre", *container["args"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return (log.read_text() if log.exists() else ""), proc.stdout, proc.stderr
