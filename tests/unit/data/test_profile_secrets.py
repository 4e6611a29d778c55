"""A profile never contains credentials or environment content: `gyre profile`, run as the pod runs it.

Each case runs the real entrypoint in a fresh process whose environment holds a secret (as the store Secret's
envFrom puts it there), tries to read it through a source, and looks for the secret in every output: the termination
message, stdout, stderr (the logs) and every file written to the store (profile.json, data.parquet). The control
cases run the same reads under a policy that allows them, and find the secret: the harness can see a leak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from source_servers import BY_ADDRESS_POLICY, SENTINEL, TEST_POLICY, Servers

from gyre.policy.sources import SourcePolicy

ENVIRON_SPEC = {
    "source": {
        "uri": "file:///proc/self/environ",
        "format": "csv",
        "csv": {"delimiter": "\u0000", "header": False},
    }
}


@dataclass
class Outcome:
    code: int
    report: dict[str, object]
    outputs: dict[str, bytes]

    def leaks(self) -> list[str]:
        return [name for name, data in self.outputs.items() if SENTINEL.encode() in data]


def profile(
    tmp_path: Path, source: str, policy: SourcePolicy, spec: dict[str, object] | None = None
) -> Outcome:
    store = tmp_path / "store"
    (store / "sources" / "ml").mkdir(parents=True, exist_ok=True)
    termination = tmp_path / "termination-log"
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": SENTINEL,
        "GYRE_STORE_PASSWORD": SENTINEL,
        "GYRE_TERMINATION_LOG": str(termination),
        "GYRE_SOURCE_POLICY": policy.to_json(),
    }
    if spec is not None:
        environ["GYRE_DATASET_SPEC"] = json.dumps(spec)
    args = ["profile", "--store", f"file://{store}", "--namespace", "ml", "--name", "d", "--source", source]
    done = subprocess.run(
        [sys.executable, "-m", "gyre", *args, "--format", "csv"],
        env=environ,
        capture_output=True,
        timeout=120,
        check=False,
    )
    outputs = {"stdout": done.stdout, "stderr": done.stderr, "termination message": termination.read_bytes()}
    outputs |= {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    return Outcome(done.returncode, json.loads(termination.read_text()), outputs)


def assert_refused_without_a_trace(outcome: Outcome) -> None:
    assert outcome.code == 1 and outcome.report["reason"] == "SourceRefused", outcome.report
    assert outcome.leaks() == []
    assert "refused by the source policy" in str(outcome.report["error"])


@pytest.mark.parametrize(
    "case",
    ["metadata address", "redirect to metadata", "name resolving to loopback", "redirect to that name"],
)
def test_no_http_source_brings_a_secret_into_any_output(tmp_path: Path, servers: Servers, case: str) -> None:
    source, policy = {
        "metadata address": (f"{servers.metadata}/creds.csv", TEST_POLICY),
        "redirect to metadata": (f"{servers.data}/to-metadata.csv", TEST_POLICY),
        "name resolving to loopback": (f"http://localhost:{servers.port}/creds.csv", BY_ADDRESS_POLICY),
        "redirect to that name": (f"{servers.data}/to-localhost.csv", BY_ADDRESS_POLICY),
    }[case]
    assert_refused_without_a_trace(profile(tmp_path, source, policy))


def test_the_process_environment_is_no_source(tmp_path: Path) -> None:
    assert_refused_without_a_trace(
        profile(tmp_path, "file:///proc/self/environ", SourcePolicy(), ENVIRON_SPEC)
    )


def test_a_symlink_to_the_environment_in_the_own_area_is_no_source(tmp_path: Path) -> None:
    link = tmp_path / "store" / "sources" / "ml" / "environ.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to("/proc/self/environ")
    assert_refused_without_a_trace(profile(tmp_path, f"file://{link}", SourcePolicy(), ENVIRON_SPEC))


def test_an_allowed_source_is_profiled_and_nothing_secret_comes_with_it(
    tmp_path: Path, servers: Servers
) -> None:
    outcome = profile(tmp_path, f"{servers.data}/ok.csv", TEST_POLICY)
    assert outcome.code == 0 and outcome.report["phase"] == "Succeeded", outcome.report
    assert any(name.endswith("profile.json") for name in outcome.outputs)
    assert outcome.leaks() == []


def test_the_harness_sees_a_leak_when_the_policy_allows_one(tmp_path: Path, servers: Servers) -> None:
    lax = SourcePolicy(refused_hosts=(), file_roots=("/proc",))
    metadata = profile(tmp_path / "m", f"{servers.metadata}/creds.csv", lax)
    assert metadata.code == 0 and any(n.endswith("profile.json") for n in metadata.leaks()), metadata.report
    environ = profile(tmp_path / "e", "file:///proc/self/environ", lax, ENVIRON_SPEC)
    assert environ.leaks(), environ.report
