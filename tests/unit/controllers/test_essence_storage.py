"""Gyre's diff-base storage builds the essence kopf's own storage builds, without copying what kopf drops."""

from __future__ import annotations

from typing import Any

import kopf

from gyre.controllers.handlers import PREFIX, EssenceStorage


def run_body() -> dict[str, Any]:
    return {
        "apiVersion": "gyre.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {
            "name": "run",
            "namespace": "ml",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 1,
            "creationTimestamp": "2026-12-02T14:00:00Z",
            "labels": {"gyre.dev/operator-instance": "default"},
            "annotations": {
                "gyre.dev/trigger": "drift",
                f"{PREFIX}/last-handled-configuration": '{"spec": {}}',
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:dataset": {}}}}],
        },
        "spec": {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}},
        "status": {"phase": "Running", "jobName": "run-train", "conditions": [{"type": "Ready"}]},
    }


def storages() -> tuple[kopf.DiffBaseStorage, kopf.DiffBaseStorage]:
    def make(cls: type[kopf.AnnotationsDiffBaseStorage]) -> kopf.AnnotationsDiffBaseStorage:
        return cls(prefix=PREFIX, key="last-handled-configuration")

    return make(EssenceStorage), make(kopf.AnnotationsDiffBaseStorage)


def test_the_essence_is_the_one_kopf_builds() -> None:
    ours, kopfs = storages()
    body = kopf.Body(run_body())
    essence = ours.build(body=body)
    assert essence == kopfs.build(body=body)
    assert essence == {
        "spec": run_body()["spec"],
        "metadata": {
            "labels": {"gyre.dev/operator-instance": "default"},
            "annotations": {"gyre.dev/trigger": "drift"},
        },
    }


def test_extra_fields_of_a_field_handler_are_kept_as_kopf_keeps_them() -> None:
    ours, kopfs = storages()
    body = kopf.Body(run_body())
    fields = [("status", "phase"), ("metadata", "generation")]
    assert ours.build(body=body, extra_fields=fields) == kopfs.build(body=body, extra_fields=fields)


def test_the_essence_is_a_copy_so_later_changes_to_the_object_do_not_show_in_it() -> None:
    ours, _ = storages()
    raw = run_body()
    essence = ours.build(body=kopf.Body(raw))
    raw["spec"]["datasetRef"]["name"] = "changed"
    raw["metadata"]["labels"]["new"] = "label"
    assert essence["spec"]["datasetRef"]["name"] == "iris"
    assert "new" not in essence["metadata"]["labels"]


def test_an_object_without_labels_or_annotations_has_no_metadata_in_its_essence() -> None:
    ours, kopfs = storages()
    raw = run_body()
    del raw["metadata"]["labels"], raw["metadata"]["annotations"]
    body = kopf.Body(raw)
    assert ours.build(body=body) == kopfs.build(body=body) == {"spec": raw["spec"]}
