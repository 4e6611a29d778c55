"""Objects of a ModelDeployment: the stable and canary server Deployments, one Service, an optional HPA, and a
NetworkPolicy (unless the operator's settings turn it off).

The canary split is done by replica ratio: both tracks carry the labels the Service selects, so kube-proxy spreads
requests over every ready pod and a track's share of traffic is its share of ready pods. No service mesh needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gyre.api import env
from gyre.api.modeldeployment import ModelDeploymentSpec, ServerSettings
from gyre.builders.meta import (
    LABEL_OWNER_KIND,
    LABEL_OWNER_UID,
    Owner,
    child_name,
    labels_for,
    owner_reference,
)
from gyre.builders.pods import (
    container_resources,
    container_security_context,
    pod_security_context,
    store_pod_parts,
    tmp_home_env,
    tmp_mount,
    tmp_volume,
)
from gyre.builders.settings import OperatorSettings

__all__ = [
    "ANNOTATION_MODEL_SHA256",
    "ANNOTATION_MODEL_URI",
    "LABEL_TRACK",
    "SERVER",
    "SERVICE_PORT",
    "ReplicaSplit",
    "ResolvedModel",
    "Track",
    "build_hpa",
    "build_network_policy",
    "build_server_deployment",
    "build_service",
    "desired_total_replicas",
    "server_deployment_name",
    "service_url",
    "split_replicas",
    "termination_grace_seconds",
]

SERVER = "model-server"
LABEL_TRACK = "gyre.dev/track"
ANNOTATION_MODEL_URI = "gyre.dev/model-uri"
ANNOTATION_MODEL_SHA256 = "gyre.dev/model-sha256"
SERVICE_PORT = 80
_DRAIN_SECONDS = 5  # preStop: a terminating pod keeps serving normally while endpoints drop it
_CLOSE_SECONDS = 3  # then, after SIGTERM: it answers with `Connection: close` so keep-alive clients move away
# Then it waits up to spec.server.shutdownTimeoutSeconds for requests in flight, and finally finishes its batches and
# writes the last prediction-log and feedback batches to the store, which this allows for.
_FLUSH_SECONDS = 10
_ROUTING_SECONDS = 5

Track = Literal["stable", "canary"]

_SERVER_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


@dataclass(frozen=True)
class ResolvedModel:
    """A model the controller has resolved from spec.model, a canary or a promotion."""

    uri: str
    """Model directory (a store URL) holding manifest.json and model.skops."""
    sha256: str | None = None
    """The model's digest (sha256 of manifest.json, which pins every model file); the server refuses to start on a
    mismatch."""
    training_run: str | None = None
    """Name of the TrainingRun that produced it."""


@dataclass(frozen=True)
class ReplicaSplit:
    """Replicas per track for a canary weight."""

    stable: int
    canary: int

    @property
    def canary_weight(self) -> int:
        """The share of pods (and so of traffic) the canary actually gets, in percent."""
        total = self.stable + self.canary
        return 0 if total == 0 else round(100 * self.canary / total)


def split_replicas(total: int, weight: int) -> ReplicaSplit:
    """Split `total` pods so that the canary's share is as close to `weight` percent as whole pods allow.

    A canary with a positive weight always gets at least one pod, and the stable track keeps at least one pod
    unless the weight is 100, so neither side silently disappears.
    """
    if weight <= 0:
        return ReplicaSplit(stable=total, canary=0)
    if weight >= 100:
        return ReplicaSplit(stable=0, canary=max(total, 1))
    canary = max(1, round(total * weight / 100))
    stable = max(total - canary, 1)
    return ReplicaSplit(stable=stable, canary=canary)


def server_deployment_name(owner: Owner, track: Track) -> str:
    """`<name>` for the stable track and `<name>-canary` for the canary."""
    return owner.name if track == "stable" else child_name(owner.name, "canary")


def _selector(owner: Owner) -> dict[str, str]:
    return {LABEL_OWNER_KIND: owner.kind, LABEL_OWNER_UID: owner.uid, "app.kubernetes.io/component": SERVER}


def _shared_metadata(owner: Owner) -> dict[str, Any]:
    # The Service and the HPA belong to the ModelDeployment as a whole: named like it, with no track label.
    return {
        "name": owner.name,
        "namespace": owner.namespace,
        "labels": labels_for(owner, SERVER),
        "ownerReferences": [owner_reference(owner)],
    }


def _server_env(
    owner: Owner, spec: ModelDeploymentSpec, model: ResolvedModel, track: Track
) -> list[dict[str, Any]]:
    logging = spec.prediction_logging
    limits = spec.server or ServerSettings()
    variables: list[dict[str, Any]] = [
        {"name": env.MODEL_DIR, "value": model.uri},
        {"name": env.PORT, "value": str(spec.port)},
        {"name": env.HOST, "value": "0.0.0.0"},
        {"name": env.MAX_BODY_BYTES, "value": str(spec.max_body_bytes)},
        {"name": env.HEADER_TIMEOUT, "value": str(limits.header_timeout_seconds)},
        {"name": env.BODY_TIMEOUT, "value": str(limits.body_timeout_seconds)},
        {"name": env.MAX_CONNECTIONS, "value": str(limits.max_connections)},
        {"name": env.DEPLOYMENT, "value": owner.name},
        # Clients address the ModelDeployment, so the URL stays the same when a new model rolls out.
        {"name": env.MODEL_NAME, "value": owner.name},
        {"name": env.TRACK, "value": track},
        {"name": env.NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": env.POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        tmp_home_env(),
        {"name": env.CACHE_DIR, "value": "/tmp/models"},
        {"name": env.DRAIN_SECONDS, "value": str(_CLOSE_SECONDS)},
        {"name": env.SHUTDOWN_TIMEOUT, "value": str(limits.shutdown_timeout_seconds)},
    ]
    if spec.explain is not None and spec.explain.enabled:
        variables += [
            {"name": env.EXPLAIN, "value": "true"},
            {"name": env.EXPLAIN_MAX_ROWS, "value": str(spec.explain.max_rows)},
        ]
    if model.sha256:
        variables.append({"name": env.MODEL_SHA256, "value": model.sha256})
    if model.training_run:
        variables.append({"name": env.MODEL_VERSION, "value": model.training_run})
    if logging is not None and not logging.enabled:
        variables.append({"name": env.LOG_STORE, "value": ""})  # an empty store turns the prediction log off
    elif logging is not None:
        variables += [
            {"name": env.LOG_SAMPLE_RATE, "value": repr(logging.sample_rate)},
            {"name": env.LOG_FLUSH_SECONDS, "value": str(logging.flush_interval_seconds)},
            {"name": env.LOG_MAX_BATCH_ROWS, "value": str(logging.max_batch_rows)},
        ]
    return variables


def build_server_deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    settings: OperatorSettings,
    model: ResolvedModel,
    *,
    track: Track,
    replicas: int | None,
) -> dict[str, Any]:
    """One track's Deployment. `replicas=None` leaves the count to the HPA.

    The model's URI and sha256 are pod-template annotations, so a new model is a rolling update; with
    maxUnavailable 0 and readiness gated on the model being loaded, no request meets a pod without a model.
    """
    store = store_pod_parts(settings, owner.namespace)
    labels = {**labels_for(owner, SERVER), LABEL_TRACK: track}
    if model.training_run:
        labels["gyre.dev/training-run"] = model.training_run[:63]
    annotations = {
        ANNOTATION_MODEL_URI: model.uri,
        # What a Prometheus without prometheus-operator keys on (the PodMonitor selects the labels instead).
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.port),
        "prometheus.io/path": "/metrics",
    }
    if model.sha256:
        annotations[ANNOTATION_MODEL_SHA256] = model.sha256
    probe_port = "http"
    container: dict[str, Any] = {
        "name": "server",
        "image": spec.image or settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["gyre"],
        "args": ["serve"],
        "env": [*_server_env(owner, spec, model, track), *store.env],
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "resources": container_resources(spec.resources, _SERVER_RESOURCES),
        # Loading and hash-checking a large model may take a while: liveness only starts after startup succeeds.
        "startupProbe": {
            "httpGet": {"path": "/v2/health/live", "port": probe_port},
            "periodSeconds": 2,
            "failureThreshold": 90,
        },
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": probe_port},
            "periodSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": probe_port},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        # Keep serving while the endpoint removal propagates; the server then drains in-flight requests.
        "lifecycle": {"preStop": {"sleep": {"seconds": _DRAIN_SECONDS}}},
        "securityContext": container_security_context(),
        "volumeMounts": [*store.mounts, tmp_mount()],
    }
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": {**_selector(owner), LABEL_TRACK: track}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        # A new pod counts as available only after kube-proxy has had time to route to it, so an old pod is never
        # removed before its replacement actually receives traffic.
        "minReadySeconds": _ROUTING_SECONDS,
        "revisionHistoryLimit": 3,
        "template": {
            "metadata": {"labels": dict(labels), "annotations": annotations},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": termination_grace_seconds(spec),
                "securityContext": pod_security_context(),
                "containers": [container],
                "volumes": [*store.volumes, tmp_volume()],
            },
        },
    }
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": server_deployment_name(owner, track),
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": deployment_spec,
    }


def build_service(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The Service in front of both tracks, named like the ModelDeployment."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _shared_metadata(owner),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(owner),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_url(owner: Owner) -> str:
    """The in-cluster URL users and DriftMonitors reach the model at."""
    return f"http://{owner.name}.{owner.namespace}.svc.cluster.local"


def build_hpa(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    """A CPU HorizontalPodAutoscaler on the stable track when spec.autoscaling is set."""
    scaling = spec.autoscaling
    if scaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _shared_metadata(owner),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": server_deployment_name(owner, "stable"),
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def build_network_policy(
    owner: Owner, spec: ModelDeploymentSpec, settings: OperatorSettings
) -> dict[str, Any] | None:
    """Ingress to the model port of both tracks only from the same namespace and the monitoring namespace.

    None when settings.network_policy is off. Egress is left alone: the server reads the store and writes the log.
    """
    if not settings.network_policy:
        return None
    peers: list[dict[str, Any]] = [{"podSelector": {}}]  # every pod of the ModelDeployment's own namespace
    if settings.monitoring_namespace and settings.monitoring_namespace != owner.namespace:
        # kubernetes.io/metadata.name is set by the API server on every namespace, so it cannot be spoofed by a
        # namespace owner relabelling theirs.
        selector = {"matchLabels": {"kubernetes.io/metadata.name": settings.monitoring_namespace}}
        peers.append({"namespaceSelector": selector})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _shared_metadata(owner),
        "spec": {
            "podSelector": {"matchLabels": _selector(owner)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": spec.port}]}],
        },
    }


def termination_grace_seconds(spec: ModelDeploymentSpec) -> int:
    """The pod's grace period: every stage of the server's shutdown fits in it, so it is never killed mid-way.

    preStop keeps serving while endpoints drop the pod, then the server closes keep-alive connections, waits for
    requests in flight (spec.server.shutdownTimeoutSeconds) and writes its last log batches. Kubernetes stops the
    liveness probe of a terminating pod, so the closed listener does not get it restarted meanwhile.
    """
    limits = spec.server or ServerSettings()
    return _DRAIN_SECONDS + _CLOSE_SECONDS + limits.shutdown_timeout_seconds + _FLUSH_SECONDS


def desired_total_replicas(spec: ModelDeploymentSpec) -> int:
    """Pods the ModelDeployment asks for before the canary split (autoscaling: its minimum)."""
    if spec.autoscaling is not None:
        return spec.autoscaling.min_replicas
    return 1 if spec.replicas is None else spec.replicas
