"""The source policy's decisions on plain strings: what the operator refuses before any Job exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gyre.builders.settings import OperatorSettings
from gyre.policy.sources import (
    SourcePolicy,
    SourceScope,
    check_address,
    check_source,
    redact,
    source_scope,
)

PVC = source_scope(SourcePolicy(), "pvc://gyre-artifacts", "ml")
SHARED = source_scope(SourcePolicy(), "s3://store/gyre", "ml")
DATA_ROOT = source_scope(SourcePolicy(file_roots=("/data",)), "pvc://gyre-artifacts/team", "ml")
ONLY_EXAMPLE = SourceScope(SourcePolicy(hosts=("*.example.com", "10.0.0.0/8")))
ONLY_NAMES = SourceScope(SourcePolicy(hosts=("*.example.com",)))
NO_HTTP = SourceScope(SourcePolicy(schemes=("builtin", "file", "https")))

# (source, scope, the policy rule that refuses it, or None for "allowed")
CASES = [
    ("builtin://iris", PVC, None),
    ("https://data.example.com/iris.csv", PVC, None),
    ("file:///var/lib/gyre/artifacts/sources/iris.csv", PVC, None),
    ("file:///var/lib/gyre/artifacts/team/sources/x.csv", DATA_ROOT, None),
    ("file:///data/x.parquet", DATA_ROOT, None),
    ("s3://raw/x.csv", SHARED, None),
    ("s3://store/gyre/sources/ml/x.csv", SHARED, None),
    ("https://a.b.example.com/x.csv", ONLY_EXAMPLE, None),
    ("http://10.1.2.3/x.csv", ONLY_EXAMPLE, None),
    ("http://[2001:db8::1]/x.csv", PVC, None),
    # loopback, link-local and metadata, by address or by name
    ("http://127.0.0.1:8080/x.csv", PVC, "refusedHosts"),
    ("http://127.9.9.9/x.csv", PVC, "refusedHosts"),
    ("http://[::1]/x.csv", PVC, "refusedHosts"),
    ("http://[::ffff:127.0.0.1]/x.csv", PVC, "refusedHosts"),
    ("http://0.0.0.0/x.csv", PVC, "refusedHosts"),
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/x.csv", PVC, "refusedHosts"),
    ("http://[fe80::1]/x.csv", PVC, "refusedHosts"),
    ("http://[fd00:ec2::254]/x.csv", PVC, "refusedHosts"),
    ("http://100.100.100.200/x.csv", PVC, "refusedHosts"),
    ("http://metadata.google.internal/x.csv", PVC, "refusedHosts"),
    ("http://METADATA.google.internal./x.csv", PVC, "refusedHosts"),
    ("http://metadata/x.csv", PVC, "refusedHosts"),
    ("http://localhost:9000/x.csv", PVC, "refusedHosts"),
    ("http://api.localhost/x.csv", PVC, "refusedHosts"),
    ("https://user:secret@169.254.169.254/x.csv", PVC, "refusedHosts"),
    ("http://2130706433/x.csv", PVC, "syntax"),
    ("http://0x7f.1/x.csv", PVC, "syntax"),
    # files outside the declared data roots
    ("file:///proc/self/environ", PVC, "fileRoots"),
    ("file:///etc/passwd", PVC, "fileRoots"),
    ("file:///var/run/secrets/kubernetes.io/serviceaccount/token", PVC, "fileRoots"),
    ("/proc/self/environ", PVC, "fileRoots"),
    ("file:///data/x.csv", PVC, "fileRoots"),
    ("file:///var/lib/gyre/artifacts/sources/../models/ml/run/model.skops", PVC, "syntax"),
    ("file:///var/lib/gyre/artifacts/./sources/x.csv", PVC, "syntax"),
    # the artifact store's own areas are never sources
    ("file:///var/lib/gyre/artifacts/models/ml/run/model.skops", PVC, "artifactStore"),
    ("file:///var/lib/gyre/artifacts/datasets/ml/d/abc/data.parquet", PVC, "artifactStore"),
    ("file:///var/lib/gyre/artifacts/sources/x.csv", DATA_ROOT, "artifactStore"),
    ("s3://store/gyre/datasets/other/d/abc/data.parquet", SHARED, "artifactStore"),
    ("s3://store/gyre/sources/other/x.csv", SHARED, "artifactStore"),
    # schemes, chains and hosts the admin did not allow
    ("http://data.example.com/x.csv", NO_HTTP, "schemes"),
    ("s3://raw/x.csv", NO_HTTP, "schemes"),
    ("ftp://data.example.com/x.csv", PVC, "schemes"),
    ("simplecache::https://data.example.com/x.csv", PVC, "schemes"),
    ("https://data.example.com/x.csv::http://169.254.169.254/", PVC, "syntax"),
    ("https://data.example.org/x.csv", ONLY_NAMES, "hosts"),
    ("http://192.168.1.1/x.csv", ONLY_EXAMPLE, "hosts"),
]


@pytest.mark.parametrize(("source", "scope", "rule"), CASES, ids=[c[0] for c in CASES])
def test_each_source_is_allowed_or_refused_by_the_named_rule(
    source: str, scope: SourceScope, rule: str | None
) -> None:
    refusal = check_source(source, scope)
    assert (refusal.rule if refusal else None) == rule


def test_a_refusal_says_what_which_rule_and_how_an_admin_allows_it() -> None:
    refusal = check_source("http://169.254.169.254/latest/x.csv", PVC)
    assert refusal is not None
    assert refusal.message == (
        "source http://169.254.169.254/latest/x.csv refused by the source policy (refusedHosts): "
        "host 169.254.169.254 matches the refused host '169.254.0.0/16'; a cluster admin allows it by removing "
        "'169.254.0.0/16' from refusedHosts in policy.sources (env GYRE_SOURCE_POLICY)"
    )
    outside = check_source("file:///proc/self/environ", PVC)
    assert outside is not None
    assert "outside the declared data roots (/var/lib/gyre/artifacts/sources/)" in outside.message
    assert "declares its directory in fileRoots" in outside.message


def test_a_refusal_never_repeats_credentials_from_the_uri() -> None:
    refusal = check_source("https://user:hunter2@127.0.0.1/x.csv", PVC)
    assert refusal is not None and "hunter2" not in refusal.message and "***@127.0.0.1" in refusal.message
    assert redact("s3://bucket/key@v1") == "s3://bucket/key@v1"


def test_an_admin_allows_loopback_by_removing_it_from_the_refused_hosts() -> None:
    refused = tuple(h for h in SourcePolicy().refused_hosts if h not in ("127.0.0.0/8", "localhost"))
    scope = SourceScope(SourcePolicy(refused_hosts=refused))
    assert check_source("http://127.0.0.1:9000/x.csv", scope) is None
    assert check_source("http://localhost:9000/x.csv", scope) is None


def test_a_name_allowed_only_through_a_cidr_is_decided_by_its_addresses() -> None:
    policy = SourcePolicy(hosts=("10.0.0.0/8",))
    assert check_source("http://minio.data.svc/x.csv", SourceScope(policy)) is None  # the pod resolves it
    assert check_address("10.2.3.4", policy, "s", by_name=False) is None
    refusal = check_address("192.168.0.1", policy, "s", by_name=False)
    assert refusal is not None and refusal.rule == "hosts"


def test_refused_addresses_stay_refused_whatever_name_led_there() -> None:
    policy = SourcePolicy(hosts=("*.example.com",))
    for address in ("127.0.0.1", "169.254.169.254", "::1", "::ffff:169.254.169.254", "fd00:ec2::254"):
        refusal = check_address(address, policy, "s", by_name=True)
        assert refusal is not None and refusal.rule == "refusedHosts", address
    assert check_address("93.184.216.34", policy, "s", by_name=True) is None


def test_each_store_has_its_own_area_and_is_otherwise_closed() -> None:
    assert source_scope(SourcePolicy(), "pvc://c/sub", "ml") == SourceScope(
        SourcePolicy(),
        own_area="file:///var/lib/gyre/artifacts/sub/sources/",
        store_area="file:///var/lib/gyre/artifacts/",
    )
    file_store = source_scope(SourcePolicy(), "file:///srv/gyre/", "ml")
    assert (file_store.own_area, file_store.store_area) == (
        "file:///srv/gyre/sources/ml/",
        "file:///srv/gyre/",
    )
    assert source_scope(SourcePolicy(), "gs://b/p", "ml").own_area == "gs://b/p/sources/ml/"


def test_the_operator_reads_the_policy_from_its_environment() -> None:
    raw = '{"schemes": ["builtin", "https"], "hosts": ["*.Example.com"], "fileRoots": ["/data/"]}'
    settings = OperatorSettings.from_env({"GYRE_SOURCE_POLICY": raw})
    assert settings.source_policy.schemes == ("builtin", "https")
    assert settings.source_policy.hosts == ("*.example.com",)
    assert settings.source_policy.file_roots == ("/data",)
    assert settings.source_policy.refused_hosts == SourcePolicy().refused_hosts
    assert OperatorSettings.from_env({}).source_policy == SourcePolicy()


@pytest.mark.parametrize(
    "raw",
    ['{"schemes": ["ftp"]}', '{"fileRoots": ["data"]}', '{"fileRoots": ["/data/../etc"]}', '{"other": 1}'],
)
def test_an_invalid_policy_stops_the_operator_at_start(raw: str) -> None:
    with pytest.raises(ValueError):
        OperatorSettings.from_env({"GYRE_SOURCE_POLICY": raw})


def test_the_charts_default_policy_is_the_operators_default() -> None:
    values = yaml.safe_load((Path(__file__).resolve().parents[3] / "charts/gyre/values.yaml").read_text())
    assert SourcePolicy.model_validate(values["policy"]["sources"]) == SourcePolicy()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://user:hunter2@data.example.com/x.csv", "https://***@data.example.com/x.csv"),
        ("https://data.example.com/x.csv?X-Amz-Signature=hunter2", "https://data.example.com/x.csv?***"),
        ("https://u:hunter2@data.example.com/x.csv?token=hunter2", "https://***@data.example.com/x.csv?***"),
        ("s3://bucket/key@v1", "s3://bucket/key@v1"),
        ("builtin://iris", "builtin://iris"),
    ],
)
def test_messages_show_a_uri_without_its_credentials_or_query(uri: str, shown: str) -> None:
    assert redact(uri) == shown
