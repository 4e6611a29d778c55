"""What the e2e tests do to the cluster: create Gyre objects, wait for their status, and run clients in pods.

Clients run inside the cluster (a pod of the project image), so requests take the path a user's would: the Service's
DNS name, kube-proxy, and whichever server pods are ready at that moment.
"""

from __future__ import annotations

import builtins
import json
import textwrap
import time
from collections.abc import Callable
from typing import Any, TypeVar

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "gyre.dev", "v1alpha1"
T = TypeVar("T")

__all__ = ["Kube", "condition", "wait_for"]


def wait_for(fn: Callable[[], T | None], *, timeout: float, what: str, interval: float = 2.0) -> T:
    """Poll fn() until it returns something truthy. The timeout bounds liveness; it is not a speed assertion."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """A condition of a custom object's status, by type."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


# A small closed-loop HTTP client run in a pod: N workers post for `seconds`, then report every status code seen.
_LOAD_CLIENT = textwrap.dedent(
    """
    import asyncio, collections, json, os, sys, time
    import aiohttp

    URL, BODY = os.environ["URL"], os.environ["BODY"].encode()
    SECONDS, WORKERS = float(os.environ["SECONDS"]), int(os.environ["WORKERS"])
    codes, errors, bodies = collections.Counter(), collections.Counter(), {}

    async def worker(session, stop):
        while time.monotonic() < stop:
            try:
                async with session.post(URL, data=BODY, headers={"content-type": "application/json"}) as r:
                    text = await r.text()
                    codes[str(r.status)] += 1
                    bodies.setdefault(str(r.status), text[:300])
            except Exception as exc:
                errors[type(exc).__name__ + ": " + str(exc)[:120]] += 1
                await asyncio.sleep(0.05)

    async def main():
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            stop = time.monotonic() + SECONDS
            await asyncio.gather(*(worker(session, stop) for _ in range(WORKERS)))
        report = {"codes": dict(codes), "errors": dict(errors.most_common(5)), "bodies": bodies}
        text = json.dumps(report)
        print(text)
        with open("/dev/termination-log", "w") as fh:
            fh.write(text[:4000])

    asyncio.run(main())
    """
)


class Kube:
    """Calls against one test namespace."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str, *, image: str) -> None:
        self.api = api
        self.namespace = namespace
        self.image = image
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)
        self.batch = kubernetes.client.BatchV1Api(api)
        self.apps = kubernetes.client.AppsV1Api(api)
        self._failed = False

    # --- Gyre objects -------------------------------------------------------------------------------------------
    def create(
        self, kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
    ) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.lower() + "s", body)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.lower() + "s", name
        )
        return obj

    def list(self, kind: str) -> list[dict[str, Any]]:
        result = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.lower() + "s")
        return list(result.get("items") or [])

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.lower() + "s", name, patch
        )

    def wait_phase(self, kind: str, name: str, phases: set[str], *, timeout: float = 300) -> dict[str, Any]:
        """Wait until status.phase is one of `phases`; a Failed phase not asked for fails at once with the reason."""

        def check() -> dict[str, Any] | None:
            obj = self.get(kind, name)
            phase = (obj.get("status") or {}).get("phase")
            if phase in phases:
                return obj
            if phase == "Failed":
                self._failed = True
                conds = (obj.get("status") or {}).get("conditions")
                pytest.fail(f"{kind} {name} failed: {json.dumps(conds, indent=1)}", pytrace=False)
            return None

        return wait_for(check, timeout=timeout, what=f"{kind} {name} phase in {sorted(phases)}")

    def wait_condition(
        self, kind: str, name: str, type_: str, status: str, *, timeout: float = 300
    ) -> dict[str, Any]:
        """Wait until the condition `type_` has `status`; returns the whole object."""

        def check() -> dict[str, Any] | None:
            obj = self.get(kind, name)
            cond = condition(obj, type_)
            return obj if cond is not None and cond.get("status") == status else None

        return wait_for(check, timeout=timeout, what=f"{kind} {name} condition {type_}={status}")

    def events(self, name: str | None = None) -> builtins.list[tuple[str, str, str]]:
        """(type, reason, message) of the namespace's Events, optionally about one object."""
        items = self.core.list_namespaced_event(self.namespace).items
        return [
            (e.type, e.reason, e.message or "")
            for e in items
            if name is None or (e.involved_object and e.involved_object.name == name)
        ]

    # --- pods that do things inside the cluster -----------------------------------------------------------------
    def run_pod(
        self,
        name: str,
        args: builtins.list[str],
        *,
        env: dict[str, str] | None = None,
        mount_artifacts: bool = False,
        timeout: float = 300,
    ) -> str:
        """Run the project image once with `args` (python3 or gyre) and return its termination message.

        The pod runs as the restricted Pod Security profile requires, so tests exercise the same constraints
        as Gyre's own pods.
        """
        volumes, mounts = [], []
        if mount_artifacts:
            volumes = [{"name": "artifacts", "persistentVolumeClaim": {"claimName": "gyre-artifacts"}}]
            mounts = [{"name": "artifacts", "mountPath": "/var/lib/gyre/artifacts"}]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "fsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "main",
                        "image": self.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": [args[0]],
                        "args": args[1:],
                        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "volumeMounts": mounts,
                    }
                ],
                "volumes": volumes,
            },
        }
        self.core.create_namespaced_pod(self.namespace, pod)

        def finished() -> Any:
            status = self.core.read_namespaced_pod(name, self.namespace).status
            return status if status.phase in ("Succeeded", "Failed") else None

        status = wait_for(finished, timeout=timeout, what=f"pod {name} to finish")
        term = status.container_statuses[0].state.terminated
        message = (term.message or "").strip()
        if status.phase != "Succeeded":
            logs = self.core.read_namespaced_pod_log(name, self.namespace, tail_lines=40)
            pytest.fail(f"pod {name} failed (exit {term.exit_code}): {message}\n{logs}", pytrace=False)
        return message

    def load(
        self, name: str, url: str, body: dict[str, Any], *, seconds: float, workers: int
    ) -> dict[str, Any]:
        """Post `body` to `url` from inside the cluster for `seconds` with `workers` concurrent clients."""
        env = {"URL": url, "BODY": json.dumps(body), "SECONDS": str(seconds), "WORKERS": str(workers)}
        report: dict[str, Any] = json.loads(
            self.run_pod(name, ["python3", "-c", _LOAD_CLIENT], env=env, timeout=seconds + 180)
        )
        return report

    def start_load(
        self, name: str, url: str, body: dict[str, Any], *, seconds: float, workers: int
    ) -> Callable[[], dict[str, Any]]:
        """Like load(), but returns at once; call the result to wait for the report."""
        import threading

        out: dict[str, Any] = {}

        def run() -> None:
            try:
                out["report"] = self.load(name, url, body, seconds=seconds, workers=workers)
            except BaseException as exc:  # surfaced to the caller when it asks for the result
                out["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def result() -> dict[str, Any]:
            thread.join(seconds + 240)
            if "error" in out:
                raise out["error"]
            return dict(out["report"])

        return result

    def dump_on_failure(self) -> None:
        """Print the namespace's Events and the operator's log tail when the test failed (pytest shows stdout)."""
        try:
            for type_, reason, message in self.events():
                print(f"event {type_} {reason}: {message}")
            pods = self.core.list_namespaced_pod("gyre-system").items
            for pod in pods:
                print(self.core.read_namespaced_pod_log(pod.metadata.name, "gyre-system", tail_lines=60))
        except ApiException:
            pass
