"""Burst benchmark: N TrainingRuns at once against the real API server, Gyre vs a bare client loop.

For each burst size N, two phases run one after the other on the same cluster, each in a fresh namespace whose
ResourceQuota allows no pods (Jobs are created, their pods are refused), so the control plane is what is measured:

- gyre: the operator under test runs as a subprocess (`python -m gyre.cli operator ...`, black-box: only its CLI and
  the API are used); N TrainingRuns are created as fast as possible against one Dataset that is already Ready.
- peer: a bare kubernetes-client loop creates N Jobs of the same shape (a copy of a Job the operator created).

Measured per phase: time from the first create call until the last Job is observed (by a watch), the latency from
each create call's return to its Job being observed (p50/p99), the operator's peak RSS, and the API server's own
request counters (`apiserver_request_total`, scraped before and after) by verb and resource. The API server does
not label requests by client, so requests are attributed by difference (see `attribute`); docs/benchmarks.md
describes the method. Results are printed and written as JSON; targets are reported (PASS/MISS), never asserted.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import json
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "gyre.dev", "v1alpha1"
INSTANCE_LABEL = "gyre.dev/operator-instance"
INSTANCE = "bench"
# A label value no operator runs as: the Dataset fixture must not be handled (profiled) by anyone; the operator
# resolves a TrainingRun's Dataset by name, whatever its instance label.
FIXTURE_INSTANCE = "bench-fixture"
DATASET = "bench-iris"
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")
TARGET_THROUGHPUT = 0.5
TARGET_WRITES = 4.0
TARGET_RSS_MB = 250.0
NOISE_PER_OBJECT = 0.1
DEFAULT_OPERATOR_CMD = (
    "{python} -m gyre.cli operator --standalone --instance {instance} --namespace {namespace} "
    "--liveness http://127.0.0.1:{port}/healthz"
)
IRIS_COLUMNS = [
    ("sepal length (cm)", "numeric", "float64"),
    ("sepal width (cm)", "numeric", "float64"),
    ("petal length (cm)", "numeric", "float64"),
    ("petal width (cm)", "numeric", "float64"),
    ("target", "categorical", "int64"),
]

Key = tuple[str, str, str]
K = TypeVar("K")  # (verb, resource[/subresource] with group, code class)


def log(message: str) -> None:
    """Progress on stderr, timestamped, so stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# API access


class Kube:
    """The harness's clients; each creating thread gets its own ApiClient (urllib3 pools are per client)."""

    def __init__(self, kubeconfig: str, context: str | None) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self._local = threading.local()
        self.api = self.client()

    def client(self) -> kubernetes.client.ApiClient:
        """A new ApiClient with the kubeconfig's (admin) credentials."""
        return kubernetes.config.new_client_from_config(config_file=self.kubeconfig, context=self.context)

    def thread_client(self) -> kubernetes.client.ApiClient:
        """This thread's ApiClient."""
        api: kubernetes.client.ApiClient | None = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = self.client()
        return api

    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api)

    def custom(self, api: kubernetes.client.ApiClient | None = None) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(api or self.api)

    def batch(self, api: kubernetes.client.ApiClient | None = None) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(api or self.api)

    def metrics(self) -> str:
        """The API server's /metrics text; retried, because on the shared cluster the API server may restart."""
        for attempt in range(10):
            try:
                resp = self.api.call_api(
                    "/metrics",
                    "GET",
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=60,
                )
                return str(resp[0].data.decode())
            except Exception as exc:
                if attempt == 9:
                    raise
                log(f"scraping /metrics failed ({type(exc).__name__}); again in 3 s")
                time.sleep(3)
        raise AssertionError("unreachable")

    def scrape(self) -> dict[Key, float]:
        """apiserver_request_total from the API server's /metrics, summed by (verb, resource, code class)."""
        text = self.metrics()
        out: dict[Key, float] = collections.defaultdict(float)
        for family in text_string_to_metric_families(text):
            if family.name != "apiserver_request":  # the parser drops the _total suffix of counters
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                lab = sample.labels
                if not lab.get("resource"):
                    continue  # non-resource requests: /metrics, /healthz, discovery
                resource = lab["resource"] + (f"/{lab['subresource']}" if lab.get("subresource") else "")
                if lab.get("group"):
                    resource = f"{resource}.{lab['group']}"
                out[(lab["verb"], resource, lab.get("code", "")[:1] + "xx")] += sample.value
        return dict(out)


def diff(after: dict[K, float], before: dict[K, float]) -> dict[K, float]:
    """Counter increase per key (keys that did not move are left out)."""
    out = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return {k: v for k, v in out.items() if v}


def install_crds(kube: Kube, directory: Path) -> None:
    """Server-side apply the CRDs of the tree under test (as the integration tests do) and wait until served."""
    files = sorted(directory.glob("*.gyre.dev.yaml"))
    if not files:
        raise RuntimeError(f"no CRDs in {directory}")
    crds = kubernetes.dynamic.DynamicClient(kube.api).resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    names = []
    for path in files:
        doc = yaml.safe_load(path.read_text())
        crds.server_side_apply(
            body=doc, name=doc["metadata"]["name"], field_manager="gyre-bench", force_conflicts=True
        )
        names.append(doc["metadata"]["name"])
    ext = kubernetes.client.ApiextensionsV1Api(kube.api)

    def established() -> bool:
        for name in names:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_until(established, 60, "the CRDs to be established", poll=0.5)


# The operator's requests are counted by the API server itself: it runs as its own ServiceAccount, and one
# FlowSchema per (verb, resource) for that subject (plus a catch-all per verb and one for non-resource URLs) makes
# apiserver_flowcontrol_dispatched_requests_total{flow_schema=...} an exact per-client count. apiserver_request_total
# has no client label, and other tenants of a shared cluster make a by-difference attribution noisy.
APF_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
APF_RESOURCES = (
    "trainingruns",
    "trainingruns/status",
    "datasets",
    "datasets/status",
    "jobs",
    "jobs/status",
    "pods",
    "events",
    "persistentvolumeclaims",
    "leases",
    "kopfpeerings",
    "namespaces",
    "customresourcedefinitions",
)
APF_WRITES = ("create", "update", "patch", "delete", "deletecollection")
APF_PRIORITY_LEVEL = "workload-low"  # where ServiceAccounts land by default (FlowSchema service-accounts)


@dataclass
class Accounting:
    """The operator's identity (ServiceAccount, binding, kubeconfig) and the FlowSchemas that count its requests."""

    namespace: str
    tag: str
    kubeconfig: str = ""
    schemas: dict[str, tuple[str, str]] = field(default_factory=dict)
    """FlowSchema name -> (verb, resource); resource "*" for a verb's catch-all, "nonresource" for URLs."""

    @property
    def account(self) -> str:
        return "gyre-bench-operator"


def resource_rule(verb: str, resource: str) -> dict[str, Any]:
    """A FlowSchema resource rule: one verb on one resource (or "*"), any group, namespaced or cluster-scoped."""
    return {
        "verbs": [verb],
        "apiGroups": ["*"],
        "resources": [resource],
        "namespaces": ["*"],
        "clusterScope": True,
    }


def set_up_accounting(kube: Kube, acc: Accounting, log_dir: Path) -> None:
    """Create the operator's ServiceAccount (cluster-admin, as a default install's operator is trusted), a token
    kubeconfig for it, and the counting FlowSchemas."""
    core = kube.core()
    core.create_namespaced_service_account(acc.namespace, {"metadata": {"name": acc.account}})
    rbac = kubernetes.client.RbacAuthorizationV1Api(kube.api)
    rbac.create_cluster_role_binding(
        {
            "metadata": {
                "name": f"gyre-bench-{acc.tag}-{acc.namespace}",
                "labels": {"gyre.dev/bench": "burst"},
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": acc.account, "namespace": acc.namespace}],
        }
    )
    token = core.create_namespaced_service_account_token(
        acc.account, acc.namespace, {"spec": {"expirationSeconds": 4 * 3600}}
    ).status.token
    config = yaml.safe_load(Path(kube.kubeconfig).read_text())
    context_name = kube.context or config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    ca = cluster.get("certificate-authority")
    if ca and not Path(ca).is_absolute():
        cluster = {**cluster, "certificate-authority": str(Path(kube.kubeconfig).parent / ca)}
    own = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster}],
        "users": [{"name": acc.account, "user": {"token": token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": acc.account}}],
        "current-context": "bench",
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"kubeconfig-{acc.namespace}"
    path.write_text(yaml.safe_dump(own))
    path.chmod(0o600)
    acc.kubeconfig = str(path)
    subject = {"kind": "ServiceAccount", "serviceAccount": {"name": acc.account, "namespace": acc.namespace}}
    rules: list[tuple[str, str, dict[str, Any]]] = []
    for verb in APF_VERBS:
        for resource in APF_RESOURCES:
            rules.append((verb, resource, resource_rule(verb, resource)))
    # Catch-alls come after the specific schemas (higher matchingPrecedence): whatever a rewrite calls is counted.
    for verb in APF_VERBS:
        rules.append((verb, "*", resource_rule(verb, "*")))
    custom = kube.custom()
    for i, (verb, resource, rule) in enumerate(rules):
        name = f"gyre-bench-{acc.tag}-{acc.namespace[-12:]}-{i}".replace("--", "-")
        spec: dict[str, Any] = {
            "priorityLevelConfiguration": {"name": APF_PRIORITY_LEVEL},
            "matchingPrecedence": 1000 + i,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{"subjects": [subject], "resourceRules": [rule]}],
        }
        body = {"metadata": {"name": name, "labels": {"gyre.dev/bench": "burst"}}, "spec": spec}
        custom.create_cluster_custom_object("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", body)
        acc.schemas[name] = (verb, resource)
    name = f"gyre-bench-{acc.tag}-{acc.namespace[-12:]}-url"
    body = {
        "metadata": {"name": name, "labels": {"gyre.dev/bench": "burst"}},
        "spec": {
            "priorityLevelConfiguration": {"name": APF_PRIORITY_LEVEL},
            "matchingPrecedence": 1000 + len(rules),
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {"subjects": [subject], "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}
            ],
        },
    }
    custom.create_cluster_custom_object("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", body)
    acc.schemas[name] = ("*", "nonresource")
    time.sleep(3)  # the API server's APF configuration controller picks the schemas up asynchronously


def tear_down_accounting(kube: Kube, acc: Accounting) -> None:
    """Delete the FlowSchemas, the ClusterRoleBinding and the token kubeconfig (the ServiceAccount goes with its
    namespace)."""
    if acc.kubeconfig:
        Path(acc.kubeconfig).unlink(missing_ok=True)
    custom = kube.custom()
    for name in acc.schemas:
        with contextlib.suppress(Exception):
            custom.delete_cluster_custom_object("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", name)
    with contextlib.suppress(Exception):
        kubernetes.client.RbacAuthorizationV1Api(kube.api).delete_cluster_role_binding(
            f"gyre-bench-{acc.tag}-{acc.namespace}"
        )


def scrape_dispatched(kube: Kube, acc: Accounting) -> dict[str, float]:
    """apiserver_flowcontrol_dispatched_requests_total of the accounting schemas, as "verb resource" -> count."""
    out: dict[str, float] = collections.defaultdict(float)
    for family in text_string_to_metric_families(kube.metrics()):
        if family.name != "apiserver_flowcontrol_dispatched_requests":
            continue
        for sample in family.samples:
            schema = sample.labels.get("flow_schema", "")
            if sample.name.endswith("_total") and schema in acc.schemas:
                verb, resource = acc.schemas[schema]
                out[f"{verb} {resource}"] += sample.value
    return dict(out)


def create_namespace(kube: Kube, name: str) -> None:
    """A fresh namespace whose quota refuses every pod, so Jobs exist but never run."""
    core = kube.core()
    core.create_namespace({"metadata": {"name": name, "labels": {"gyre.dev/bench": "burst"}}})
    core.create_namespaced_resource_quota(
        name, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )


def delete_namespaces(kube: Kube, names: list[str], timeout: float) -> None:
    """Delete the namespaces and wait for them a bounded time (thousands of objects take a while to go)."""
    core = kube.core()
    for name in names:
        # Broad on purpose: cleanup must not turn a finished run into a crash (the API server may be restarting).
        with contextlib.suppress(Exception):
            core.delete_namespace(name, propagation_policy="Background")
    deadline = time.monotonic() + timeout
    left = list(names)
    while left and time.monotonic() < deadline:
        time.sleep(2)
        still = []
        for name in left:
            try:
                core.read_namespace(name)
                still.append(name)
            except ApiException as exc:
                if exc.status != 404:
                    still.append(name)
            except Exception:  # the API server restarting: ask again
                still.append(name)
        left = still
    if left:
        log(f"namespaces still terminating after {timeout:.0f}s (left to the API server): {', '.join(left)}")


def release_finalizers(kube: Kube, namespace: str, workers: int) -> int:
    """Remove finalizers from every Gyre object in the namespace (the operator that would release them is gone).

    Without this, the namespace would stay Terminating forever. Returns how many objects were patched.
    """
    patched = 0
    for plural in ("trainingruns", "datasets"):
        listed = kube.custom().list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, _preload_content=False
        )
        names = [
            o["metadata"]["name"] for o in json.loads(listed.data)["items"] if o["metadata"].get("finalizers")
        ]

        def release(name: str, plural: str = plural) -> None:
            with contextlib.suppress(ApiException):
                kube.custom(kube.thread_client()).patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    name,
                    {"metadata": {"finalizers": None}},
                    _preload_content=False,
                )

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(release, names))
        patched += len(names)
    return patched


def create_ready_dataset(kube: Kube, namespace: str) -> None:
    """One Dataset whose status already says Ready, as a profiling Job would have left it."""
    custom = kube.custom()
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataset",
        "metadata": {"name": DATASET, "labels": {INSTANCE_LABEL: FIXTURE_INSTANCE}},
        "spec": {"source": {"uri": "builtin://iris"}, "target": "target"},
    }
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "datasets", body)
    digest = "0" * 63 + "1"
    status = {
        "phase": "Ready",
        "fingerprint": f"sha256:{digest}",
        "version": 1,
        "rows": 150,
        "columns": [{"name": n, "kind": k, "dtype": d} for n, k, d in IRIS_COLUMNS],
        "columnCount": len(IRIS_COLUMNS),
        "target": "target",
        "dataUri": f"pvc://gyre-artifacts/datasets/{namespace}/{DATASET}/{digest}/data.parquet",
        "jobName": f"{DATASET}-profile-bench",
        "observedGeneration": created["metadata"].get("generation", 1),
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Profiled",
                "message": "fixture of the burst benchmark",
                "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        ],
    }
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "datasets", DATASET, {"status": status}
    )


def training_run(name: str) -> dict[str, Any]:
    """One TrainingRun of the burst (the iris-rf sample's spec)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingRun",
        "metadata": {"name": name, "labels": {INSTANCE_LABEL: INSTANCE}},
        "spec": {
            "datasetRef": {"name": DATASET},
            "target": "target",
            "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 100, "max_depth": 5}},
            "split": {"testSize": 0.3, "seed": 42},
            "gates": [{"metric": "accuracy", "min": 0.85}],
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# Watching


@dataclass
class Watcher:
    """A raw watch on one collection in one namespace: first-seen time per object, time of the last change.

    Raw JSON lines, not the client's model objects: deserialising 2,000 Jobs into models would cost the harness
    more CPU than the operator gets on this 2-core machine.
    """

    list_call: Callable[..., Any]
    label_selector: str = ""
    first_seen: dict[str, float] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_change: float = 0.0
    changes: int = 0
    error: str | None = None
    restarts: int = 0
    relisted: int = 0
    _gone: bool = False
    _rv: str = ""
    _resp: Any = None
    _thread: threading.Thread | None = None
    _stop: bool = False

    def start(self) -> None:
        """LIST for a resourceVersion, then WATCH from it in a thread."""
        listed = self.list_call(label_selector=self.label_selector, _preload_content=False)
        rv = self._rv = json.loads(listed.data)["metadata"]["resourceVersion"]
        self._resp = self.list_call(
            label_selector=self.label_selector,
            watch=True,
            resource_version=rv,
            timeout_seconds=3600,
            _preload_content=False,
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # The API server may end a watch early (overload, restarts on this shared cluster): resume from the last
        # resourceVersion seen, so the quiet test does not read a dead watch as "nothing changes".
        while not self._stop:
            buf = b""
            try:
                for chunk in self._resp.stream(65536, decode_content=True):
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if line.strip():
                            self._event(json.loads(line))
            except Exception as exc:
                if self._stop:
                    return
                self.error = repr(exc)[:300]
            if self._stop:
                return
            self.restarts += 1
            try:
                if self._gone:
                    self._relist()
                self._resp = self.list_call(
                    label_selector=self.label_selector,
                    watch=True,
                    resource_version=self._rv,
                    timeout_seconds=3600,
                    _preload_content=False,
                )
            except Exception as exc:
                self.error = repr(exc)[:300]
                time.sleep(1)

    def _event(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            self.error = json.dumps(obj)[:300]
            self._gone = obj.get("code") == 410  # resourceVersion too old: only a new LIST helps
            return
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return
        self.first_seen.setdefault(name, now)
        self.objects[name] = obj
        self._rv = str(obj["metadata"].get("resourceVersion", self._rv))
        self.last_change = now
        self.changes += 1

    def _relist(self) -> None:
        """LIST again after a 410; objects first seen this way get the LIST's time (late, counted in `relisted`)."""
        listed = json.loads(self.list_call(label_selector=self.label_selector, _preload_content=False).data)
        now = time.monotonic()
        for obj in listed["items"]:
            name = obj["metadata"]["name"]
            if name not in self.first_seen:
                self.first_seen[name] = now
                self.relisted += 1
            self.objects[name] = obj
        self._rv = listed["metadata"]["resourceVersion"]
        self._gone = False

    def stop(self) -> None:
        """End the watch (the API server counts the WATCH request then).

        The socket is shut down rather than the response closed: close() waits for the buffered reader's lock,
        which the watching thread holds while it blocks in recv().
        """
        self._stop = True
        sock = getattr(getattr(self._resp, "connection", None), "sock", None)
        with contextlib.suppress(OSError):
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._resp.close()


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    poll: float = 0.05,
    progress: Callable[[], str] | None = None,
) -> bool:
    """Poll until predicate() holds; False (and a log line) on timeout. `progress` is logged every 15 s."""
    deadline = time.monotonic() + timeout
    next_log = time.monotonic() + 15
    while time.monotonic() < deadline:
        if predicate():
            return True
        if progress is not None and time.monotonic() >= next_log:
            log(f"waiting for {what}: {progress()}")
            next_log += 15
        time.sleep(poll)
    log(f"timed out after {timeout:.0f}s waiting for {what}")
    return False


def wait_quiet(watchers: list[Watcher], quiet: float, timeout: float) -> None:
    """Wait until no watched object has changed for `quiet` seconds (writes that follow the Job have landed).

    Without watchers, just wait `quiet` seconds (nothing follows a bare loop's last create).
    """
    if not watchers:
        time.sleep(quiet)
        return
    wait_until(
        lambda: time.monotonic() - max(w.last_change for w in watchers) >= quiet,
        timeout,
        f"{quiet:.0f}s without changes",
        poll=0.2,
        progress=lambda: ", ".join(f"{w.changes} changes, error {w.error}" for w in watchers),
    )


# ---------------------------------------------------------------------------------------------------------------
# Creating


def burst(
    kube: Kube, bodies: list[dict[str, Any]], create: Callable[..., Any], workers: int
) -> dict[str, float]:
    """Create every body as fast as `workers` threads can; returns the monotonic time each create call returned.

    `create(api_client, body)` does one create with `_preload_content=False` and returns the raw response, whose
    body is drained here so that its connection goes back to the thread's pool: a response dropped unread takes
    its connection with it, and every create then paid a new TLS handshake, on the API server's CPU too. The time
    of the first call's start is stored under "".
    """
    returned: dict[str, float] = {}
    failures: list[str] = []

    def one(body: dict[str, Any]) -> None:
        try:
            response = create(kube.thread_client(), body)
        except ApiException as exc:
            failures.append(f"{body['metadata']['name']}: {exc.status} {exc.reason}")
            return
        returned[body["metadata"]["name"]] = time.monotonic()
        response.drain_conn()
        response.release_conn()

    # Clients are made (TLS handshakes aside) before the clock starts.
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: kube.thread_client(), range(workers * 4)))
        start = time.monotonic()
        list(pool.map(one, bodies))
    returned[""] = start
    if failures:
        log(f"{len(failures)} creates failed, e.g. {failures[0]}")
    return returned


# ---------------------------------------------------------------------------------------------------------------
# The operator


def free_port() -> int:
    """A free TCP port on localhost for the operator's liveness endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RssSampler:
    """Samples VmRSS of a process from /proc every `interval` seconds; VmHWM gives the kernel's own peak."""

    pid: int
    interval: float = 0.2
    peak_kb: int = 0
    hwm_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def read(self) -> None:
        """One sample."""
        with contextlib.suppress(OSError), open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                elif line.startswith("VmHWM:"):
                    self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.read()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.read()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


@dataclass
class OperatorProbe:
    """What the operator spent: CPU seconds (user + system, from /proc/PID/stat) and handler runs by kind (its
    gyre_operator_reconciles_total, from its metrics endpoint; empty when that does not answer)."""

    pid: int
    metrics_url: str

    def cpu_s(self) -> float:
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def handler_runs(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=10) as resp:
                text = resp.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = collections.defaultdict(float)
        for family in text_string_to_metric_families(text):
            if family.name == "gyre_operator_reconciles":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        out[sample.labels["kind"]] += sample.value
        return dict(out)


@contextlib.contextmanager
def running_operator(
    args: argparse.Namespace, namespace: str, log_path: Path, kubeconfig: str, metrics_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator under test as a subprocess, ready (liveness answers) when the block starts."""
    port = free_port()
    command = args.operator_cmd.format(python=args.python, instance=INSTANCE, namespace=namespace, port=port)
    env = dict(os.environ)
    env.update(
        {
            # Its Prometheus endpoint, for the handler-run counter (OperatorProbe).
            "GYRE_METRICS_PORT": str(metrics_port),
            "KUBECONFIG": kubeconfig,
            "PYTHONPATH": args.operator_tree,
            "PYTHONUNBUFFERED": "1",
            "GYRE_OPERATOR_INSTANCE": INSTANCE,
            # Never pulled, never run: the quota refuses every pod anyway.
            "GYRE_IMAGE": "gyre-bench:never",
            "GYRE_IMAGE_PULL_POLICY": "Never",
            # The default pvc:// store makes the operator create its claim; a class nobody provides keeps that
            # claim Pending instead of taking one of the cluster's shared volumes.
            "GYRE_ARTIFACT_STORAGE_CLASS": "gyre-bench-none",
        }
    )
    log(f"operator: {command} (PYTHONPATH={args.operator_tree}, log {log_path})")
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(shlex.split(command), env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        if "{port}" in args.operator_cmd:
            url = f"http://127.0.0.1:{port}/healthz"

            def ready() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"the operator exited with {proc.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(url, timeout=1) as resp:
                        return bool(resp.status == 200)
                except OSError:
                    return False

            if not wait_until(ready, 120, "the operator's liveness endpoint", poll=0.2):
                raise RuntimeError(f"the operator did not become ready; see {log_path}")
        time.sleep(args.startup_delay)  # its watches are being established
        if proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {proc.returncode}; see {log_path}")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------------------------
# Phases


@dataclass
class PhaseResult:
    """What one phase (gyre or peer) measured for one burst size."""

    side: str
    size: int
    namespace: str
    jobs_seen: int = 0
    create_s: float = 0.0
    """First create call until the last create call returned."""
    all_jobs_s: float = 0.0
    """First create call until the last Job was observed."""
    throughput: float = 0.0
    """Jobs per second over all_jobs_s."""
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    settle_s: float = 0.0
    """First create call until the watched objects stopped changing (the after-scrape follows)."""
    rss_peak_mb: float | None = None
    rss_hwm_mb: float | None = None
    requests: dict[str, float] = field(default_factory=dict)
    """apiserver_request_total increase over the burst window, "VERB resource code" -> count."""
    idle_requests: dict[str, float] = field(default_factory=dict)
    """The same over an idle window after the burst settled."""
    idle_s: float = 0.0
    harness_requests: dict[str, float] = field(default_factory=dict)
    """Requests the harness itself made inside the burst window (subtracted in the attribution)."""
    operator_requests: dict[str, float] = field(default_factory=dict)
    """The operator's own requests over the burst window, "verb resource" -> count (APF counters, exact)."""
    operator_idle_requests: dict[str, float] = field(default_factory=dict)
    """The same over the idle window."""
    operator_cpu_s: float | None = None
    """The operator's CPU time (user + system) over the burst window."""
    operator_idle_cpu_s: float | None = None
    handler_runs: dict[str, float] = field(default_factory=dict)
    """The operator's handler runs by kind over the burst window (gyre_operator_reconciles_total)."""
    idle_handler_runs: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def key_name(key: Key) -> str:
    return " ".join(key)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def job_owner(job: dict[str, Any]) -> str:
    """The TrainingRun a Job belongs to: its controller ownerReference, else its owner-name label."""
    meta = job.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "TrainingRun":
            return str(ref["name"])
    return str((meta.get("labels") or {}).get("gyre.dev/owner-name", meta.get("name", "")))


def measure(
    result: PhaseResult,
    kube: Kube,
    bodies: list[dict[str, Any]],
    create: Callable[..., Any],
    job_of: Callable[[dict[str, Any]], str],
    extra_watchers: list[Watcher],
    args: argparse.Namespace,
    rss: RssSampler | None,
    acc: Accounting | None = None,
    probe: OperatorProbe | None = None,
) -> None:
    """The common part of both phases: scrape, burst, wait for every Job, settle, scrape, idle, scrape."""
    ns = result.namespace
    size = len(bodies)
    jobs = Watcher(
        lambda **kw: kube.batch().list_namespaced_job(ns, **kw), label_selector=f"{INSTANCE_LABEL}={INSTANCE}"
    )
    watchers = [jobs, *extra_watchers]
    for w in watchers:
        w.start()
    time.sleep(0.5)
    before = kube.scrape()
    own_before = scrape_dispatched(kube, acc) if acc else {}
    cpu_before = probe.cpu_s() if probe else 0.0
    runs_before = probe.handler_runs() if probe else {}
    if rss is not None:
        rss.start()
    returned = burst(kube, bodies, create, args.workers)
    start = returned.pop("")
    result.create_s = max(returned.values(), default=start) - start
    log(f"{result.side} {size}: {len(returned)} creates in {result.create_s:.1f}s")
    wait_until(
        lambda: len(jobs.first_seen) >= len(returned),
        args.timeout,
        f"{size} Jobs",
        progress=lambda: f"{len(jobs.first_seen)} seen, watch error {jobs.error}",
    )
    result.jobs_seen = len(jobs.first_seen)
    last_job = max(jobs.first_seen.values(), default=start)
    result.all_jobs_s = last_job - start
    result.throughput = result.jobs_seen / result.all_jobs_s if result.all_jobs_s > 0 else 0.0
    latencies = []
    for job_name, seen in jobs.first_seen.items():
        owner = job_of(jobs.objects[job_name])
        if owner in returned:
            latencies.append((seen - returned[owner]) * 1000)
    if latencies:
        result.latency_p50_ms = percentile(latencies, 50)
        result.latency_p99_ms = percentile(latencies, 99)
        result.latency_max_ms = max(latencies)
    log(f"{result.side} {size}: {result.jobs_seen} Jobs in {result.all_jobs_s:.1f}s; settling")
    # Not the Jobs: the Job controller keeps updating them while it retries the refused pods.
    wait_quiet(extra_watchers, args.quiet, args.timeout)
    result.settle_s = time.monotonic() - start
    after = kube.scrape()
    own_after = scrape_dispatched(kube, acc) if acc else {}
    if probe:
        cpu_after, runs_after = probe.cpu_s(), probe.handler_runs()
        result.operator_cpu_s = cpu_after - cpu_before
        result.handler_runs = diff(runs_after, runs_before)
    if acc:
        result.operator_requests = {k: v for k, v in sorted(diff(own_after, own_before).items())}
    if rss is not None:
        rss.stop()
        result.rss_peak_mb = rss.peak_kb / 1024
        result.rss_hwm_mb = rss.hwm_kb / 1024
    result.requests = {key_name(k): v for k, v in sorted(diff(after, before).items())}
    if args.idle > 0:
        time.sleep(args.idle)
        idle = kube.scrape()
        if acc:
            own_idle = scrape_dispatched(kube, acc)
            result.operator_idle_requests = {k: v for k, v in sorted(diff(own_idle, own_after).items())}
        if probe:
            result.operator_idle_cpu_s = probe.cpu_s() - cpu_after
            result.idle_handler_runs = diff(probe.handler_runs(), runs_after)
        result.idle_s = args.idle
        result.idle_requests = {key_name(k): v for k, v in sorted(diff(idle, after).items())}
    for w in watchers:
        if w.error or w.restarts:
            result.notes.append(
                f"watch resumed {w.restarts} times, {w.relisted} objects first seen by a re-LIST; last error: {w.error}"
            )
        w.stop()


def run_gyre(
    kube: Kube, size: int, args: argparse.Namespace, tag: str
) -> tuple[PhaseResult, dict[str, Any] | None]:
    """The operator phase; also returns one Job the operator created (the peer's template)."""
    ns = f"burst-{tag}-gyre-{size}"
    result = PhaseResult("gyre", size, ns)
    create_namespace(kube, ns)
    create_ready_dataset(kube, ns)
    acc = Accounting(ns, tag)
    try:
        set_up_accounting(kube, acc, Path(args.log_dir))
        return _run_gyre(kube, result, args, acc)
    finally:
        # Also when interrupted: a namespace whose objects keep finalizers never finishes terminating.
        released = release_finalizers(kube, ns, args.workers)
        if released:
            result.notes.append(
                f"finalizers released by the harness after the operator stopped: {released} objects"
            )
        tear_down_accounting(kube, acc)


def _run_gyre(
    kube: Kube, result: PhaseResult, args: argparse.Namespace, acc: Accounting
) -> tuple[PhaseResult, dict[str, Any] | None]:
    """run_gyre once the namespace, the Dataset and the operator's identity exist."""
    ns, size = result.namespace, result.size
    bodies = [training_run(f"run-{i:05d}") for i in range(size)]

    def create(api: kubernetes.client.ApiClient, body: dict[str, Any]) -> Any:
        return kube.custom(api).create_namespaced_custom_object(
            GROUP, VERSION, ns, "trainingruns", body, _preload_content=False
        )

    runs = Watcher(
        lambda **kw: kube.custom().list_namespaced_custom_object(GROUP, VERSION, ns, "trainingruns", **kw)
    )
    log_path = Path(args.log_dir) / f"operator-{ns}.log"
    metrics_port = free_port()
    with running_operator(args, ns, log_path, acc.kubeconfig, metrics_port) as proc:
        rss = RssSampler(proc.pid)
        rss.read()
        result.notes.append(f"operator RSS when ready: {rss.peak_kb / 1024:.0f} MB")
        probe = OperatorProbe(proc.pid, f"http://127.0.0.1:{metrics_port}/metrics")
        measure(result, kube, bodies, create, job_owner, [runs], args, rss, acc, probe)
        dataset = kube.custom().get_namespaced_custom_object(GROUP, VERSION, ns, "datasets", DATASET)
        phase = (dataset.get("status") or {}).get("phase")
        if phase != "Ready":
            result.notes.append(f"the Dataset fixture is {phase}, not Ready: the operator touched it")
        phases = collections.Counter(
            str((obj.get("status") or {}).get("phase")) for obj in runs.objects.values()
        )
        result.notes.append(f"TrainingRun phases at the end: {dict(phases)}")
    # The harness's own requests inside the window: its creates (its LIST+WATCHes straddle the window).
    result.harness_requests = {"POST trainingruns.gyre.dev 2xx": float(size)}
    template = None
    if runs.objects:
        jobs = kube.batch().list_namespaced_job(ns, limit=1, _preload_content=False)
        items = json.loads(jobs.data)["items"]
        template = items[0] if items else None
    return result, template


def job_template(job: dict[str, Any] | None) -> dict[str, Any]:
    """A Job the operator created, stripped of what the API server and its controllers added, as a template.

    Without an owner: the garbage collector would delete a Job whose owner does not exist.
    """
    if job is None:
        raise RuntimeError("the operator created no Job, so the peer has no template")
    meta = job["metadata"]
    spec = copy.deepcopy(job["spec"])
    spec.pop("selector", None)  # generated from the Job's uid
    labels = spec["template"]["metadata"].get("labels") or {}
    for key in (
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "job-name",
        "batch.kubernetes.io/job-name",
    ):
        labels.pop(key, None)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": meta["name"],
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
        },
        "spec": spec,
    }


def run_peer(
    kube: Kube, size: int, args: argparse.Namespace, tag: str, template: dict[str, Any]
) -> PhaseResult:
    """The bare loop: the same Jobs, created directly."""
    ns = f"burst-{tag}-peer-{size}"
    result = PhaseResult("peer", size, ns)
    create_namespace(kube, ns)
    bodies = []
    for i in range(size):
        body = copy.deepcopy(template)
        body["metadata"]["name"] = f"run-{i:05d}-train"
        body["metadata"]["namespace"] = ns
        bodies.append(body)

    def create(api: kubernetes.client.ApiClient, body: dict[str, Any]) -> Any:
        return kube.batch(api).create_namespaced_job(ns, body, _preload_content=False)

    def own_name(job: dict[str, Any]) -> str:
        return str(job["metadata"]["name"])

    measure(result, kube, bodies, create, own_name, [], args, None)
    result.harness_requests = {"POST jobs.batch 2xx": float(size)}
    return result


# ---------------------------------------------------------------------------------------------------------------
# Attribution and the report


def attribute(gyre: PhaseResult, peer: PhaseResult, idle: bool = False) -> dict[str, float]:
    """Requests of the operator, per key: the gyre window minus the harness's creates minus the background.

    The API server counts requests by verb and resource, not by client. The background is what the cluster does
    in reaction to N Jobs (the Job controller's refused pod creations and their Events, quota status) plus other
    tenants: it is estimated by the peer window without the bare loop's own creates. The peer creates the same
    Jobs, so the reaction is the same; the operator's Job POSTs are left in. With `idle`, the idle windows
    (equally long, no harness requests) are compared instead.
    """
    out: dict[str, float] = collections.defaultdict(float)
    for side, sign in ((gyre, 1.0), (peer, -1.0)):
        for key, value in (side.idle_requests if idle else side.requests).items():
            out[key] += sign * value
        if not idle:
            for key, value in side.harness_requests.items():
                out[key] -= sign * value
    return {k: v for k, v in sorted(out.items()) if abs(v) >= 0.5}


def significant(requests: dict[str, float], n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Split attributed requests into keys of at least NOISE_PER_OBJECT per object and the rest.

    Other tenants' one-off requests (a namespace deletion elsewhere is one DELETE and one LIST per resource type)
    land in one window and not the other; per object they shrink with N, a per-object cost does not.
    """
    big = {k: v for k, v in requests.items() if abs(v) / n >= NOISE_PER_OBJECT}
    small = {k: v for k, v in requests.items() if k not in big}
    return big, small


def writes(requests: dict[str, float]) -> float:
    """Sum of write requests (POST/PUT/PATCH/DELETE, any code: a 409 is a write attempt) in a request map."""
    return sum(v for k, v in requests.items() if k.split(" ")[0] in WRITE_VERBS)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def request_table(requests: dict[str, float], n: float, per: str = "per object") -> None:
    """Print a "VERB resource code" map as a Markdown table."""
    print(f"| verb | resource | code | total | {per} |")
    print("|---|---|---|---:|---:|")
    for key, value in requests.items():
        verb, resource, code = key.split(" ")
        print(f"| {verb} | {resource} | {code} | {value:.0f} | {value / n:.2f} |")


def apf_table(requests: dict[str, float], n: float, per: str = "per object") -> None:
    """Print a "verb resource" map of APF counts as a Markdown table (resource * is a verb's catch-all)."""
    print(f"| verb | resource | total | {per} |")
    print("|---|---|---:|---:|")
    for key, value in requests.items():
        verb, resource = key.split(" ")
        print(f"| {verb} | {resource} | {value:.0f} | {value / n:.2f} |")
    total = sum(requests.values())
    wr = sum(v for k, v in requests.items() if k.split(" ")[0] in APF_WRITES)
    print(f"| all | | {total:.0f} | {total / n:.2f} |")
    print(f"| writes | | {wr:.0f} | {wr / n:.2f} |")


def report(gyre: PhaseResult, peer: PhaseResult) -> dict[str, Any]:
    """Print one burst size's table, request breakdown and targets; return the summary for the JSON file."""
    n = gyre.size
    by_difference, noise = significant(attribute(gyre, peer), n)
    exact = bool(gyre.operator_requests)
    if exact:
        op_writes = sum(v for k, v in gyre.operator_requests.items() if k.split(" ")[0] in APF_WRITES) / n
    else:
        op_writes = writes(by_difference) / n
    peer_own, _ = significant(dict(peer.harness_requests), n)
    peer_writes = writes(peer_own) / n
    ratio = gyre.throughput / peer.throughput if peer.throughput else 0.0
    print(f"\n## Burst of {n}\n")
    print("| | Jobs | all Jobs s | Jobs/s | p50 ms | p99 ms | max ms | settle s | writes/obj | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for side, w in ((gyre, op_writes), (peer, peer_writes)):
        rss = f"{side.rss_hwm_mb:.0f}" if side.rss_hwm_mb is not None else "-"
        print(
            f"| {side.side} | {side.jobs_seen} | {side.all_jobs_s:.1f} | {side.throughput:.1f} | "
            f"{side.latency_p50_ms:.0f} | {side.latency_p99_ms:.0f} | {side.latency_max_ms:.0f} | "
            f"{side.settle_s:.1f} | {w:.2f} | {rss} |"
        )
    if gyre.operator_cpu_s is not None:
        runs = ", ".join(f"{kind} {v / n:.2f}" for kind, v in sorted(gyre.handler_runs.items())) or "-"
        idle_runs = ", ".join(f"{k} {v:.0f}" for k, v in sorted(gyre.idle_handler_runs.items())) or "none"
        print(
            f"\nOperator CPU over the burst window: {gyre.operator_cpu_s:.1f} s "
            f"({gyre.operator_cpu_s / n * 1000:.1f} ms per TrainingRun); handler runs per TrainingRun: {runs}; "
            f"idle window: {gyre.operator_idle_cpu_s or 0.0:.1f} s CPU, handler runs {idle_runs}"
        )
    if exact:
        print(
            f"\nOperator requests per TrainingRun, counted by the API server (APF, its own identity), N={n}:\n"
        )
        apf_table(gyre.operator_requests, n)
    print(f"\nBy difference (apiserver_request_total: gyre window - harness creates - peer window), N={n}:\n")
    request_table(by_difference, n)
    print(
        f"\nBelow {NOISE_PER_OBJECT} per object (other tenants): {len(noise)} keys, "
        f"{sum(abs(v) for v in noise.values()):.0f} requests, {writes(noise):+.0f} writes net"
    )
    idle_per_min: dict[str, float] = {}
    if gyre.idle_s and exact:
        idle_per_min = {k: v / n / gyre.idle_s * 60 for k, v in gyre.operator_idle_requests.items()}
        print(f"\nOperator requests in a {gyre.idle_s:.0f}s idle window after settling (APF):\n")
        apf_table(gyre.operator_idle_requests, n * gyre.idle_s / 60, per="per object per minute")
    print("\nBackground (peer window without the loop's creates):")
    for key, value in background_of(peer).items():
        if abs(value) / n >= NOISE_PER_OBJECT:
            print(f"  {key}: {value:.0f}")
    for side in (gyre, peer):
        for note in side.notes:
            print(f"note ({side.side}): {note}")
    rss_ok = gyre.rss_hwm_mb is not None and gyre.rss_hwm_mb <= TARGET_RSS_MB
    rss_text = f"{gyre.rss_hwm_mb:.0f} MB" if gyre.rss_hwm_mb is not None else "-"
    at = "" if n >= 2000 else " (the target is at 2,000)"
    print("\nTargets:")
    print(
        f"  throughput vs bare loop >= {TARGET_THROUGHPUT:.0%}: {ratio:.1%} {verdict(ratio >= TARGET_THROUGHPUT)}"
    )
    print(
        f"  operator API writes per object <= {TARGET_WRITES:g}: {op_writes:.2f} {verdict(op_writes <= TARGET_WRITES)}"
    )
    print(f"  operator peak RSS <= {TARGET_RSS_MB:.0f} MB: {rss_text} {verdict(rss_ok)}{at}")
    return {
        "size": n,
        "gyre": asdict(gyre),
        "peer": asdict(peer),
        "operator_requests_exact": exact,
        "operator_requests_by_difference": by_difference,
        "operator_requests_by_difference_below_noise": noise,
        "operator_idle_requests_per_object_per_minute": idle_per_min,
        "operator_writes_per_object": op_writes,
        "peer_writes_per_object": peer_writes,
        "throughput_ratio": ratio,
        "targets": {
            "throughput": ratio >= TARGET_THROUGHPUT,
            "writes": op_writes <= TARGET_WRITES,
            "rss": rss_ok if n >= 2000 else None,
        },
    }


def background_of(peer: PhaseResult) -> dict[str, float]:
    """The peer window's requests without the bare loop's own creates."""
    out = dict(peer.requests)
    for key, value in peer.harness_requests.items():
        out[key] = out.get(key, 0.0) - value
    return {k: v for k, v in out.items() if abs(v) >= 0.5}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_python = (
        str(REPO / ".venv/bin/python") if (REPO / ".venv/bin/python").exists() else sys.executable
    )
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="500,2000", help="comma-separated burst sizes (default 500,2000)")
    parser.add_argument(
        "--operator-tree",
        default=str(REPO / "operator"),
        help="source root of the operator under test, set as its PYTHONPATH (default: this checkout's operator/)",
    )
    parser.add_argument(
        "--python", default=default_python, help="interpreter of the operator (default .venv)"
    )
    parser.add_argument(
        "--operator-cmd",
        default=DEFAULT_OPERATOR_CMD,
        help="operator command; {python} {instance} {namespace} {port} are filled in; without {port} the "
        "harness waits --startup-delay instead of polling the liveness endpoint",
    )
    parser.add_argument(
        "--startup-delay", type=float, default=3.0, help="seconds after ready before the burst"
    )
    parser.add_argument("--workers", type=int, default=8, help="creating threads, both sides (default 8)")
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds without changes that end a burst")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window after each burst, s (0: none)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up waiting for Jobs after this, s")
    parser.add_argument("--cleanup-timeout", type=float, default=180.0, help="wait this long for namespaces")
    parser.add_argument(
        "--crds",
        default=None,
        help="apply the CRDs in this directory first (default: manifests/crds next to --operator-tree; 'none': skip)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the namespaces for inspection")
    parser.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG") or str(REPO / ".cluster/kubeconfig")
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: its current one)")
    parser.add_argument("--json", default="/tmp/gyre-bench-burst.json", help="result file")
    parser.add_argument("--log-dir", default="/tmp", help="where operator logs go")
    args = parser.parse_args(argv)
    args.operator_tree = str(Path(args.operator_tree).resolve())
    if args.crds is None:
        args.crds = str(Path(args.operator_tree).parent / "manifests/crds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the finally blocks stop the operator and clean up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    kube = Kube(args.kubeconfig, args.context)
    tag = uuid.uuid4().hex[:6]
    if args.crds != "none":
        install_crds(kube, Path(args.crds))
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    summaries: list[dict[str, Any]] = []
    namespaces: list[str] = []
    pending: list[str] = []  # created and not yet handed to delete_namespaces
    try:
        for size in sizes:
            pair = [f"burst-{tag}-gyre-{size}", f"burst-{tag}-peer-{size}"]
            namespaces += pair
            pending += pair
            gyre, job = run_gyre(kube, size, args, tag)
            peer = run_peer(kube, size, args, tag, job_template(job))
            summaries.append(report(gyre, peer))
            if not args.keep:
                # Before the next size: 2,000 objects going away would share its window.
                pending = [p for p in pending if p not in pair]
                delete_namespaces(kube, pair, args.cleanup_timeout)
    finally:
        if args.keep:
            log(f"kept namespaces: {', '.join(namespaces)}")
        elif pending:
            delete_namespaces(kube, pending, args.cleanup_timeout)
    result = {
        "started": started,
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "operator_tree": args.operator_tree,
        "operator_cmd": args.operator_cmd,
        "workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()},
        "bursts": summaries,
    }
    Path(args.json).write_text(json.dumps(result, indent=2))
    log(f"results in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
