"""Render charts/gyre with the pinned helm, and the kustomize examples in docs/ with the pinned kubectl
(`eval "$(hack/cluster/env.sh)"` puts both on PATH, as `make verify` does)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts/gyre"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """helm ARGS, whatever its exit code."""
    found = shutil.which("helm")
    if found is None:
        pytest.fail(
            "helm is not on PATH: `make cluster-build`, then `eval $(hack/cluster/env.sh)`", pytrace=False
        )
    return subprocess.run([found, *args], check=False, capture_output=True, text=True)


def template(
    *values: str, release: str = "gyre", namespace: str = "gyre-system", extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    args = ["template", release, str(CHART), "--skip-crds", "--namespace", namespace, *extra]
    for value in values:
        args += ["--set", value]
    return helm(*args)


def render(
    *values: str, release: str = "gyre", namespace: str = "gyre-system", tests: bool = False
) -> list[dict[str, Any]]:
    """The objects `helm install RELEASE -n NAMESPACE --set VALUES...` creates (with the test hooks if asked)."""
    proc = template(*values, release=release, namespace=namespace, extra=() if tests else ("--skip-tests",))
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def kustomize_doc_example(
    doc: str, marker: str, tmp_path: Path, components: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` renders from the overlay a doc shows (the yaml block after `<!-- MARKER: -->`),
    pointed at manifests/ and the given components of this checkout."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH: `make cluster-build`, then `eval $(hack/cluster/env.sh)`", pytrace=False
        )
    text = (ROOT / doc).read_text()
    block = re.search(rf"<!-- {marker}:[^>]*-->\n```yaml\n(.*?)```", text, re.S)
    assert block is not None, f"{doc} lost its {marker} example"
    overlay = yaml.safe_load(block.group(1))
    overlay["resources"] = [os.path.relpath(ROOT / "manifests", tmp_path)]
    if components:
        overlay["components"] = [os.path.relpath(ROOT / c, tmp_path) for c in components]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    proc = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]
