"""Object metadata shared by every child object: owners, labels, deterministic names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from gyre.api.common import API_VERSION

__all__ = [
    "LABEL_COMPONENT",
    "LABEL_INSTANCE",
    "LABEL_OWNER_KIND",
    "LABEL_OWNER_NAME",
    "LABEL_OWNER_UID",
    "MANAGED_BY",
    "Owner",
    "child_name",
    "label_value",
    "labels_for",
    "owner_reference",
    "short_hash",
]

MANAGED_BY = "gyre-operator"
LABEL_OWNER_KIND = "gyre.dev/owner-kind"
LABEL_OWNER_NAME = "gyre.dev/owner-name"
LABEL_OWNER_UID = "gyre.dev/owner-uid"
LABEL_COMPONENT = "app.kubernetes.io/component"
# Objects carrying this label are handled only by the operator started with the same --instance; objects without
# it only by an operator without one. Lets two operators share a cluster (upgrades, tests) without fighting.
LABEL_INSTANCE = "gyre.dev/operator-instance"

_MAX_NAME = 63  # Job names become pod labels (job-name), which are capped at 63 characters.


@dataclass(frozen=True)
class Owner:
    """The custom resource a child object belongs to."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int = 1
    api_version: str = API_VERSION
    instance: str | None = None
    """The owner's gyre.dev/operator-instance label, copied to its children."""


def short_hash(*parts: str, length: int = 8) -> str:
    """A stable hex digest of the parts (for names that must change when their inputs do)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:length]


def child_name(owner_name: str, suffix: str, *, limit: int = _MAX_NAME) -> str:
    """`<owner>-<suffix>`, shortened with a hash of the owner's name when it would exceed `limit`."""
    name = f"{owner_name}-{suffix}"
    if len(name) <= limit:
        return name
    tag = short_hash(owner_name, length=6)
    keep = limit - len(suffix) - len(tag) - 2
    return f"{owner_name[:keep].rstrip('-.')}-{tag}-{suffix}"


def label_value(value: str) -> str:
    """A label-safe form of a name (at most 63 characters, same hash shortening as child_name)."""
    if len(value) <= _MAX_NAME:
        return value
    tag = short_hash(value, length=8)
    return f"{value[: _MAX_NAME - len(tag) - 1].rstrip('-.')}-{tag}"


def labels_for(owner: Owner, component: str) -> dict[str, str]:
    """Labels of every object created for `owner`; the gyre.dev/owner-* ones are what the operator selects on."""
    labels = {
        "app.kubernetes.io/name": "gyre",
        "app.kubernetes.io/instance": label_value(owner.name),
        LABEL_COMPONENT: component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "gyre",
        LABEL_OWNER_KIND: owner.kind,
        LABEL_OWNER_NAME: label_value(owner.name),
        LABEL_OWNER_UID: owner.uid,
    }
    if owner.instance:
        labels[LABEL_INSTANCE] = owner.instance
    return labels


def owner_reference(owner: Owner) -> dict[str, Any]:
    """The controller ownerReference: deleting the owner garbage-collects the child."""
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
