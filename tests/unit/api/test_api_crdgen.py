"""The generated CRDs are structural, documented, validated, and match the committed files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gyre.api import crdgen

ROOT = Path(__file__).resolve().parents[3]
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in crdgen.build_crds()}
BUILTIN_SHORT_NAMES = {
    "ds",
    "deploy",
    "rs",
    "sts",
    "po",
    "svc",
    "cm",
    "ns",
    "pv",
    "pvc",
    "sa",
    "ing",
    "hpa",
    "cj",
    "ep",
}


def schema(kind: str) -> dict[str, Any]:
    root: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def validations(kind: str) -> list[dict[str, str]]:
    return [rule for _, node in walk(schema(kind)) for rule in node.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_schema_is_structural(kind: str) -> None:
    for path, node in walk(schema(kind)):
        assert "$ref" not in node and "$defs" not in node, path
        if "properties" in node and isinstance(node["properties"], dict) and node.get("type") == "object":
            assert "additionalProperties" not in node, path
        assert "const" not in node, path
        if node.get("type") is None and "properties" in node:
            pytest.fail(f"untyped object at {path}")


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_spec_field_is_documented(kind: str) -> None:
    def check(node: dict[str, Any], path: str) -> None:
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{kind}{path}.{name} has no description"
            check(prop, f"{path}.{name}")
            if isinstance(prop.get("items"), dict):
                check(prop["items"], f"{path}.{name}[]")

    check(schema(kind)["properties"]["spec"], ".spec")
    check(schema(kind)["properties"]["status"], ".status")


def test_optional_fields_are_nullable_and_free_form_fields_preserved() -> None:
    spec = schema("TrainingRun")["properties"]["spec"]["properties"]
    assert spec["search"]["nullable"] is True
    assert spec["datasetRef"].get("nullable") is None
    params = spec["estimator"]["properties"]["params"]
    assert params["x-kubernetes-preserve-unknown-fields"] is True
    assert params["type"] == "object"
    assert set(schema("TrainingRun")["properties"]["spec"]["required"]) == {"datasetRef", "estimator"}


def test_quantities_are_int_or_string() -> None:
    resources = schema("Dataset")["properties"]["spec"]["properties"]["resources"]["properties"]
    quantity = resources["limits"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True
    assert "type" not in quantity
    assert quantity["pattern"].startswith("^")


def test_cel_rules_are_present_with_messages() -> None:
    rules = {r["rule"]: r["message"] for r in validations("TrainingRun")}
    assert rules["self.strategy != 'random' || has(self.trials)"].startswith("random search needs trials")
    assert "has(self.min) || has(self.max)" in rules
    assert rules["self == oldSelf"].startswith("a TrainingRun's spec is immutable")
    assert any("exactly one of trainingRunRef or uri" in r["message"] for r in validations("ModelDeployment"))
    assert any("exactly one of interval or cron" in r["message"] for r in validations("DriftMonitor"))


def test_split_test_size_is_exclusive_between_0_and_1() -> None:
    split = schema("TrainingRun")["properties"]["spec"]["properties"]["split"]["properties"]["testSize"]
    assert (split["minimum"], split["exclusiveMinimum"], split["maximum"], split["exclusiveMaximum"]) == (
        0,
        True,
        1,
        True,
    )


def test_names_short_names_and_columns() -> None:
    shorts = [s for crd in CRDS.values() for s in crd["spec"]["names"]["shortNames"]]
    assert len(shorts) == len(set(shorts))
    assert not set(shorts) & BUILTIN_SHORT_NAMES
    for crd in CRDS.values():
        assert crd["spec"]["names"]["categories"] == ["gyre"]
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert version["additionalPrinterColumns"][-1]["name"] == "Age"
    tr_columns = {
        c["name"]: c["jsonPath"]
        for c in CRDS["TrainingRun"]["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert tr_columns["Validated"] == '.status.conditions[?(@.type=="Validated")].status'


def test_generation_is_deterministic() -> None:
    assert crdgen.render() == crdgen.render()


def test_committed_files_match(tmp_path: Path) -> None:
    assert crdgen.main(["--check"]) == 0, "committed CRDs are stale: run `make manifests`"
    # The chart copy carries no Kustomization (Helm would apply it as an object).
    assert not (ROOT / "charts/gyre/crds/kustomization.yaml").exists()
    kustomization = yaml.safe_load((ROOT / "manifests/crds/kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(f"{k.plural}.gyre.dev.yaml" for k in crdgen.KINDS)


def test_check_fails_on_a_stale_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--write", "--root", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 0
    target = tmp_path / "charts/gyre/crds/trainingruns.gyre.dev.yaml"
    target.write_text(target.read_text().replace("Estimator class", "edited by hand"))
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    assert "edited by hand" in capsys.readouterr().err


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_conditions_are_a_map_keyed_by_type(kind: str) -> None:
    conditions = schema(kind)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert {"type", "status", "reason", "lastTransitionTime"} <= set(item["required"])
