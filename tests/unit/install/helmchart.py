"""Render charts/gyre with the pinned helm (`eval "$(hack/cluster/env.sh)"` puts it on PATH, as `make verify` does)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts/gyre"


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
