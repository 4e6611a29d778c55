"""What kopf watches and what the plans write are granted in gyre.controllers.permissions (which the chart follows).

A resource watched without list/watch blocks kopf at start (its indexes never fill); a child kind written without
create/patch fails every reconcile. These tests catch both before a cluster does.
"""

from __future__ import annotations

import kopf

import gyre.controllers.handlers  # noqa: F401  (registers the handlers)
from gyre.api.modeldeployment import ModelDeploymentSpec
from gyre.builders.meta import Owner
from gyre.builders.serving import (
    ResolvedModel,
    build_hpa,
    build_network_policy,
    build_server_deployment,
    build_service,
)
from gyre.builders.settings import OperatorSettings
from gyre.controllers.permissions import WORKLOAD, as_set


def guess_plural(kind: str) -> str:
    """The API machinery's own rule (meta.UnsafeGuessKindToResource): policy -> policies, service -> services."""
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


def watched() -> set[tuple[str, str]]:
    registry = kopf.get_default_registry()
    handlers = [
        *registry._indexing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
    ]
    return {(h.selector.group or "", str(h.selector.any_name)) for h in handlers if h.selector is not None}


def test_every_resource_kopf_watches_may_be_listed_and_watched() -> None:
    granted = as_set(WORKLOAD)
    resources = watched()
    assert ("networking.k8s.io", "networkpolicies") in resources, "the ModelDeployment's children are indexed"
    missing = [(g, r, v) for g, r in sorted(resources) for v in ("list", "watch") if (g, r, v) not in granted]
    assert missing == []


def test_every_model_server_child_may_be_server_side_applied_and_is_indexed() -> None:
    owner = Owner(kind="ModelDeployment", name="iris", namespace="ml", uid="u1")
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"uri": "pvc://gyre-artifacts/m"}, "autoscaling": {"minReplicas": 1, "maxReplicas": 2}}
    )
    settings = OperatorSettings()
    children = [
        build_service(owner, spec),
        build_server_deployment(owner, spec, settings, ResolvedModel(uri="x"), track="stable", replicas=None),
        build_hpa(owner, spec),
        build_network_policy(owner, spec, settings),
    ]
    index = watched()
    granted = as_set(WORKLOAD)
    for child in children:
        assert child is not None
        group = child["apiVersion"].rpartition("/")[0]
        plural = guess_plural(child["kind"])
        assert (group, plural) in index, f"{child['kind']} is not indexed: a steady state would re-apply it"
        # Server-side apply is a patch, and a create when the object is new.
        assert {(group, plural, "create"), (group, plural, "patch")} <= granted, child["kind"]
