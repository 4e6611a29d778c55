"""A real Prometheus in the test cluster: Debian's package in gyre-prometheus:dev (hack/image.sh), configured with
Kubernetes service discovery and pod annotations (hack/prometheus/prometheus.yml) and Gyre's alert rules; queried
through the API server's service proxy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[2]
# The namespace the chart's NetworkPolicy admits to the model port by default (networkPolicy.monitoringNamespace).
NAMESPACE = "monitoring"
NAME = "prometheus"
IMAGE = "gyre-prometheus:dev"
# The e2e loop cannot wait the default 30 minutes for drift to count as unresolved.
DRIFT_WINDOW = "30s"
# Nor the production `for:` of the other alerts (5 to 30 minutes): the tests prove that the expressions, fed by the
# real metrics, reach the firing state; promtool's unit tests prove the windows (tests/unit/monitoring).
E2E_FOR = "10s"


def rules() -> str:
    """charts/gyre/files/alerts.yaml with GyreDriftNotResolved's window shortened to DRIFT_WINDOW (as the chart's
    monitoring.prometheusRule.driftWindow does) and every other `for:` to E2E_FOR."""
    doc = yaml.safe_load((ROOT / "charts/gyre/files/alerts.yaml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "GyreDriftNotResolved":
                rule["for"] = DRIFT_WINDOW
            elif "for" in rule:
                rule["for"] = E2E_FOR
    return yaml.safe_dump(doc, sort_keys=False)


def objects() -> list[dict[str, Any]]:
    """The namespace, RBAC for pod discovery, configuration, Deployment and Service of the test Prometheus."""
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": {"app": NAME}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "gyre-e2e-prometheus"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "gyre-e2e-prometheus"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "gyre-e2e-prometheus",
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {**meta, "name": "prometheus-config"},
            "data": {"prometheus.yml": (ROOT / "hack/prometheus/prometheus.yml").read_text()},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {**meta, "name": "prometheus-rules"},
            "data": {"gyre.yaml": rules()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": NAME}},
                "template": {
                    "metadata": {"labels": {"app": NAME}},
                    "spec": {
                        "serviceAccountName": NAME,
                        "containers": [
                            {
                                "name": NAME,
                                "image": IMAGE,
                                "imagePullPolicy": "Never",
                                "args": [
                                    "--config.file=/etc/prometheus/config/prometheus.yml",
                                    "--storage.tsdb.path=/prometheus",
                                    "--web.listen-address=:9090",
                                ],
                                "ports": [{"name": "web", "containerPort": 9090}],
                                "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}},
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/prometheus/config"},
                                    {"name": "rules", "mountPath": "/etc/prometheus/rules"},
                                    {"name": "data", "mountPath": "/prometheus"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "configMap": {"name": "prometheus-config"}},
                            {"name": "rules", "configMap": {"name": "prometheus-rules"}},
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": {"app": NAME},
                "ports": [{"name": "web", "port": 9090, "targetPort": "web"}],
            },
        },
    ]


class Prometheus:
    """The HTTP API of the test Prometheus, through the API server's service proxy."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.api = api

    def install(self) -> None:
        """Server-side apply every object (idempotent: a second session reuses the running Prometheus)."""
        dyn = kubernetes.dynamic.DynamicClient(self.api)
        for body in objects():
            resource = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
            resource.server_side_apply(
                body=body,
                name=body["metadata"]["name"],
                namespace=body["metadata"].get("namespace"),
                field_manager="gyre-e2e",
                force_conflicts=True,
            )

    def uninstall(self) -> None:
        """Delete the namespace (and with it everything in it) and the cluster-wide RBAC, without waiting."""
        rbac = kubernetes.client.RbacAuthorizationV1Api(self.api)
        for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
            try:
                delete("gyre-e2e-prometheus")
            except ApiException as exc:
                if exc.status != 404:
                    raise
        try:
            kubernetes.client.CoreV1Api(self.api).delete_namespace(NAMESPACE, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _get(self, path: str, **params: str) -> Any:
        response = self.api.call_api(
            f"/api/v1/namespaces/{NAMESPACE}/services/{NAME}:web/proxy{path}",
            "GET",
            query_params=list(params.items()),
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=30,
        )
        return json.loads(response[0].data)

    def ready(self) -> bool:
        """Prometheus answers and has loaded Gyre's rules."""
        try:
            groups = self._get("/api/v1/rules")["data"]["groups"]
        except (ApiException, ValueError, KeyError):
            return False
        return any(g["name"] == "gyre.rules" for g in groups)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector an expression returns now."""
        answer = self._get("/api/v1/query", query=expr)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The range vector an expression returns between two Unix times."""
        answer = self._get(
            "/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}"
        )
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def fired(self, alert: str, **labels: str) -> list[dict[str, Any]]:
        """The label sets with which `alert` was firing at some evaluation in the last hour (Prometheus' own ALERTS
        series), so an alert that has resolved again still counts."""
        matchers = "".join(f',{name}="{value}"' for name, value in sorted(labels.items()))
        return self.query(f'max_over_time(ALERTS{{alertname="{alert}",alertstate="firing"{matchers}}}[1h])')

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets, as service discovery found them."""
        found: list[dict[str, Any]] = self._get("/api/v1/targets", state="active")["data"]["activeTargets"]
        return found


def queries_without_data(prom: Prometheus) -> list[str]:
    """Every dashboard panel query (variables set to match all) that returns no series, and every metric an alert
    expression reads that has no series: what a user would see as "No data" or an alert that can never fire."""
    from monitoring import alert_queries, metric_names, panel_queries

    missing = [f"panel {q.where}: {q.expr}" for q in panel_queries() if not prom.query(q.expr)]
    for query in alert_queries():
        missing += [
            f"alert {query.where}: {name}"
            for name in sorted(metric_names(query.expr))
            if not prom.query(name)
        ]
    return missing
