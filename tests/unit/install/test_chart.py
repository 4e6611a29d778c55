"""The chart follows Helm's conventions: the release namespace, a values schema, image digests, tests and notes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helmchart import CHART, by_kind, helm, render, template

DIGEST = "sha256:" + "0123456789abcdef" * 4
CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "Namespace",
}
ALL_ON = [
    f"monitoring.{key}.enabled=true"
    for key in ("serviceMonitor", "podMonitor", "prometheusRule", "dashboard")
]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(docs, "Deployment")
    main: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return main


@pytest.mark.parametrize("namespace", ["gyre-system", "ml-platform"])
@pytest.mark.parametrize("cluster_wide", ["true", "false"])
def test_every_namespaced_object_lands_in_the_release_namespace_and_no_namespace_is_created(
    namespace: str, cluster_wide: str
) -> None:
    docs = render(f"operator.clusterWide={cluster_wide}", *ALL_ON, namespace=namespace, tests=True)
    assert not by_kind(docs, "Namespace")  # `helm install --create-namespace` creates it, or it exists
    namespaced = [d for d in docs if d["kind"] not in CLUSTER_SCOPED]
    assert {d["metadata"].get("namespace") for d in namespaced} == {namespace}
    subjects = [s for d in docs if "subjects" in d for s in d["subjects"]]
    assert subjects and {s["namespace"] for s in subjects} == {namespace}
    # Nothing still names the default namespace.
    assert namespace == "gyre-system" or "gyre-system" not in yaml.safe_dump(docs)


def test_a_namespaced_install_watches_the_release_namespace_with_a_role() -> None:
    docs = render("operator.clusterWide=false", namespace="team-a")
    assert not [
        d
        for d in docs
        if d["kind"] in CLUSTER_SCOPED - {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    ]
    assert {
        (d["kind"], d["metadata"]["namespace"]) for d in docs if d["kind"] in ("Role", "RoleBinding")
    } == {
        ("Role", "team-a"),
        ("RoleBinding", "team-a"),
    }
    assert "--namespace=team-a" in container(docs)["args"]


def test_an_empty_tag_means_the_chart_app_version() -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(render())["image"] == f"gyre:{app_version}"
    assert container(render("image.tag=1.2.3"))["image"] == "gyre:1.2.3"


def test_a_digest_pins_the_operator_its_workloads_and_the_admission_policy() -> None:
    docs = render(f"image.digest={DIGEST}", "image.tag=ignored", "image.repository=registry.example.com/gyre")
    pinned = f"registry.example.com/gyre@{DIGEST}"
    main = container(docs)
    assert main["image"] == pinned
    assert {"name": "GYRE_IMAGE", "value": pinned} in main["env"]
    (policy,) = [
        p for p in by_kind(docs, "ValidatingAdmissionPolicy") if p["metadata"]["name"] == "gyre-image-policy"
    ]
    allowed = next(v for v in policy["spec"]["variables"] if v["name"] == "allowed")
    assert json.loads(allowed["expression"])[0] == pinned


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("operator.resources=oops", "at '/operator/resources': got string, want object"),
        ("image.digest=latest", "at '/image/digest': 'latest' does not match pattern"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("operator.replicas=0", "at '/operator/replicas'"),
        ("operator.watchNamespaces={Team_A}", "at '/operator/watchNamespaces/0'"),
        ("operator.leaderElection.enable=false", "additional properties 'enable' not allowed"),
        ("artifactStore.url=/data", "at '/artifactStore/url'"),
    ],
)
def test_a_wrong_value_fails_lint_and_install_naming_the_value(value: str, said: str) -> None:
    lint = helm("lint", str(CHART), "--set", value)
    assert lint.returncode != 0 and said in lint.stdout + lint.stderr
    rendered = template(value)
    assert rendered.returncode != 0 and said in rendered.stderr


def _leaves(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [leaf for key, sub in values.items() for leaf in _leaves(sub, f"{prefix}/{key}")]
    return [prefix]


def test_the_schema_describes_every_value_and_accepts_the_defaults() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    undescribed = []
    for leaf in _leaves(values):
        node = schema
        for key in leaf.strip("/").split("/"):
            props = node.get("properties", {})
            if key not in props:
                if node.get("additionalProperties") not in (None, False) and not props:
                    break  # a map of free keys (labels, resource quantities)
                undescribed.append(leaf)
                break
            node = props[key]
    assert not undescribed, f"values.yaml keys without a schema entry: {undescribed}"
    assert helm("lint", str(CHART), "--strict").returncode == 0


def test_helm_test_checks_the_operator_answers_and_the_crds_are_served() -> None:
    (pod,) = [d for d in render(tests=True, namespace="ml") if d["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "http://gyre-operator-metrics.ml.svc:8081/metrics" in script
    assert "/apis/gyre.dev/v1alpha1" in script
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True  # admitted under restricted Pod Security
    assert pod["spec"]["containers"][0]["image"] == container(render())["image"]


def notes(tmp_path: Path, *values: str, namespace: str) -> str:
    """NOTES.txt as `helm install` prints it. Helm renders NOTES only for install, which needs a cluster even
    with --dry-run=client, so a copy of the chart defines it as a template and renders it into a ConfigMap."""
    chart = tmp_path / "gyre"
    shutil.copytree(CHART, chart)
    text = (chart / "templates/NOTES.txt").read_text()
    (chart / "templates/NOTES.txt").unlink()
    (chart / "templates/_notes.tpl").write_text('{{- define "notes" -}}' + text + "{{- end -}}")
    (chart / "templates/notes.yaml").write_text(
        'kind: Notes\nmetadata: {name: notes}\ntext: {{ include "notes" . | toJson }}\n'
    )
    args = ["template", "demo", str(chart), "-n", namespace, "--show-only", "templates/notes.yaml"]
    for value in values:
        args += ["--set", value]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stderr
    return str(yaml.safe_load(proc.stdout)["text"])


def test_notes_say_where_it_runs_and_how_to_upgrade_the_crds(tmp_path: Path) -> None:
    text = notes(tmp_path, "operator.clusterWide=false", namespace="ml")
    assert "namespace ml" in text and "Watching: ml (a Role and RoleBinding in each)" in text
    assert "helm test demo -n ml" in text
    assert "kubectl apply --server-side --force-conflicts -f charts/gyre/crds/" in text
    assert "Watching: every namespace (ClusterRole demo-gyre-operator)" in notes(
        tmp_path / "b", namespace="ml"
    )


def test_two_releases_have_distinct_cluster_scoped_names() -> None:
    rendered = [
        (d["kind"], d["metadata"]["name"])
        for release in ("gyre", "team-b")
        for d in render(release=release, namespace=release)
        if d["kind"] in CLUSTER_SCOPED
    ]
    names = set(rendered)
    assert len(names) == len(rendered) and {kind for kind, _ in names} == CLUSTER_SCOPED - {"Namespace"}
    assert ("ValidatingAdmissionPolicy", "team-b-gyre-image-policy") in names


@pytest.mark.parametrize("value", ["namespace=ml", "createNamespace=false"])
def test_the_removed_namespace_values_fail_with_the_way_to_do_it_now(value: str) -> None:
    proc = template(value)
    assert proc.returncode != 0
    assert "installs into the release namespace" in proc.stderr and "--create-namespace" in proc.stderr
