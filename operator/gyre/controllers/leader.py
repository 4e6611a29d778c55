"""Leader election on a coordination.k8s.io/v1 Lease: of N operator replicas, exactly one runs kopf.

Kopf's own peering freezes every replica when their priorities are equal, and kubernetes-client 30.1 only ships a
ConfigMap lock, so this is the client-go protocol on a Lease, kept small:

- `decide` is the whole decision, pure: create, acquire, renew or wait.
- `Elector` does the I/O. Every write carries the resourceVersion it read (create fails with 409 when the Lease
  exists), so two candidates can never both win: the API server admits one write per version.
- Expiry is judged on the candidate's own monotonic clock (how long it has seen the same record unchanged), never
  by comparing another node's renewTime with ours, so clock skew between nodes cannot cause a double leader.

Timing (defaults): leaseDurationSeconds 15, the leader renews every 5 s and gives up (stops kopf, exits non-zero)
when it could not renew for 10 s, which is before any standby may take over (15 s). A standby polls every 2 s, so
after a SIGKILL the survivor leads within lease duration + 2 x retry (19 s); after a SIGTERM the leader clears
holderIdentity and the survivor leads within one retry (2 s).
"""

from __future__ import annotations

import contextlib
import enum
import http.server
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from gyre.controllers import kube

__all__ = [
    "Decision",
    "Elector",
    "LeaseRecord",
    "Observation",
    "Timing",
    "decide",
    "default_identity",
    "default_namespace",
    "observe",
    "standby_health",
]

log = logging.getLogger(__name__)

SERVICEACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class Decision(enum.Enum):
    """What a candidate does with the Lease it just read."""

    CREATE = "create"  # no Lease yet
    ACQUIRE = "acquire"  # released or expired: take it over
    RENEW = "renew"  # ours: push renewTime forward
    WAIT = "wait"  # another holder, not expired (yet)


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease the election reads."""

    holder: str  # "" when released
    duration_s: int
    transitions: int
    resource_version: str
    acquire_time: datetime | None = None
    # The installed Lease's labels and annotations (the chart and manifests/ create it, so that uninstalling removes
    # it): every replace writes them back, so Helm keeps owning the Lease and Argo CD sees no drift.
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    annotations: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Observation:
    """The record version a candidate last saw, and when (its own monotonic clock) it first saw that version."""

    resource_version: str
    seen_at: float


@dataclass(frozen=True)
class Timing:
    """Election periods in seconds. Invariant: renew_every < renew_deadline < duration."""

    duration: float = 15.0
    renew_every: float = 5.0
    renew_deadline: float = 10.0
    retry: float = 2.0

    @classmethod
    def for_duration(cls, duration: float) -> Timing:
        """The client-go proportions (renew at 1/3, give up at 2/3 of the duration), retry at most 2 s."""
        return cls(duration, duration / 3, duration * 2 / 3, min(2.0, duration / 5))


def observe(record: LeaseRecord | None, previous: Observation | None, now: float) -> Observation | None:
    """Update what this candidate has seen: the clock starts again whenever the record changes."""
    if record is None:
        return None
    if previous is not None and previous.resource_version == record.resource_version:
        return previous
    return Observation(record.resource_version, now)


def decide(record: LeaseRecord | None, me: str, now: float, observed: Observation | None) -> Decision:
    """The election step for candidate `me` at monotonic time `now`.

    Invariants: a Lease held by someone else is taken over only after this candidate has seen the very same
    record (resourceVersion) unchanged for a full leaseDurationSeconds; a released Lease (empty holder) is free at
    once; our own Lease is renewed, never re-acquired (so leaseTransitions counts real handovers).
    """
    if record is None:
        return Decision.CREATE
    if record.holder == me:
        return Decision.RENEW
    if not record.holder:
        return Decision.ACQUIRE
    if observed is None or observed.resource_version != record.resource_version:
        return Decision.WAIT
    if now - observed.seen_at >= record.duration_s:
        return Decision.ACQUIRE
    return Decision.WAIT


def default_identity() -> str:
    """Pod name (the hostname in a pod) and pid: unique per process, stable for its lifetime."""
    return f"{kube.pod_name()}_{os.getpid()}"


def default_namespace() -> str | None:
    """The pod's namespace: POD_NAMESPACE (downward API), else the service account's namespace file."""
    env = os.environ.get("POD_NAMESPACE")
    if env:
        return env
    try:
        return SERVICEACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def _api_client() -> kubernetes.client.ApiClient:
    # Its own client: the elector runs in its own thread, beside kopf's.
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration
        )
    return kubernetes.client.ApiClient(configuration)


def _micro(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    """One candidate for one Lease. `acquire` blocks until it leads; `keep` renews in a thread."""

    def __init__(
        self,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing | None = None,
        api: kubernetes.client.CoordinationV1Api | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing or Timing()
        self.api = api or kubernetes.client.CoordinationV1Api(_api_client())
        self.clock = clock
        self.last_attempt = clock()
        self._observed: Observation | None = None
        self._record: LeaseRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- one step

    def _read(self, timeout: float) -> LeaseRecord | None:
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        spec = lease.spec
        return LeaseRecord(
            holder=spec.holder_identity or "",
            duration_s=int(spec.lease_duration_seconds or self.timing.duration),
            transitions=int(spec.lease_transitions or 0),
            resource_version=str(lease.metadata.resource_version),
            acquire_time=spec.acquire_time,
            labels=dict(lease.metadata.labels or {}),
            annotations=dict(lease.metadata.annotations or {}),
        )

    def _body(
        self, record: LeaseRecord | None, holder: str, duration: float, acquired: bool
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        transitions = record.transitions if record else 0
        if acquired and record is not None and record.holder != holder:
            transitions += 1
        acquire_time = (
            now if acquired or record is None or record.acquire_time is None else record.acquire_time
        )
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if record is not None:
            metadata["resourceVersion"] = record.resource_version
            metadata.update({"labels": record.labels, "annotations": record.annotations})
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, round(duration)),
            "acquireTime": _micro(acquire_time),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def try_once(self, timeout: float | None = None) -> bool:
        """Read the Lease, decide, write. Returns whether this candidate holds the Lease afterwards.

        A 409 (another candidate wrote first) or any API error is a lost round, not an exception.
        """
        timeout = timeout if timeout is not None else 2 * self.timing.retry
        self.last_attempt = self.clock()
        try:
            record = self._read(timeout)
            self._observed = observe(record, self._observed, self.clock())
            decision = decide(record, self.identity, self.clock(), self._observed)
            if decision is Decision.WAIT:
                if record is not None and record != self._record:
                    log.info(
                        "lease %s/%s is held by %s; standing by", self.namespace, self.name, record.holder
                    )
                self._record = record
                return False
            body = self._body(record, self.identity, self.timing.duration, decision is not Decision.RENEW)
            if decision is Decision.CREATE:
                self.api.create_namespaced_lease(self.namespace, body, _request_timeout=timeout)
            else:
                self.api.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=timeout)
            if decision is not Decision.RENEW:
                log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)
            self._record = record
            return True
        except ApiException as exc:
            if exc.status != 409:
                log.warning("lease %s/%s: %s %s", self.namespace, self.name, exc.status, exc.reason)
            return False
        except Exception as exc:  # connection refused, timeouts: the API server may be restarting
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False

    # ---------------------------------------------------------------- loops

    def alive(self) -> bool:
        """Whether the election loop still turns (for the standby liveness probe)."""
        return self.clock() - self.last_attempt < 5 * self.timing.retry + 2 * self.timing.renew_deadline

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until this candidate leads (True) or `stop` is set (False)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.try_once():
                return True
            stop.wait(self.timing.retry)
        return False

    def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew in a daemon thread; call on_lost once if the Lease is lost or not renewed within the deadline."""

        def loop() -> None:
            # Deadlines count from when the last successful write was sent: the conservative end.
            last_ok = self.last_attempt
            pause = self.timing.renew_every
            while not self._stop.wait(pause):
                sent = self.clock()
                remaining = last_ok + self.timing.renew_deadline - sent
                # A request may not outlive the deadline: a hung API server must not keep a stale leader working.
                if remaining > 0 and self.try_once(timeout=max(0.5, min(2 * self.timing.retry, remaining))):
                    last_ok, pause = sent, self.timing.renew_every
                    continue
                pause = self.timing.retry
                record = self._record
                taken = record is not None and record.holder not in ("", self.identity)
                if taken or self.clock() - last_ok >= self.timing.renew_deadline:
                    why = f"now held by {record.holder}" if taken and record else "not renewed in time"
                    log.error("lost lease %s/%s (%s); stopping", self.namespace, self.name, why)
                    on_lost()
                    return

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="gyre-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the Lease then expires unless released)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.timing.retry + 1)

    def release(self) -> bool:
        """Clear holderIdentity if we still hold the Lease, so a standby takes over at its next retry."""
        try:
            record = self._read(2 * self.timing.retry)
            if record is None or record.holder != self.identity:
                return False
            self.api.replace_namespaced_lease(
                self.name,
                self.namespace,
                self._body(record, "", 1, acquired=False),
                _request_timeout=2 * self.timing.retry,
            )
        except Exception as exc:  # the Lease then simply expires
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        log.info("released lease %s/%s", self.namespace, self.name)
        return True


# -------------------------------------------------------------------- standby liveness


@contextlib.contextmanager
def standby_health(endpoint: str | None, alive: Callable[[], bool]) -> Iterator[None]:
    """Serve kopf's liveness URL while this replica stands by; closed before kopf binds the same port.

    A standby has no kopf yet, so without this a livenessProbe would restart every standby forever.
    It answers 200 while the election loop turns (`alive`), 503 when it is stuck.
    """
    if not endpoint:
        yield
        return
    url = urllib.parse.urlsplit(endpoint)
    path = url.path or "/"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != path:
                self.send_error(404)
                return
            ok = alive()
            body = b'{"standby": true}\n' if ok else b'{"standby": true, "stuck": true}\n'
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="gyre-standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
