"""Server-side apply of the children a controller owns, and their removal when the spec no longer asks for them.

Server-side apply makes reconciliation idempotent: the operator states the whole desired object under one field
manager, fields it stopped setting are removed, and fields other managers own (an HPA's replica count) are kept.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from gyre.controllers.kube import api_client

__all__ = [
    "FIELD_MANAGER",
    "apply",
    "create",
    "delete_if_present",
    "get_object",
    "list_objects",
    "merge_patch",
]

FIELD_MANAGER = "gyre-operator"

# apiVersion -> URL prefix, and kind -> plural, for the kinds the operator manages.
_PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Job": "jobs",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Pod": "pods",
    "TrainingRun": "trainingruns",
    "Dataset": "datasets",
    "ModelDeployment": "modeldeployments",
    "DriftMonitor": "driftmonitors",
}


def _path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{_PLURALS[kind]}"
    return path if name is None else f"{path}/{name}"


def _call(method: str, path: str, **kwargs: Any) -> Any:
    return api_client().call_api(
        path,
        method,
        auth_settings=["BearerToken"],
        response_type="object",
        _return_http_data_only=True,
        **kwargs,
    )


def apply(body: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply `body` (which must be the complete desired object) and return the live object."""
    meta = body["metadata"]
    result: dict[str, Any] = _call(
        "PATCH",
        _path(body["apiVersion"], body["kind"], meta["namespace"], meta["name"]),
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=body,
    )
    return result


def get_object(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One object as a dict, or None when it does not exist."""
    try:
        result: dict[str, Any] = _call(
            "GET", _path(api_version, kind, namespace, name), header_params={"Accept": "application/json"}
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return result


def list_objects(
    api_version: str, kind: str, namespace: str, label_selector: str = ""
) -> list[dict[str, Any]]:
    """Objects of one kind in a namespace, optionally filtered by a label selector."""
    query = [("labelSelector", label_selector)] if label_selector else []
    result = _call(
        "GET",
        _path(api_version, kind, namespace),
        query_params=query,
        header_params={"Accept": "application/json"},
    )
    items: list[dict[str, Any]] = result.get("items") or []
    return items


def delete_if_present(api_version: str, kind: str, namespace: str, name: str) -> bool:
    """Delete an object (children cascade in the background); returns whether it existed."""
    try:
        _call(
            "DELETE",
            _path(api_version, kind, namespace, name),
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body={"propagationPolicy": "Background"},
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def create(body: dict[str, Any]) -> bool:
    """Create an object; returns False when one with that name exists already (names are deterministic)."""
    meta = body["metadata"]
    try:
        _call(
            "POST",
            _path(body["apiVersion"], body["kind"], meta["namespace"]),
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def merge_patch(api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
    """JSON merge-patch an object (e.g. one annotation), leaving every other field alone."""
    _call(
        "PATCH",
        _path(api_version, kind, namespace, name),
        header_params={"Accept": "application/json", "Content-Type": "application/merge-patch+json"},
        body=patch,
    )
